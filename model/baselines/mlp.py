"""MLP: one independent tower per task over the shared encodings (§3: towers [512, 256, 128])."""

from __future__ import annotations

from model.baselines.base import FeatureBaseline
from model.layers.experts import Experts, TaskLogits


class MLPBaseline(FeatureBaseline):
    """logit_k = v_kᵀ MLP_k([p_u || q_i]) + b_k, with `config.tower_units` per tower."""

    multi_task = False  # independent towers: nothing ties the tasks

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        slope = config.leaky_relu_alpha
        self.towers = Experts(len(self.task_names), config.tower_units, slope, name="towers")
        self.task_logits = TaskLogits(len(self.task_names), name="task_logits")

    def logits(self, x, training=False):
        return self.task_logits(self.towers(x)), None
