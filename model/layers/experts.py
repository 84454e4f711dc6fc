"""The mixture of experts (Hu et al., §2.3): experts, per-task gates, task logits.

MoGENet's graph enhanced experts are built from them, and so are the
baselines' experts, gating networks and task outputs (`model.baselines`).
"""

from __future__ import annotations

import tensorflow as tf


class Experts(tf.keras.layers.Layer):
    """N expert networks f^n([x_u || x_i]) (§2.3), run as one batched MLP.

    The input is shared by every expert ([B, in]) or one per expert
    ([B, N, in], e.g. `MoGENet`'s `graph_expert_input="pair_and_z"`).

    Each expert is an MLP with LeakyReLU after every layer; the N experts'
    kernels are stacked ([N, in, out]) so one einsum runs them all.

    Args:
      num_experts: N.
      units: Hidden sizes, e.g. (32, 32).
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, num_experts, units=(32, 32), negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.num_experts = num_experts
        self.units = tuple(units)
        self.negative_slope = negative_slope

    def build(self, input_shape):
        size = input_shape[-1]
        self.kernels, self.biases = [], []
        for layer, units in enumerate(self.units):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{layer}",
                    shape=[self.num_experts, size, units],
                    initializer="glorot_uniform",
                )
            )
            self.biases.append(
                self.add_weight(
                    name=f"bias_{layer}", shape=[self.num_experts, units], initializer="zeros"
                )
            )
            size = units
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, N, units[-1]] for inputs [B, in] (shared) or [B, N, in] (one per expert)."""
        first = "bni,nio->bno" if inputs.shape.rank == 3 else "bi,nio->bno"
        x = tf.einsum(first, inputs, self.kernels[0]) + self.biases[0]
        x = tf.nn.leaky_relu(x, self.negative_slope)
        for kernel, bias in zip(self.kernels[1:], self.biases[1:], strict=True):
            x = tf.nn.leaky_relu(tf.einsum("bni,nio->bno", x, kernel) + bias, self.negative_slope)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "num_experts": self.num_experts,
            "units": self.units,
            "negative_slope": self.negative_slope,
        }


class TaskGates(tf.keras.layers.Layer):
    """One softmax gate per task over the experts, g^k = softmax(W_k x + b_k) (§2.3).

    That is MoGENet's gate (`hidden=()`, the default). With hidden sizes each
    task's gate is an MLP with LeakyReLU hidden layers first, g^k =
    softmax(W_k MLP_k(x) + b_k): the gating networks of the MMoE and CGC
    baselines ("gates of [16, 16]", §3). `allowed` [K, N] (0/1) restricts
    task k to some experts (CGC: its own and the shared ones).

    Args:
      num_tasks: K.
      num_experts: N.
      hidden: Hidden sizes of each gate's MLP; () for a linear gate.
      negative_slope: LeakyReLU slope of the MLP.
      allowed: None (every expert) or a [K][N] 0/1 nested list.
    """

    def __init__(
        self, num_tasks, num_experts, hidden=(), negative_slope=0.2, allowed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.hidden = tuple(hidden)
        self.negative_slope = negative_slope
        self.allowed = allowed
        self.mlps = Experts(num_tasks, self.hidden, negative_slope, name="mlps") if hidden else None

    def build(self, input_shape):
        size = self.hidden[-1] if self.hidden else input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=[self.num_tasks, size, self.num_experts],
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(
            name="bias", shape=[self.num_tasks, self.num_experts], initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K, N] gate weights (rows sum to 1 over allowed experts) for [B, in]."""
        if self.mlps is not None:
            logits = tf.einsum("bkh,khn->bkn", self.mlps(inputs), self.kernel) + self.bias
        else:
            logits = tf.einsum("bi,kin->bkn", inputs, self.kernel) + self.bias
        if self.allowed is not None:
            allowed = tf.constant(self.allowed, tf.float32)
            logits += (1.0 - allowed) * -1e9
        return tf.nn.softmax(logits, -1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_experts": self.num_experts,
            "hidden": self.hidden,
            "negative_slope": self.negative_slope,
            "allowed": self.allowed,
        }


class TaskLogits(tf.keras.layers.Layer):
    """One linear output per task on its own representation: logit_k = v_kᵀ h_k + b_k.

    Args:
      num_tasks: K.
    """

    def __init__(self, num_tasks, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=[self.num_tasks, input_shape[-1]], initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=[self.num_tasks], initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K] logits for per-task representations [B, K, D]."""
        return tf.einsum("bkd,kd->bk", inputs, self.kernel) + self.bias

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}


class TaskHeads(TaskLogits):
    """Task logits v_kᵀ Σ_n g^k_n [f^n || Z^n] + b_k (§2.3; σ gives ŷ_k).

    Args:
      num_tasks: K.
    """

    def build(self, input_shape):
        super().build(input_shape[0])

    def call(self, inputs):
        """Returns [B, K] logits for inputs (expert outputs [B, N, D], gates [B, K, N])."""
        experts, gates = inputs
        return super().call(tf.einsum("bkn,bnd->bkd", gates, experts))
