"""Each MGNN layer and κ on fixed tensors: shapes, normalisation, equations."""

import numpy as np
import pytest
import tensorflow as tf

from model.layers.graph import (
    AttentionAggregation,
    LSTMUpdate,
    NeighbourAttention,
    PairInteraction,
    TreeChannel,
)
from tests.model.layers.common import assert_config_roundtrip, normal

B, D = 4, 6


def test_attention_sums_to_one_over_real_neighbours_and_zero_elsewhere():
    attention = NeighbourAttention()
    mask = tf.constant([[1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1]], tf.float32)
    alpha = attention((normal(B, D), normal(B, 3, D, seed=1), mask, None)).numpy()
    np.testing.assert_allclose(alpha.sum(-1), [1, 0, 1, 1], atol=1e-6)
    assert (alpha[mask.numpy() == 0] == 0).all()
    assert_config_roundtrip(attention)


def test_attention_prior_multiplies_by_the_edge_weight():
    node, neighbours = normal(1, D), normal(1, 2, D, seed=1)
    mask = tf.ones([1, 2])
    weight = tf.constant([[0.2, 0.6]])
    plain = NeighbourAttention(edge_weight="none")
    alpha = plain((node, neighbours, mask, weight)).numpy()
    prior = NeighbourAttention(edge_weight="prior")
    prior((node, neighbours, mask, weight))
    prior.set_weights(plain.get_weights())
    expected = alpha * [0.2, 0.6] / (alpha * [0.2, 0.6]).sum()
    np.testing.assert_allclose(prior((node, neighbours, mask, weight)).numpy(), expected, rtol=1e-5)


def test_aggregation_is_leaky_relu_of_w_times_the_weighted_sum():
    aggregation = AttentionAggregation(5)
    node, neighbours = normal(B, D), normal(B, 3, D, seed=1)
    mask = tf.constant([[1, 1, 0]] * B, tf.float32)
    message = aggregation((node, neighbours, mask, None)).numpy()
    alpha = aggregation.attention((node, neighbours, mask, None)).numpy()
    # Recomputed from W: the only check that W_c follows the weighted sum, then LeakyReLU.
    pooled = (alpha[..., None] * neighbours.numpy()).sum(1)
    linear = pooled @ aggregation.kernel.kernel.numpy()
    np.testing.assert_allclose(message, np.where(linear > 0, linear, 0.2 * linear), rtol=1e-5)
    assert_config_roundtrip(aggregation)


def test_lstm_update_matches_its_equation():
    update = LSTMUpdate()
    state, message = normal(B, D), normal(B, D, seed=1)
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
    channel = TreeChannel(2, D)
    states = [normal(B, D), normal(B, 3, D, seed=1), normal(B, 3, 2, D, seed=2)]
    masks = [tf.ones([B, 3]), tf.ones([B, 3, 2])]
    root = channel(states, masks)
    assert root.shape == (B, D)
    agg0, agg1 = channel.aggregations
    up0, up1 = channel.node_updates
    hop1 = up0((states[1], agg0((states[1], states[2], masks[1], None))))
    hop0 = up0((states[0], agg0((states[0], states[1], masks[0], None))))
    expected = up1((hop0, agg1((hop0, hop1, masks[0], None))))
    np.testing.assert_allclose(root.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert_config_roundtrip(channel)


@pytest.mark.parametrize("kind,size", [("product", D), ("add", D), ("concat", 2 * D), ("mlp", D)])
def test_pair_interaction_kinds(kind, size):
    a, b = normal(B, D), normal(B, D, seed=1)
    kappa = PairInteraction(kind)
    out = kappa((a, b)).numpy()
    assert out.shape == (B, size) and kappa.output_dim(D) == size
    if kind == "product":
        np.testing.assert_allclose(out, a.numpy() * b.numpy(), rtol=1e-6)
    elif kind == "add":
        np.testing.assert_allclose(out, a.numpy() + b.numpy(), rtol=1e-6)
    elif kind == "concat":
        np.testing.assert_allclose(out, np.concatenate([a.numpy(), b.numpy()], -1))
    assert_config_roundtrip(kappa)
