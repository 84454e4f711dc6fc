"""The assembled model on a tiny planted-graph fixture."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn

from model import trained
from model.config import ModelConfig
from model.entities import load_entities
from model.input_pipeline import DataSpec, GraphTensorInputs, make_dataset
from model.mogenet import MoGENet
from tests.model.planted import write_planted

TINY = dict(embedding_dim=8, expert_units=(8,))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = write_planted(tmp_path_factory.mktemp("planted"))
    spec = DataSpec(out)
    entities = load_entities(out)
    batch, labels = next(
        iter(make_dataset(out, "train", 32, shuffle=False, deterministic=True, entities=entities))
    )
    return out, spec, entities, batch, labels


def _model(data, **overrides):
    _, spec, entities, _, _ = data
    model = MoGENet(ModelConfig(**{**TINY, **overrides}), spec.tasks, spec.layout, entities)
    trained.build_with_dummy_batch(model, spec.layout)
    return model


def test_each_task_scores_the_sigmoid_of_its_own_logit(data):
    model = _model(data)
    out = model(data[3])
    assert set(out) == {"click", "conversion"}
    logits, gates = (t.numpy() for t in model.forward(data[3]))
    assert logits.shape == (32, 2) and gates.shape == (32, 2, 4)
    # Task k is column k, in the schema's task order; the columns differ, so a swap shows.
    assert model.task_names == ("click", "conversion")
    assert np.abs(logits[:, 0] - logits[:, 1]).max() > 1e-4
    for k, task in enumerate(model.task_names):
        assert out[task].shape == (32,)
        np.testing.assert_allclose(out[task].numpy(), 1 / (1 + np.exp(-logits[:, k])), rtol=1e-6)


def test_tree_slices_follow_the_edges_of_the_graph_tensor(data):
    out, spec, entities, _, _ = data
    model = _model(data, embedding_dim=1)
    dense, _ = next(
        iter(make_dataset(out, "train", 4, shuffle=False, deterministic=True, entities=entities))
    )
    graph, _ = next(
        iter(make_dataset(out, "train", 4, shuffle=False, deterministic=True, mode="graph"))
    )
    positions = {
        s: tf.tile(tf.range(n, dtype=tf.float32)[None, :, None], [4, 1, 1])
        for s, n in spec.layout.node_set_sizes.items()
    }
    graph = graph.merge_batch_to_components()
    for tree in ("G_u", "G_i", "U", "I"):
        hops, masks, weights = model._tree_inputs(tree, positions, dense)
        for h, segment in enumerate(spec.layout.tree_segments(tree)):
            children = hops[h + 1].numpy()[0, ..., 0]
            parents = np.broadcast_to(hops[h].numpy()[0, ..., 0][..., None], children.shape)
            found = set(zip(children.ravel().astype(int), parents.ravel().astype(int), strict=True))
            adjacency = graph.edge_sets[segment.edge_set].adjacency
            sizes = {s: spec.layout.node_set_sizes[s] for s in ("user", "item")}
            lo = segment.edge_offset
            sources = adjacency.source.numpy()[lo : lo + segment.size] % sizes[segment.node_set]
            targets = adjacency.target.numpy()[lo : lo + segment.size] % sizes[segment.parent_set]
            assert found == set(zip(sources, targets, strict=True))
            mask = graph.node_sets[segment.node_set]["mask"].numpy()[: sizes[segment.node_set]]
            np.testing.assert_array_equal(masks[h].numpy()[0].ravel(), mask[sources])
            if weights is not None:
                edge_weight = graph.edge_sets[segment.edge_set]["weight"].numpy()[
                    lo : lo + segment.size
                ]
                np.testing.assert_array_equal(weights[h].numpy()[0].ravel(), edge_weight)
    assert isinstance(graph, tfgnn.GraphTensor)


def test_graph_tensor_batches_give_the_same_predictions_as_dense_ones(data):
    out, spec, entities, _, _ = data
    model = _model(data)
    kwargs = dict(shuffle=False, deterministic=True)
    dense, dense_labels = next(iter(make_dataset(out, "test", 16, entities=entities, **kwargs)))
    graph, graph_labels = next(iter(make_dataset(out, "test", 16, mode="graph", **kwargs)))
    assert isinstance(graph, tfgnn.GraphTensor)
    reader = GraphTensorInputs(spec.layout, entities)
    read = reader(graph)
    assert set(read) == set(dense)
    for key, value in dense.items():
        np.testing.assert_array_equal(read[key].numpy(), value.numpy(), err_msg=key)
    for task, labels in dense_labels.items():
        np.testing.assert_array_equal(graph_labels[task].numpy(), labels.numpy())
    expected, got = model(dense), model(read)
    for task in expected:
        np.testing.assert_allclose(got[task].numpy(), expected[task].numpy(), rtol=1e-6)
    # Samples lumped into one component reshape fine but are not the layout: refused.
    merged = graph.merge_batch_to_components()

    def lump(piece):
        return tf.reduce_sum(piece.sizes, keepdims=True)

    lumped = tfgnn.GraphTensor.from_pieces(
        context=tfgnn.Context.from_fields(sizes=[1]),
        node_sets={
            name: tfgnn.NodeSet.from_fields(sizes=lump(piece), features=piece.features)
            for name, piece in merged.node_sets.items()
        },
        edge_sets={
            name: tfgnn.EdgeSet.from_fields(
                sizes=lump(piece),
                adjacency=tfgnn.Adjacency.from_indices(
                    source=(piece.adjacency.source_name, piece.adjacency.source),
                    target=(piece.adjacency.target_name, piece.adjacency.target),
                ),
                features=piece.features,
            )
            for name, piece in merged.edge_sets.items()
        },
    )
    np.testing.assert_array_equal(reader(merged)["user_index"].numpy(), dense["user_index"].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="layout"):
        reader(lumped)


def _bce(labels, logits):
    return np.mean(np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits))))


@pytest.mark.parametrize(
    "switches",
    [
        dict(uncertainty=False, cooperative=False, l2=False),
        dict(uncertainty=True, cooperative=False, l2=False),
        dict(uncertainty=True, cooperative=True, l2=False, beta=0.5),
        dict(uncertainty=True, cooperative=True, l2=True, beta=0.5, l2_lambda=0.01),
        dict(uncertainty=False, cooperative=False, l2=True, l2_lambda=0.01, l2_scope="all"),
    ],
)
def test_loss_terms_equal_a_hand_computation(data, switches):
    _, _, _, batch, labels = data
    model = _model(data, **switches)
    model.log_variance.assign([0.3, -0.2])
    logits, gates = (t.numpy() for t in model.forward(batch))
    expected = 0.0
    for k, task in enumerate(("click", "conversion")):
        bce = _bce(labels[task].numpy(), logits[:, k])
        if switches["uncertainty"]:
            s = model.log_variance.numpy()[k]
            expected += bce / np.exp(s) + s
        else:
            expected += bce
    if switches["cooperative"]:
        pairs = sum(gates[:, :, n] * gates[:, :, m] for n in range(4) for m in range(n + 1, 4)).sum(
            -1
        )
        expected += switches["beta"] * np.mean(-pairs)
    if switches["l2"]:
        dense = 0.0
        if switches.get("l2_scope") == "all":
            dense = sum((v.numpy() ** 2).sum() for v in model.dense_weights())
        names = {v.name for v in model.dense_weights()}
        assert not any("embedding" in n or "log_variance" in n for n in names)
        assert any("experts" in n for n in names) and any("channel_G" in n for n in names)
        rows = 0.0
        for node_set in ("user", "item"):
            encoder = model.encoders[node_set]
            distinct = np.unique(batch[f"{node_set}_index"].numpy())
            rows += (encoder.id_embedding.numpy()[distinct] ** 2).sum()
            sizes = encoder.get_config()["categorical_sizes"]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            values = encoder.feature_values.numpy()[distinct] + offsets
            rows += (encoder.feature_embedding.numpy()[values] ** 2).sum()
        expected += switches["l2_lambda"] * (rows / 32 + dense)
    loss = model.compute_loss((batch, labels), training=True)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_task_uncertainties_are_trained(data):
    _, _, _, batch, labels = data
    model = _model(data)
    assert any(v is model.log_variance for v in model.trainable_variables)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    before = model.task_sigmas().numpy()
    model.train_on_batch(batch, labels)
    assert (model.task_sigmas().numpy() != before).all()


def test_without_graph_experts_it_is_mmoe_on_the_roots(data):
    _, _, _, batch, _ = data
    model = _model(data, graph_experts=0)
    assert not model.channels
    assert not any("channel" in v.name or "kappa" in v.name for v in model.variables)
    # Known roots, so that the rows differ (the planted roots are all one unknown id).
    rows = tf.range(32)
    batch = dict(batch)
    for node_set, step in (("user", 1), ("item", 5)):
        index = batch[f"{node_set}_index"]
        batch[f"{node_set}_index"] = tf.concat([(1 + rows * step % 12)[:, None], index[:, 1:]], 1)
    logits, gates = (t.numpy() for t in model.forward(batch))
    assert np.ptp(logits, 0).min() > 1e-6
    # MMoE on [p_u || q_i]: the experts and gates read the roots' encodings, nothing else.
    pair = tf.concat([model.encoders[s](batch[f"{s}_index"][:, 0]) for s in ("user", "item")], -1)
    expected_gates = model.gates(pair)
    expected = model.heads((model.experts(pair), expected_gates))
    np.testing.assert_allclose(gates, expected_gates.numpy(), rtol=1e-6)
    np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-5, atol=1e-6)
    shuffled = dict(batch)
    shuffled["user_index"] = tf.concat(
        [batch["user_index"][:, :1], batch["user_index"][::-1, 1:]], 1
    )
    np.testing.assert_array_equal(model.forward(shuffled)[0].numpy(), logits)


def test_graph_experts_read_the_neighbours(data):
    _, _, _, batch, _ = data
    model = _model(data, graph_experts=1)
    assert model.trees == ("G_i", "G_u") and set(model.channels) == {"G"}
    logits = model.forward(batch)[0].numpy()
    shuffled = dict(batch)
    shuffled["user_index"] = tf.concat(
        [batch["user_index"][:, :1], batch["user_index"][::-1, 1:]], 1
    )
    assert np.abs(model.forward(shuffled)[0].numpy() - logits).max() > 1e-6


def test_weights_save_and_reload_to_identical_predictions(data, tmp_path):
    _, _, entities, batch, labels = data
    model = _model(data)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.train_on_batch(batch, labels)
    trained.save(model, str(tmp_path), entities)
    restored, restored_entities = trained.load(str(tmp_path))
    assert restored_entities["user"].ids == entities["user"].ids
    for task, scores in model(batch).items():
        np.testing.assert_array_equal(restored(batch)[task].numpy(), scores.numpy())


def test_graph_norm_brings_z_to_the_scale_of_the_experts(data):
    _, _, _, batch, _ = data
    stds = {}
    for norm in ("none", "layer"):
        tf.keras.utils.set_random_seed(0)
        model = _model(data, graph_norm=norm, graph_expert_input="pair")
        encoded, dense, _ = model.encode(batch)
        roots, states = model.tree_states(encoded, dense)
        z = model.graph_features(states).numpy()
        experts = model.experts(tf.concat([roots["user"], roots["item"]], -1)).numpy()
        stds[norm] = z.std() / experts.std()
    # The paper's form leaves Z far below the expert outputs; normalised states do not.
    assert stds["none"] < 0.05 and 0.3 < stds["layer"] < 30
    assert {v.name.split("/")[1] for v in model.variables if "state_norm" in v.name} == {
        f"state_norm_{tree}" for tree in ("G_i", "G_u", "I", "U")
    }


def test_graph_norm_weights_save_and_reload(data, tmp_path):
    _, _, entities, batch, labels = data
    model = _model(data, graph_norm="layer")
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.train_on_batch(batch, labels)
    trained.save(model, str(tmp_path), entities)
    restored, _ = trained.load(str(tmp_path))
    assert restored.config.graph_norm == "layer"
    for task, scores in model(batch).items():
        np.testing.assert_array_equal(restored(batch)[task].numpy(), scores.numpy())


def test_pair_and_z_feeds_each_graph_expert_its_own_z(data):
    _, _, _, batch, _ = data
    tf.keras.utils.set_random_seed(0)
    model = _model(data, graph_expert_input="pair_and_z", graph_experts=2)
    d = model.config.embedding_dim
    assert model.experts.kernels[0].shape == (model.config.num_experts, 3 * d, 8)
    encoded, dense, _ = model.encode(batch)
    roots, states = model.tree_states(encoded, dense)
    z = model.graph_features(states)[:, :2]
    pair = tf.concat([roots["user"], roots["item"]], -1)
    inputs = tf.concat(
        [tf.repeat(pair[:, None], 4, axis=1), tf.pad(z, [[0, 0], [0, 2], [0, 0]])], -1
    )
    experts = model.experts(inputs)
    expected = tf.concat([experts, tf.pad(z, [[0, 0], [0, 2], [0, 0]])], -1)
    logits, gates = model.head(roots, states)
    np.testing.assert_allclose(
        logits.numpy(), model.heads((expected, gates)).numpy(), rtol=1e-5, atol=1e-6
    )
    # The graph experts' outputs move with the neighbourhoods; the others do not.
    zero = model.experts(
        tf.concat([tf.repeat(pair[:, None], 4, axis=1), tf.zeros_like(inputs[..., 2 * d :])], -1)
    )
    assert np.abs(experts[:, :2] - zero[:, :2]).max() > 1e-4
    np.testing.assert_allclose(experts[:, 2:], zero[:, 2:], rtol=1e-6)
