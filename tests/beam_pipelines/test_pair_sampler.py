"""The pair sampler on a tiny golden graph, both strategies, and its contract."""

import math

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.config import PreprocessConfig
from beam_pipelines.graphs import AdjacencyEdges, BuildGraphs
from beam_pipelines.pair_sampler import SAMPLERS, RankNeighbors, SamplePairs
from beam_pipelines.records import Interaction
from contracts.layout import SampleLayout
from tests.beam_pipelines.sample_reader import pair_edges, parse

TASKS = ("click", "conversion")
R = round(1 / math.sqrt(2), 6)


def _train(user, item, click=1):
    return "train", Interaction(user, item, None, (click, 0))


# Positives u1:{i1,i2} u2:{i1,i3} u3:{i2}; u4 has only a negative.
GOLDEN = [
    _train("u1", "i1"),
    _train("u1", "i2"),
    _train("u2", "i1"),
    _train("u2", "i3"),
    _train("u3", "i2"),
    _train("u4", "i3", click=0),
    ("test", Interaction("u3", "i3", None, (1, 1))),
]


def _sample(pipeline, pairs, fanouts, strategy, seed=0, mix_seed=None):
    split = pipeline | "Pairs" >> beam.Create(pairs)
    rows = {
        "train": split | beam.Filter(lambda kv: kv[0] == "train") | "TrainRows" >> beam.Values(),
        "held_out": split
        | "HeldOutOnly" >> beam.Filter(lambda kv: kv[0] != "train")
        | "HeldOutRows" >> beam.Values(),
    }
    graphs = rows | BuildGraphs(
        PreprocessConfig(output="unused", sim_top_k=5, max_pivot_degree=50, seed=seed)
    )
    neighbors = graphs | AdjacencyEdges() | RankNeighbors(seed, max(fanouts) + 1)
    batches = split | SamplePairs(neighbors, SampleLayout(fanouts), TASKS, strategy, mix_seed)
    return batches | "Unbatch" >> beam.FlatMapTuple(lambda s, records: [(s, r) for r in records])


def _segments(sample, layout):
    """Returns {(channel, hop): list of (id, weight)} with "" for padding."""
    out = {}
    for s in layout.segments:
        ids = sample[f"nodes/{s.node_set}.#id"][s.node_offset : s.node_offset + s.size]
        key = f"edges/{s.edge_set}.weight"
        weights = sample.get(key, [1.0] * layout.edge_set_sizes[s.edge_set])
        weights = [round(w, 6) for w in weights[s.edge_offset : s.edge_offset + s.size]]
        out[(s.channel, s.hop)] = list(zip(ids, weights, strict=True))
    return out


def _golden_check(samples):
    layout = SampleLayout([2, 2])
    by_root = {}
    for split, serialized in samples:
        sample = parse(serialized)
        by_root[(sample["nodes/user.#id"][0], sample["nodes/item.#id"][0])] = (split, sample)
    assert set(by_root) == {
        ("u1", "i1"),
        ("u1", "i2"),
        ("u2", "i1"),
        ("u2", "i3"),
        ("u3", "i2"),
        ("u4", "i3"),
        ("u3", "i3"),
    }
    split, sample = by_root[("u1", "i1")]
    assert split == "train"
    assert sample["context/label_click"] == [1] and sample["context/label_conversion"] == [0]
    seg = _segments(sample, layout)
    # G^U: u1 -> u3 (1/sqrt 2), u2 (1/2); u3 -> u1; u2 -> u1.
    assert seg[("U", 1)] == [("u3", R), ("u2", 0.5)]
    assert seg[("U", 2)] == [("u1", R), ("", 0.0), ("u1", 0.5), ("", 0.0)]
    # G^I: i1 -> i3 (1/sqrt 2), i2 (1/2); i3 -> i1; i2 -> i1.
    assert seg[("I", 1)] == [("i3", R), ("i2", 0.5)]
    assert seg[("I", 2)] == [("i1", R), ("", 0.0), ("i1", 0.5), ("", 0.0)]
    # G from u1: i1 is the pair's own item, so only i2; i2's users are u1 and u3.
    assert seg[("G_u", 1)] == [("i2", 1.0), ("", 1.0)]
    assert sorted(seg[("G_u", 2)][:2]) == [("u1", 1.0), ("u3", 1.0)]
    assert [i for i, _ in seg[("G_u", 2)][2:]] == ["", ""]
    # G from i1: u1 is the pair's own user, so only u2; u2's items are i1 and i3.
    assert seg[("G_i", 1)] == [("u2", 1.0), ("", 1.0)]
    assert sorted(i for i, _ in seg[("G_i", 2)][:2]) == ["i1", "i3"]
    # Masks follow the ids.
    for node_set in ("user", "item"):
        ids = sample[f"nodes/{node_set}.#id"]
        assert sample[f"nodes/{node_set}.mask"] == [1 if i else 0 for i in ids]
    # u4 has no positive, so it is in no graph: only the roots and padding on its side.
    _, lonely = by_root[("u4", "i3")]
    seg = _segments(lonely, layout)
    assert {i for i, _ in seg[("U", 1)] + seg[("U", 2)] + seg[("G_u", 1)]} == {""}
    # The test pair (u3, i3) is not an edge of G: i3's users are u2 only.
    _, held_out = by_root[("u3", "i3")]
    assert _segments(held_out, layout)[("G_i", 1)] == [("u2", 1.0), ("", 1.0)]
    for _, s in by_root.values():
        pair = (s["nodes/user.#id"][0], s["nodes/item.#id"][0])
        assert pair not in pair_edges(s)
    return True


@pytest.mark.parametrize("strategy", ["memory", "join"])
def test_golden_samples(strategy):
    with TestPipeline(runner="FnApiRunner") as p:
        samples = _sample(p, GOLDEN, [2, 2], strategy)
        checked = samples | beam.combiners.ToList() | beam.Map(_golden_check)
        assert_that(checked, equal_to([True]))


def _random_pairs(n_users=40, n_items=25, n_rows=400, seed=5):
    import random

    rng = random.Random(seed)
    pairs = set()
    while len(pairs) < n_rows:
        pairs.add((f"u{rng.randrange(n_users)}", f"i{rng.randrange(n_items)}"))
    out = []
    for k, (u, i) in enumerate(sorted(pairs)):
        split = "test" if k % 7 == 0 else ("valid" if k % 11 == 0 else "train")
        click = int(rng.random() < 0.5)
        out.append((split, Interaction(u, i, None, (click, click * int(rng.random() < 0.3)))))
    return out


def _run(pairs, fanouts, strategy, seed, directory):
    """Samples the pairs and returns the sorted (split, record) list."""
    prefix = str(directory / f"{strategy}-{seed}")
    with TestPipeline(runner="FnApiRunner") as p:
        samples = _sample(p, pairs, fanouts, strategy, seed)
        _ = (
            samples
            | beam.MapTuple(lambda split, record: split.encode() + b"|" + record)
            | beam.io.WriteToTFRecord(prefix, num_shards=1)
        )
    import glob

    import tensorflow as tf

    out = []
    for path in glob.glob(prefix + "*"):
        for r in tf.data.TFRecordDataset(path):
            split, record = r.numpy().split(b"|", 1)
            out.append((split.decode(), record))
    return sorted(out)


def test_strategies_agree_seed_reproduces_and_no_own_edge(tmp_path):
    pairs = _random_pairs()
    memory = _run(pairs, [4, 3], "memory", 1, tmp_path / "a")
    join = _run(pairs, [4, 3], "join", 1, tmp_path / "b")
    assert len(memory) == len(pairs)
    assert memory == join
    assert _run(pairs, [4, 3], "memory", 1, tmp_path / "c") == memory
    assert _run(pairs, [4, 3], "memory", 2, tmp_path / "d") != memory
    layout = SampleLayout([4, 3])
    for _, serialized in memory:
        sample = parse(serialized)
        pair = (sample["nodes/user.#id"][0], sample["nodes/item.#id"][0])
        assert pair not in pair_edges(sample)
        for node_set, size in layout.node_set_sizes.items():
            assert len(sample[f"nodes/{node_set}.#id"]) == size
    held_out = {(r.user_id, r.item_id) for s, r in pairs if s != "train"}
    seen_edges = set()
    for _, serialized in memory:
        seen_edges |= pair_edges(parse(serialized))
    assert seen_edges and not seen_edges & held_out


def _train_order(pairs, strategy, mix_seed, directory):
    """The (user, item, click) of the training samples, in the order they were written."""
    prefix = str(directory / f"order-{strategy}")
    with TestPipeline(runner="FnApiRunner") as p:
        samples = _sample(p, pairs, [2, 1], strategy, seed=1, mix_seed=mix_seed)
        _ = (
            samples
            | beam.Filter(lambda kv: kv[0] == "train")
            | beam.Values()
            | beam.io.WriteToTFRecord(prefix, num_shards=1, shard_name_template="")
        )
    import tensorflow as tf

    order = []
    for r in tf.data.TFRecordDataset(prefix):
        sample = parse(r.numpy())
        root = (sample["nodes/user.#id"][0], sample["nodes/item.#id"][0])
        order.append((*root, sample["context/label_click"][0]))
    return order


def test_with_a_mix_seed_both_strategies_write_one_mixed_order(tmp_path):
    from scipy import stats

    # Clicks first, as a job reading one behaviour file after another sees them.
    pairs = sorted(_random_pairs(), key=lambda sp: -sp[1].labels[0])
    orders = {s: _train_order(pairs, s, 3, tmp_path) for s in SAMPLERS}
    train = [(r.user_id, r.item_id, r.labels[0]) for s, r in pairs if s == "train"]
    # The join strategy regroups by item; its mix restores the memory strategy's
    # order (one bucket here, so one order).
    assert orders["memory"] == orders["join"]
    assert sorted(orders["join"]) == sorted(train)
    clicks = [c for _, _, c in orders["join"]]
    half = len(clicks) // 2
    table = [[sum(c), len(c) - sum(c)] for c in (clicks[:half], clicks[half:])]
    assert stats.fisher_exact(table).pvalue > 0.01  # unmixed, the first half is all clicks
