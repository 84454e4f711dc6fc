"""The mixture-of-experts layers on fixed tensors: experts, gates, heads, L_co."""

import numpy as np
import tensorflow as tf

from model.layers.experts import Experts, TaskGates, TaskHeads
from model.mogenet import cooperative_loss
from tests.model.layers.common import assert_config_roundtrip, normal

B, D = 4, 6


def test_experts_are_independent_mlps():
    experts = Experts(3, (5, 4))
    x = normal(B, D)
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
    assert_config_roundtrip(experts)
    # One input per expert ([B, N, in]): expert n reads only its own.
    own = np.stack([x.numpy(), 2 * x.numpy(), -x.numpy()], 1)
    per_expert = experts(tf.constant(own)).numpy()
    for n in range(3):
        expected = leaky(leaky(own[:, n] @ w0[n] + b0[n]) @ w1[n] + b1[n])
        np.testing.assert_allclose(per_expert[:, n], expected, rtol=1e-5, atol=1e-6)


def test_gates_route_each_task_by_its_own_linear_map():
    # Known weights, known inputs: task 0's kernel sends x_0 to expert 2, task
    # 1's sends x_1 to expert 0 and its bias leans to expert 1.
    gates = TaskGates(2, 3)
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
    assert_config_roundtrip(gates)


def test_gates_with_hidden_layers_run_one_mlp_per_task_over_allowed_experts():
    # The baselines' gating networks (MMoE, CGC): g^k = softmax(W_k MLP_k(x) + b_k),
    # zero on the experts task k may not use.
    allowed = [[1, 0, 1], [0, 1, 1]]
    gates = TaskGates(2, 3, hidden=(5,), allowed=allowed)
    x = normal(B, D)
    g = gates(x).numpy()
    assert g.shape == (B, 2, 3)
    np.testing.assert_allclose(g.sum(-1), 1.0, rtol=1e-6)
    assert (g[:, np.array(allowed) == 0] == 0).all()
    # Recomputed from the weights: task k's MLP is slice k of the stacked kernels.
    (w,), (b,) = (k.numpy() for k in gates.mlps.kernels), (v.numpy() for v in gates.mlps.biases)
    for k in range(2):
        hidden = x.numpy() @ w[k] + b[k]
        logits = np.where(hidden > 0, hidden, 0.2 * hidden) @ gates.kernel.numpy()[k]
        logits = logits + gates.bias.numpy()[k] - 1e9 * (1 - np.array(allowed[k]))
        expected = np.exp(logits - logits.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(g[:, k], expected, rtol=1e-5, atol=1e-6)
    assert_config_roundtrip(gates)


def test_task_heads_mix_experts_by_gate_then_project():
    heads = TaskHeads(2)
    experts, gates = normal(B, 3, 5), tf.nn.softmax(normal(B, 2, 3, seed=1))
    logits = heads((experts, gates)).numpy()
    # Recomputed from v_k: the only check of the gate-weighted mix feeding each task's head.
    mixed = np.einsum("bkn,bnd->bkd", gates.numpy(), experts.numpy())
    expected = np.einsum("bkd,kd->bk", mixed, heads.kernel.numpy()) + heads.bias.numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    assert_config_roundtrip(heads)


def test_cooperative_loss_is_minus_the_sum_of_gate_pair_products():
    gates = tf.constant([[[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]]])
    expected = -(0.5 * 0.3 + 0.5 * 0.2 + 0.3 * 0.2) - 0.0
    np.testing.assert_allclose(cooperative_loss(gates).numpy(), [expected], rtol=1e-6)


def test_cooperative_loss_moves_gates_toward_balance():
    gates = TaskGates(1, 4)
    x = normal(64, D)
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
