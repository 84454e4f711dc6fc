"""The hand-encoded records equal tfgnn.write_example's and parse with the schema."""

import random

import tensorflow as tf
import tensorflow_gnn as tfgnn

from beam_pipelines.sample_encoder import SampleEncoder, graph_schema_text
from contracts.layout import EDGE_SET_ENDPOINTS, WEIGHTED_EDGE_SETS, SampleLayout

TASKS = ("click", "conversion")


def _random_sample(layout, rng):
    node_ids = {
        s: [rng.choice([None, f"{s[0]}{rng.randrange(50)}", "ünï-" + s]) for _ in range(n)]
        for s, n in layout.node_set_sizes.items()
    }
    weights = {
        e: [round(rng.random(), 3) for _ in range(layout.edge_set_sizes[e])]
        for e in WEIGHTED_EDGE_SETS
    }
    return node_ids, weights, (rng.randrange(2), rng.randrange(2))


def _graph_tensor(layout, node_ids, weights, labels):
    node_sets = {
        s: tfgnn.NodeSet.from_fields(
            sizes=[len(ids)],
            features={
                "#id": tf.constant([i.encode() if i else b"" for i in ids]),
                "mask": tf.constant([0 if i is None else 1 for i in ids], tf.int64),
            },
        )
        for s, ids in node_ids.items()
    }
    edge_sets = {}
    for e, (src, dst) in EDGE_SET_ENDPOINTS.items():
        sources, targets = layout.adjacency_indices(e)
        features = {"weight": tf.constant(weights[e], tf.float32)} if e in weights else {}
        edge_sets[e] = tfgnn.EdgeSet.from_fields(
            sizes=[len(sources)],
            adjacency=tfgnn.Adjacency.from_indices(
                (src, tf.constant(sources, tf.int64)), (dst, tf.constant(targets, tf.int64))
            ),
            features=features,
        )
    context = tfgnn.Context.from_fields(
        features={
            f"label_{t}": tf.constant([v], tf.int64) for t, v in zip(TASKS, labels, strict=True)
        }
    )
    return tfgnn.GraphTensor.from_pieces(context=context, node_sets=node_sets, edge_sets=edge_sets)


def test_records_equal_tfgnn_write_example():
    rng = random.Random(3)
    for fanouts in ([10, 5], [2, 3, 1]):
        layout = SampleLayout(fanouts)
        encoder = SampleEncoder(layout, TASKS)
        for _ in range(3):
            node_ids, weights, labels = _random_sample(layout, rng)
            ours = tf.train.Example.FromString(encoder.encode(node_ids, weights, labels))
            theirs = tfgnn.write_example(_graph_tensor(layout, node_ids, weights, labels))
            assert ours == theirs


def _reference_schema(tasks):
    """The schema built with TF-GNN from a GraphTensor of the same shape."""
    layout = SampleLayout([2])
    rng = random.Random(1)
    return tfgnn.create_schema_pb_from_graph_spec(
        _graph_tensor(layout, *_random_sample(layout, rng)).spec
    )


def test_schema_text_equals_tfgnn_schema_and_parses_a_batch(tmp_path):
    layout = SampleLayout([3, 2])
    encoder = SampleEncoder(layout, TASKS)
    path = tmp_path / "graph_schema.pbtxt"
    path.write_text(graph_schema_text(TASKS))
    schema = tfgnn.read_schema(str(path))
    assert schema == _reference_schema(TASKS)
    spec = tfgnn.create_graph_spec_from_schema_pb(schema)
    rng = random.Random(0)
    samples = [encoder.encode(*_random_sample(layout, rng)) for _ in range(4)]
    graph = tfgnn.parse_example(spec, tf.constant(samples))
    assert graph.node_sets["user"].sizes.numpy().tolist() == [[layout.node_set_sizes["user"]]] * 4
    assert graph.edge_sets["user_user"]["weight"].shape[0] == 4
    assert set(graph.context.features) == {"label_click", "label_conversion"}
