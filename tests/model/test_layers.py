"""Each MoGENet layer on fixed tensors: shapes, normalisation, equations."""

import numpy as np
import pytest
import tensorflow as tf

from model import layers
from model.entities import EntityTable
from model.mogenet import cooperative_loss

B, D = 4, 6


def _random(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _roundtrip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_entity_encoder_sums_id_feature_and_numeric_embeddings():
    table = EntityTable.from_rows(
        ["a", "b"], [{"id": "a", "colour": "red", "size": 2.0}, {"id": "c", "colour": "blue"}]
    )
    encoder = layers.EntityEncoder.from_table(table, D)
    indices = tf.constant([[1, 0, 3], [2, 2, 1]])
    encoded, norm = encoder(indices, return_squared_norm=True)
    assert encoded.shape == (2, 3, D)
    # Recomputed from the encoder's tables: the only check of Enc's three terms and of
    # the distinct-row norm the L2 penalty uses.
    ids = encoder.id_embedding.numpy()
    features = encoder.feature_embedding.numpy()
    values = encoder.feature_values.numpy()[:, 0]
    numeric = encoder.numeric_values.numpy()
    kernel = encoder.numeric_kernel.numpy()
    expected = (
        ids[indices.numpy()]
        + features[values[indices.numpy()]]
        + (numeric[indices.numpy()] @ kernel)
    )
    np.testing.assert_allclose(encoded.numpy(), expected, rtol=1e-6)
    distinct = np.unique(indices.numpy())
    expected_norm = (ids[distinct] ** 2).sum() + (features[values[distinct]] ** 2).sum()
    np.testing.assert_allclose(norm.numpy(), expected_norm, rtol=1e-5)
    _roundtrip(encoder)


def test_attention_sums_to_one_over_real_neighbours_and_zero_elsewhere():
    attention = layers.NeighbourAttention()
    mask = tf.constant([[1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1]], tf.float32)
    alpha = attention((_random(B, D), _random(B, 3, D, seed=1), mask, None)).numpy()
    np.testing.assert_allclose(alpha.sum(-1), [1, 0, 1, 1], atol=1e-6)
    assert (alpha[mask.numpy() == 0] == 0).all()
    _roundtrip(attention)


def test_attention_prior_multiplies_by_the_edge_weight():
    node, neighbours = _random(1, D), _random(1, 2, D, seed=1)
    mask = tf.ones([1, 2])
    weight = tf.constant([[0.2, 0.6]])
    plain = layers.NeighbourAttention(edge_weight="none")
    alpha = plain((node, neighbours, mask, weight)).numpy()
    prior = layers.NeighbourAttention(edge_weight="prior")
    prior((node, neighbours, mask, weight))
    prior.set_weights(plain.get_weights())
    expected = alpha * [0.2, 0.6] / (alpha * [0.2, 0.6]).sum()
    np.testing.assert_allclose(prior((node, neighbours, mask, weight)).numpy(), expected, rtol=1e-5)


def test_aggregation_is_leaky_relu_of_w_times_the_weighted_sum():
    aggregation = layers.AttentionAggregation(5)
    node, neighbours = _random(B, D), _random(B, 3, D, seed=1)
    mask = tf.constant([[1, 1, 0]] * B, tf.float32)
    message = aggregation((node, neighbours, mask, None)).numpy()
    alpha = aggregation.attention((node, neighbours, mask, None)).numpy()
    # Recomputed from W: the only check that W_c follows the weighted sum, then LeakyReLU.
    pooled = (alpha[..., None] * neighbours.numpy()).sum(1)
    linear = pooled @ aggregation.kernel.kernel.numpy()
    np.testing.assert_allclose(message, np.where(linear > 0, linear, 0.2 * linear), rtol=1e-5)
    _roundtrip(aggregation)


def test_lstm_update_matches_its_equation():
    update = layers.LSTMUpdate()
    state, message = _random(B, D), _random(B, D, seed=1)
    new = update((state, message)).numpy()
    # Recomputed from the gate kernel: the only check of the update's gate order and cell.
    z = np.concatenate([state.numpy(), message.numpy()], -1) @ update.gates.kernel.numpy()
    i, f, o, g = np.split(z + update.gates.bias.numpy(), 4, -1)

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    cell = sigmoid(f) * state.numpy() + sigmoid(i) * np.tanh(g)
    np.testing.assert_allclose(new, sigmoid(o) * np.tanh(cell), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(update.gates.bias.numpy()[D : 2 * D], 1.0)


def test_tree_channel_updates_only_what_reaches_the_root():
    channel = layers.TreeChannel(2, D)
    states = [_random(B, D), _random(B, 3, D, seed=1), _random(B, 3, 2, D, seed=2)]
    masks = [tf.ones([B, 3]), tf.ones([B, 3, 2])]
    root = channel(states, masks)
    assert root.shape == (B, D)
    agg0, agg1 = channel.aggregations
    up0, up1 = channel.node_updates
    hop1 = up0((states[1], agg0((states[1], states[2], masks[1], None))))
    hop0 = up0((states[0], agg0((states[0], states[1], masks[0], None))))
    expected = up1((hop0, agg1((hop0, hop1, masks[0], None))))
    np.testing.assert_allclose(root.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    _roundtrip(channel)


@pytest.mark.parametrize("kind,size", [("product", D), ("add", D), ("concat", 2 * D), ("mlp", D)])
def test_pair_interaction_kinds(kind, size):
    a, b = _random(B, D), _random(B, D, seed=1)
    kappa = layers.PairInteraction(kind)
    out = kappa((a, b)).numpy()
    assert out.shape == (B, size) and kappa.output_dim(D) == size
    if kind == "product":
        np.testing.assert_allclose(out, a.numpy() * b.numpy(), rtol=1e-6)
    elif kind == "add":
        np.testing.assert_allclose(out, a.numpy() + b.numpy(), rtol=1e-6)
    elif kind == "concat":
        np.testing.assert_allclose(out, np.concatenate([a.numpy(), b.numpy()], -1))
    _roundtrip(kappa)


def test_experts_are_independent_mlps():
    experts = layers.Experts(3, (5, 4))
    x = _random(B, D)
    out = experts(x).numpy()
    assert out.shape == (B, 3, 4)
    # Recomputed from the stacked kernels: the only check that expert n uses slice n alone.
    w0, w1 = (k.numpy() for k in experts.kernels)
    b0, b1 = (b.numpy() for b in experts.biases)

    def leaky(v):
        return np.where(v > 0, v, 0.2 * v)

    for n in range(3):
        expected = leaky(leaky(x.numpy() @ w0[n] + b0[n]) @ w1[n] + b1[n])
        np.testing.assert_allclose(out[:, n], expected, rtol=1e-5, atol=1e-6)
    _roundtrip(experts)
    # One input per expert ([B, N, in]): expert n reads only its own.
    own = np.stack([x.numpy(), 2 * x.numpy(), -x.numpy()], 1)
    per_expert = experts(tf.constant(own)).numpy()
    for n in range(3):
        expected = leaky(leaky(own[:, n] @ w0[n] + b0[n]) @ w1[n] + b1[n])
        np.testing.assert_allclose(per_expert[:, n], expected, rtol=1e-5, atol=1e-6)


def test_gates_route_each_task_by_its_own_linear_map():
    # Known weights, known inputs: task 0's kernel sends x_0 to expert 2, task
    # 1's sends x_1 to expert 0 and its bias leans to expert 1.
    gates = layers.TaskGates(2, 3)
    gates.build((None, 2))
    kernel = np.zeros([2, 2, 3], np.float32)
    kernel[0, 0, 2] = kernel[1, 1, 0] = np.log(3.0)
    gates.kernel.assign(kernel)
    gates.bias.assign(np.log([[1.0, 1.0, 1.0], [1.0, 2.0, 1.0]]).astype(np.float32))
    g = gates(tf.constant([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])).numpy()
    assert g.shape == (3, 2, 3)
    expected = [
        [[1 / 5, 1 / 5, 3 / 5], [1 / 4, 2 / 4, 1 / 4]],  # x_0 > 0: task 0 leans to expert 2
        [[3 / 7, 3 / 7, 1 / 7], [1 / 4, 2 / 4, 1 / 4]],  # x_0 < 0: away from it; task 1 unmoved
        [[1 / 3, 1 / 3, 1 / 3], [3 / 6, 2 / 6, 1 / 6]],  # x_1 moves task 1 only
    ]
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    _roundtrip(gates)


def test_task_heads_mix_experts_by_gate_then_project():
    heads = layers.TaskHeads(2)
    experts, gates = _random(B, 3, 5), tf.nn.softmax(_random(B, 2, 3, seed=1))
    logits = heads((experts, gates)).numpy()
    # Recomputed from v_k: the only check of the gate-weighted mix feeding each task's head.
    mixed = np.einsum("bkn,bnd->bkd", gates.numpy(), experts.numpy())
    expected = np.einsum("bkd,kd->bk", mixed, heads.kernel.numpy()) + heads.bias.numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    _roundtrip(heads)


def test_cooperative_loss_is_minus_the_sum_of_gate_pair_products():
    gates = tf.constant([[[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]]])
    expected = -(0.5 * 0.3 + 0.5 * 0.2 + 0.3 * 0.2) - 0.0
    np.testing.assert_allclose(cooperative_loss(gates).numpy(), [expected], rtol=1e-6)


def test_cooperative_loss_moves_gates_toward_balance():
    gates = layers.TaskGates(1, 4)
    x = _random(64, D)
    gates(x)
    gates.bias.assign([[3.0, 0.0, -1.0, -2.0]])
    optimizer = tf.keras.optimizers.SGD(2.0)
    before = gates(x).numpy().max(-1).mean()
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(cooperative_loss(gates(x)))
        grads = tape.gradient(loss, gates.trainable_variables)
        optimizer.apply_gradients(zip(grads, gates.trainable_variables, strict=True))
    after = gates(x).numpy()
    assert after.max(-1).mean() < before - 0.3
    np.testing.assert_allclose(after.mean((0, 1)), 0.25, atol=0.05)
