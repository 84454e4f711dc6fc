"""The frame of the feature-based baselines: [p_u || q_i] (+ Z with --mgnn) in, logits out."""

from __future__ import annotations

import tensorflow as tf

from contracts.layout import ITEM, USER
from model.multitask import Z_PAIRS, GraphMultiTaskModel, z_trees


class FeatureBaseline(GraphMultiTaskModel):
    """A baseline that reads the pair's encodings and, "+ MGNN", the MGNN's Z.

    Subclasses build their layers in `__init__` and define `logits(x,
    training)`: x [B, F] -> (logits [B, K], gates [B, K, N] or None).

    Args:
      config: Sizes and switches (`config.mgnn` adds Z to the input).
      tasks: Task names, in label order.
      layout: The samples' layout.
      entities: {"user": EntityTable, "item": EntityTable}.
      jit_compile: Compile everything after the encoders with XLA.
    """

    task_uncertainty = False
    cooperative_gates = False

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        trees = z_trees(config, Z_PAIRS) if config.mgnn else ()
        super().__init__(config, tasks, layout, entities, jit_compile, trees, **kwargs)

    def head(self, roots, states, training=False):
        x = tf.concat([roots[USER], roots[ITEM]], -1)
        if self.config.mgnn:
            z = self.graph_features(states)
            x = tf.concat([x, tf.reshape(z, [-1, z.shape[1] * z.shape[2]])], -1)
        return self.logits(x, training)

    def logits(self, x, training=False):
        """Returns (logits [B, K], gates [B, K, N] or None) for input features x [B, F]."""
        raise NotImplementedError
