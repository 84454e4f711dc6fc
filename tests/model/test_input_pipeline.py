"""The input pipeline over samples written in the preprocessing job's format."""

import os

import numpy as np
import pytest
import tensorflow as tf

from beam_pipelines.sample_encoder import SampleEncoder, graph_schema_text
from contracts.layout import SampleLayout
from model.input_pipeline import DataError, make_dataset

TASKS = ("click", "conversion")
LAYOUT = SampleLayout([3, 2])


def _write_split(directory, split, n, shards=2):
    encoder = SampleEncoder(LAYOUT, TASKS)
    os.makedirs(directory / split, exist_ok=True)
    for shard in range(shards):
        path = str(directory / split / f"samples-{shard:05d}-of-{shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for k in range(shard, n, shards):
                ids = {
                    s: [f"{s[0]}{k}"] + [None if j % 3 else f"{s[0]}n{j}" for j in range(size - 1)]
                    for s, size in LAYOUT.node_set_sizes.items()
                }
                weights = {
                    e: [k / 100.0] * LAYOUT.edge_set_sizes[e] for e in ("user_user", "item_item")
                }
                writer.write(encoder.encode(ids, weights, (k % 2, k % 4 == 1)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    (out / "graph_schema.pbtxt").write_text(graph_schema_text(TASKS))
    (out / "layout.json").write_text(LAYOUT.to_json())
    _write_split(out, "train", 40)
    return str(out)


def test_dense_batches_hold_the_layout_and_labels_apart(data_dir):
    batches = list(make_dataset(data_dir, "train", 16, shuffle=False))
    assert [len(b[1]["click"]) for b in batches] == [16, 16, 8]
    # Unshuffled reads come in file order (the two shards interleaved).
    order = [i.decode() for b in batches for i in b[0]["user_ids"][:, 0].numpy()]
    assert order == [f"u{k}" for k in range(40)]
    inputs, labels = batches[0]
    users = LAYOUT.node_set_sizes["user"]
    assert inputs["user_ids"].shape == (16, users) and inputs["user_ids"].dtype == tf.string
    assert inputs["item_mask"].dtype == tf.float32
    assert inputs["user_user_weight"].shape == (16, LAYOUT.edge_set_sizes["user_user"])
    assert not any("label" in name for name in inputs)
    roots = [i.decode() for i in inputs["user_ids"][:, 0].numpy()]
    for root, click, conversion in zip(
        roots, labels["click"].numpy(), labels["conversion"].numpy(), strict=True
    ):
        k = int(root[1:])
        assert click == k % 2 and conversion == float(k % 4 == 1)
    mask = inputs["user_mask"].numpy()
    ids = inputs["user_ids"].numpy()
    np.testing.assert_array_equal(mask, (ids != b"").astype(np.float32))


def test_graph_mode_removes_the_labels(data_dir):
    graph, labels = next(iter(make_dataset(data_dir, "train", 8, mode="graph", shuffle=False)))
    assert set(graph.context.features) == set()
    assert graph.node_sets["user"]["#id"].shape[0] == 8
    assert labels["click"].shape == (8,)


def test_deterministic_mode_repeats_the_order(data_dir):
    def roots(seed):
        data = make_dataset(data_dir, "train", 8, deterministic=True, seed=seed)
        return [r.decode() for batch, _ in data for r in batch["user_ids"][:, 0].numpy()]

    first = roots(1)
    assert first == roots(1) and sorted(first) == sorted(roots(2)) and first != roots(2)


def test_one_line_errors(data_dir, tmp_path):
    with pytest.raises(DataError, match="no such data directory"):
        make_dataset(str(tmp_path / "nope"), "train", 4)
    with pytest.raises(DataError, match="has no graph_schema.pbtxt"):
        make_dataset(str(tmp_path), "train", 4)
    with pytest.raises(DataError, match="no examples"):
        make_dataset(data_dir, "test", 4)
    with pytest.raises(DataError, match="task 'purchase' has no context feature label_purchase"):
        make_dataset(data_dir, "train", 4, tasks=["click", "purchase"])
