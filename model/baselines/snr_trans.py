"""SNR-Trans (Ma et al., 2019): sub-networks routed to the tasks by learned binary codes.

A lower level of N sub-networks u_n = MLP_n(x) (the first `expert_units`)
feeds one upper sub-network per task through transformations and codes:
v_k = Σ_n z_kn W_kn u_n, h_k = LeakyReLU(v_k + c_k), ŷ_k = σ(w_kᵀ h_k + b_k).
Each code z_kn is a hard-concrete variable (Louizos et al., 2018) with
learned log α_kn: in training z = min(1, max(0, s(ζ − γ) + γ)), s =
σ((log u − log(1 − u) + log α)/β), u ~ U(0, 1), one draw per step; in
inference z = min(1, max(0, σ(log α)(ζ − γ) + γ)). β = 2/3, γ = −0.1,
ζ = 1.1 as in both papers; the expected L0 norm Σ σ(log α − β log(−γ/ζ)),
weighted by `L0_LAMBDA`, is added to the loss. The upper size is the last
`expert_units` entry.
"""

from __future__ import annotations

import math

import tensorflow as tf

from model.baselines.base import FeatureBaseline
from model.layers.experts import Experts, TaskLogits

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
L0_LAMBDA = 1e-4  # per code; small next to the BCEs, as SNR's experiments
_EPS = 1e-6


class HardConcreteRouting(tf.keras.layers.Layer):
    """v_k = Σ_n z_kn W_kn u_n with hard-concrete codes z (see the module doc).

    Args:
      num_tasks: K.
      units: Output size of each transformation.
    """

    def __init__(self, num_tasks, units, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks
        self.units = units

    def build(self, input_shape):
        n, d = input_shape[1], input_shape[2]
        self.transforms = self.add_weight(
            name="transforms",
            shape=[self.num_tasks, n, d, self.units],
            initializer="glorot_uniform",
        )
        self.log_alpha = self.add_weight(
            name="log_alpha",
            shape=[self.num_tasks, n],
            initializer=tf.keras.initializers.RandomNormal(1.0, 0.01),
        )
        self.bias = self.add_weight(
            name="bias", shape=[self.num_tasks, self.units], initializer="zeros"
        )
        super().build(input_shape)

    def codes(self, training=False):
        """Returns z [K, N] in [0, 1]: sampled in training, deterministic otherwise."""
        if training:
            u = tf.random.uniform(tf.shape(self.log_alpha), _EPS, 1.0 - _EPS)
            s = tf.sigmoid((tf.math.log(u) - tf.math.log(1.0 - u) + self.log_alpha) / BETA)
        else:
            s = tf.sigmoid(self.log_alpha)
        return tf.clip_by_value(s * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)

    def expected_l0(self):
        """Σ_kn P(z_kn ≠ 0)."""
        return tf.reduce_sum(tf.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA)))

    def call(self, inputs, training=False):
        """Returns [B, K, units] for sub-network outputs [B, N, D]."""
        return (
            tf.einsum("kn,bnd,knde->bke", self.codes(training), inputs, self.transforms) + self.bias
        )

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks, "units": self.units}


class SNRTrans(FeatureBaseline):
    """Sub-network routing with transformations."""

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        slope = config.leaky_relu_alpha
        units = config.expert_units
        self.lower = Experts(config.num_experts, units[:1], slope, name="lower")
        self.routing = HardConcreteRouting(len(self.task_names), units[-1], name="routing")
        self.task_logits = TaskLogits(len(self.task_names), name="task_logits")

    def logits(self, x, training=False):
        upper = tf.nn.leaky_relu(
            self.routing(self.lower(x), training), self.config.leaky_relu_alpha
        )
        return self.task_logits(upper), None

    def regularization(self):
        return L0_LAMBDA * self.routing.expected_l0() if self.routing.built else 0.0
