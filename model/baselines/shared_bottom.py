"""Shared-Bottom (Caruana, 1997): one bottom MLP shared by all tasks, a linear output each."""

from __future__ import annotations

import tensorflow as tf

from model.baselines.base import FeatureBaseline
from model.layers.experts import Experts, TaskLogits


class SharedBottom(FeatureBaseline):
    """logit_k = v_kᵀ MLP([p_u || q_i]) + b_k; the bottom has `config.expert_units`."""

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        slope = config.leaky_relu_alpha
        self.bottom = Experts(1, config.expert_units, slope, name="bottom")
        self.task_logits = TaskLogits(len(self.task_names), name="task_logits")

    def logits(self, x, training=False):
        shared = self.bottom(x)  # [B, 1, D]
        return self.task_logits(tf.tile(shared, [1, len(self.task_names), 1])), None
