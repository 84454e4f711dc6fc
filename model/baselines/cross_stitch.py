"""Cross-Stitch networks (Misra et al., 2016): one tower per task, linearly mixed after each layer.

Each task has an MLP of `config.expert_units`; after every hidden layer a
cross-stitch unit mixes the tasks' activations, h̃_k = Σ_j α_kj h_j, with a
learned [K, K] matrix α initialised to 0.9 on the diagonal and 0.1/(K−1)
elsewhere (the paper's "stitch" initialisation). A linear output per task.
"""

from __future__ import annotations

import tensorflow as tf

from model.baselines.base import FeatureBaseline
from model.layers.experts import TaskLogits


class CrossStitchTowers(tf.keras.layers.Layer):
    """K parallel towers with a cross-stitch unit after each layer.

    Args:
      num_tasks: K.
      units: Hidden sizes of each tower.
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, num_tasks, units=(32, 32), negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks
        self.units = tuple(units)
        self.negative_slope = negative_slope

    def build(self, input_shape):
        k, size = self.num_tasks, input_shape[-1]
        off = 0.1 / (k - 1) if k > 1 else 0.0
        stitch = (
            [[0.9 if i == j else off for j in range(k)] for i in range(k)] if k > 1 else [[1.0]]
        )
        self.kernels, self.biases, self.stitches = [], [], []
        for layer, units in enumerate(self.units):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{layer}", shape=[k, size, units], initializer="glorot_uniform"
                )
            )
            self.biases.append(
                self.add_weight(name=f"bias_{layer}", shape=[k, units], initializer="zeros")
            )
            self.stitches.append(
                self.add_weight(
                    name=f"stitch_{layer}",
                    shape=[k, k],
                    initializer=tf.keras.initializers.Constant(stitch),
                )
            )
            size = units
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K, units[-1]] for inputs [B, in]."""
        h = tf.einsum("bi,kio->bko", inputs, self.kernels[0]) + self.biases[0]
        for layer in range(len(self.units)):
            if layer:
                h = tf.einsum("bki,kio->bko", h, self.kernels[layer]) + self.biases[layer]
            h = tf.nn.leaky_relu(h, self.negative_slope)
            h = tf.einsum("kj,bjd->bkd", self.stitches[layer], h)
        return h

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "units": self.units,
            "negative_slope": self.negative_slope,
        }


class CrossStitch(FeatureBaseline):
    """Cross-stitched task towers of `config.expert_units`."""

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        k = len(self.task_names)
        self.towers = CrossStitchTowers(
            k, config.expert_units, config.leaky_relu_alpha, name="towers"
        )
        self.task_logits = TaskLogits(k, name="task_logits")

    def logits(self, x, training=False):
        return self.task_logits(self.towers(x)), None
