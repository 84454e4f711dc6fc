"""CGC (Tang et al., 2020, PLE's customized gate control): shared and task-specific experts.

Of the N experts, each task owns ⌊N/2⌋ // K (at least 1) and the rest are
shared; task k's gate mixes only its own and the shared experts:
ŷ_k = σ(v_kᵀ Σ_{n ∈ own_k ∪ shared} g^k_n f^n(x) + b_k).
"""

from __future__ import annotations

from model.baselines.base import FeatureBaseline
from model.layers.experts import Experts, TaskGates, TaskHeads


def expert_allocation(num_experts: int, num_tasks: int) -> list[list[int]]:
    """Returns the [K][N] 0/1 matrix of the experts each task's gate may use.

    Experts 0..K·m−1 are task-specific (m per task, task k owns k·m..k·m+m−1),
    the rest are shared; m = max(1, (N // 2) // K).

    Raises:
      ValueError: If there are not enough experts for one per task plus one shared.
    """
    own = max(1, (num_experts // 2) // num_tasks)
    if own * num_tasks >= num_experts:
        raise ValueError(
            f"cgc needs more than {own * num_tasks} experts for {num_tasks} tasks "
            f"(one or more per task plus shared ones); got num_experts={num_experts}"
        )
    allowed = []
    for k in range(num_tasks):
        row = [0] * num_experts
        for n in range(k * own, (k + 1) * own):
            row[n] = 1
        for n in range(own * num_tasks, num_experts):
            row[n] = 1
        allowed.append(row)
    return allowed


class CGC(FeatureBaseline):
    """Customized gate control: task experts + shared experts, masked gates."""

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        slope = config.leaky_relu_alpha
        k = len(self.task_names)
        allowed = expert_allocation(config.num_experts, k)
        self.experts = Experts(config.num_experts, config.expert_units, slope, name="experts")
        self.gates = TaskGates(
            k, config.num_experts, config.gate_units, slope, allowed=allowed, name="gates"
        )
        self.heads = TaskHeads(k, name="heads")

    def logits(self, x, training=False):
        gates = self.gates(x)
        return self.heads((self.experts(x), gates)), gates
