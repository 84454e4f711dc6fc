"""A tiny preprocessing output whose labels only the graph can predict.

Every example's item is a fresh id, every user has a few examples under a
fresh id, and no root id is in the vocabulary, so the roots' own embeddings
carry nothing. Each belongs to one of two hidden communities, and
its sampled neighbourhoods (every channel, every hop) are drawn from a small
pool of anchor users and items of its community, which recur across
examples. click = 1 iff the user's and the item's communities agree;
conversion = click and a coin flip. A model that reads the neighbours learns
click; one that reads only the roots cannot.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from beam_pipelines.sample_encoder import SampleEncoder, graph_schema_text
from contracts.layout import TREES, SampleLayout

TASKS = ("click", "conversion")
ANCHORS = 6
EXAMPLES_PER_USER = 4


def anchor(node_set: str, community: int, rank: int) -> str:
    return f"{node_set[0]}a{community}_{rank}"


def write_planted(out, fanouts=(3, 2), sizes=None, seed=0, pad_rate=0.2) -> str:
    """Writes samples, schema, layout, vocab and features under `out`; returns it."""
    sizes = sizes or {"train": 800, "valid": 200, "test": 200}
    out = str(out)
    layout = SampleLayout(fanouts)
    encoder = SampleEncoder(layout, TASKS)
    rng = np.random.default_rng(seed)
    for split, count in sizes.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        path = os.path.join(out, split, "samples-00000-of-00001.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for k in range(count):
                user, item = f"{split}_u{k // EXAMPLES_PER_USER}", f"{split}_i{k}"
                if k % EXAMPLES_PER_USER == 0:
                    user_community = int(rng.integers(2))
                community = {"user": user_community, "item": int(rng.integers(2))}
                ids = {s: [None] * n for s, n in layout.node_set_sizes.items()}
                ids["user"][0], ids["item"][0] = user, item
                for tree in TREES:
                    c = community[tree.root]
                    parent_real = [True]
                    for segment in layout.tree_segments(tree.name):
                        real = []
                        for slot in range(segment.size):
                            ok = parent_real[slot // segment.fanout] and rng.random() > pad_rate
                            real.append(ok)
                            if ok:
                                rank = int(rng.integers(ANCHORS))
                                ids[segment.node_set][segment.node_offset + slot] = anchor(
                                    segment.node_set, c, rank
                                )
                        parent_real = real
                weights = {e: [0.0] * layout.edge_set_sizes[e] for e in ("user_user", "item_item")}
                for segment in layout.segments:
                    if segment.edge_set in weights:
                        for slot in range(segment.size):
                            if ids[segment.node_set][segment.node_offset + slot]:
                                weight = float(rng.uniform(0.1, 1.0))
                                weights[segment.edge_set][segment.edge_offset + slot] = weight
                click = int(community["user"] == community["item"])
                conversion = int(click and rng.random() < 0.5)
                writer.write(encoder.encode(ids, weights, (click, conversion)))
    with open(os.path.join(out, "graph_schema.pbtxt"), "w") as f:
        f.write(graph_schema_text(TASKS))
    with open(os.path.join(out, "layout.json"), "w") as f:
        f.write(layout.to_json())
    for node_set in ("user", "item"):
        names = [anchor(node_set, c, r) for c in (0, 1) for r in range(ANCHORS)]
        os.makedirs(os.path.join(out, "vocab"), exist_ok=True)
        os.makedirs(os.path.join(out, "features"), exist_ok=True)
        with open(os.path.join(out, "vocab", f"{node_set}-00000-of-00001.tsv"), "w") as f:
            f.writelines(f"{name}\t1\n" for name in names)
        with open(os.path.join(out, "features", f"{node_set}-00000-of-00001.jsonl"), "w") as f:
            for n, name in enumerate(names):
                f.write(json.dumps({"id": name, "kind": f"k{n % 3}", "size": float(n % 5)}) + "\n")
    return out
