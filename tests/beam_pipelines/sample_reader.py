"""Reads serialized samples back into plain Python for assertions."""

from __future__ import annotations

import glob
import os

import tensorflow as tf

from beam_pipelines.records import SPLITS


def parse(serialized: bytes) -> dict:
    """Returns {feature name: list of values} of one serialized tf.Example."""
    example = tf.train.Example.FromString(serialized)
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value)
        if kind == "bytes_list":
            values = [v.decode() for v in values]
        out[key] = values
    return out


def read_split_records(output_dir: str) -> dict[str, list[bytes]]:
    """Returns every serialized record per split written under output_dir."""
    records = {}
    for split in SPLITS:
        files = sorted(glob.glob(os.path.join(output_dir, split, "*.tfrecord")))
        records[split] = [r.numpy() for f in files for r in tf.data.TFRecordDataset(f)]
    return records


def pair_edges(sample: dict) -> set[tuple[str, str]]:
    """Returns the (user id, item id) of every real edge of G in a parsed sample."""
    users, items = sample["nodes/user.#id"], sample["nodes/item.#id"]
    edges = set()
    for edge_set, (src_ids, dst_ids, user_first) in {
        "user_item": (users, items, True),
        "item_user": (items, users, False),
    }.items():
        sources = sample[f"edges/{edge_set}.#source"]
        targets = sample[f"edges/{edge_set}.#target"]
        for s, t in zip(sources, targets, strict=True):
            if src_ids[s] and dst_ids[t]:
                edges.add((src_ids[s], dst_ids[t]) if user_first else (dst_ids[t], src_ids[s]))
    return edges
