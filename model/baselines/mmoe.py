"""MMoE (Ma et al., 2018): shared experts, one gating network per task.

ŷ_k = σ(v_kᵀ Σ_n g^k_n f^n(x) + b_k), g^k = softmax(W_k MLP^k_gate(x)): N
experts of `config.expert_units`, gates with hidden `config.gate_units`.
(`python -m model.train --graph_experts 0` is the other MMoE: MoGENet's own
layers, linear gates, no MGNN.)
"""

from __future__ import annotations

from model.baselines.base import FeatureBaseline
from model.layers.experts import Experts, TaskGates, TaskHeads


class MMoE(FeatureBaseline):
    """Multi-gate mixture of experts."""

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        slope = config.leaky_relu_alpha
        k = len(self.task_names)
        self.experts = Experts(config.num_experts, config.expert_units, slope, name="experts")
        self.gates = TaskGates(k, config.num_experts, config.gate_units, slope, name="gates")
        self.heads = TaskHeads(k, name="heads")

    def logits(self, x, training=False):
        gates = self.gates(x)
        return self.heads((self.experts(x), gates)), gates
