"""MoGENet assembled from its layers (Hu et al., §2; Algorithm 1, lines 2–16).

Inputs are one batch of samples in the dense fixed layout with ids already
looked up (`model.input_pipeline` with entities): `user_index`, `item_index`
int32 [B, n], `user_mask`, `item_mask` float32 [B, n], `user_user_weight`,
`item_item_weight` float32 [B, m]. The forward pass, in the paper's order:

  1. shared encoders: p = Enc_user(user nodes), q = Enc_item(item nodes);
  2. MGNN: channel G runs on the trees from u and from i (h_u, h_i), channel
     G^U on the tree from u (h_u^U), channel G^I on the tree from i (h_i^I);
     each channel has its own layers, all start from the shared encodings;
  3. Z = [κ(h_u, h_i), κ(h_u, h_i^I), κ(h_u^U, h_i), κ(h_u^U, h_i^I)];
  4. experts f^n([p_u || q_i]); the first `graph_experts` of them carry Z^n
     ([f^n || Z^n], zeros in place of Z for the others); a softmax gate per
     task on [p_u || q_i]. With `graph_expert_input="pair_and_z"` (the
     default, a departure from §2.3, see `ModelConfig`) each graph enhanced
     expert also reads its Z^n: f^n([p_u || q_i || Z^n]);
  5. ŷ_k = σ(v_kᵀ Σ_n g^k_n [f^n || Z^n]).

Only the trees that some Z^n needs are run, so `graph_experts=0` is a plain
MMoE over the shared encodings with linear task towers.

Loss (`compute_loss`, §2): Σ_k BCE_k / σ_k² + log σ_k² (learned task
uncertainty, s_k = log σ_k² trainable) + β·L_co (−Σ_{n<m} g^k_n g^k_m, mean
over examples, summed over tasks) + λ·L2 (the squared norms of the embedding
rows of the batch's distinct entities divided by the batch size — the
mini-batch-aware form of NGCF and DIN, so that a step touches only the rows it
used — plus, with `l2_scope="all"`, those of every dense weight).
Each term is switchable in `ModelConfig`. Per-example terms are averaged over
the global batch and parameter terms scaled per replica, so the loss is right
under every tf.distribute strategy, with one exception: the mini-batch L2 counts
an embedding row once per *replica* batch that reads it, so R replicas of B/R
examples penalise a row read by several of them more than one batch of B does
(measured in tests/model/test_distribution.py, which compares strategies with
L2 off).
"""

from __future__ import annotations

import tensorflow as tf

from contracts.layout import ITEM, USER, SampleLayout
from model.config import ModelConfig
from model.entities import EntityTable
from model.layers.experts import Experts, TaskGates, TaskHeads
from model.multitask import (  # noqa: F401  (re-exported: where MoGENet's users look)
    TREE_CHANNEL,
    Z_PAIRS,
    GraphMultiTaskModel,
    cooperative_loss,
    z_trees,
)


class MoGENet(GraphMultiTaskModel):
    """Mixture of Graph Enhanced Expert Networks.

    Args:
      config: Sizes and switches.
      tasks: Task names, in label order.
      layout: The samples' fixed layout (its fan-outs).
      entities: {"user": EntityTable, "item": EntityTable}.
      jit_compile: Compile `mix` (everything after the encoders) with XLA.

    Raises:
      ValueError: If the config asks for more layers than the samples have hops.
    """

    def __init__(
        self,
        config: ModelConfig,
        tasks,
        layout: SampleLayout,
        entities: dict[str, EntityTable],
        jit_compile: bool = False,
        **kwargs,
    ):
        trees = z_trees(config, Z_PAIRS[: config.graph_experts])
        super().__init__(config, tasks, layout, entities, jit_compile, trees, **kwargs)
        slope = config.leaky_relu_alpha
        self.experts = Experts(config.num_experts, config.expert_units, slope, name="experts")
        self.gates = TaskGates(len(self.task_names), config.num_experts, name="gates")
        self.heads = TaskHeads(len(self.task_names), name="heads")

    def head(self, roots, states, training=False):
        """Steps 3–5: graph interactions, experts, gates and task logits.

        Args:
          roots: {node set: [B, d]} the roots' encodings (p_u, q_i).
          states: {tree: [B, d]} as `tree_states` returns them.
          training: Keras training flag (unused: no dropout).

        Returns:
          (logits [B, K], gates [B, K, N]).
        """
        del training
        pair = tf.concat([roots[USER], roots[ITEM]], -1)
        if not self.config.graph_experts:
            experts = self.experts(pair)
        else:
            z = self.graph_features(states)[:, : self.config.graph_experts]
            padding = self.config.num_experts - self.config.graph_experts
            z = tf.pad(z, [[0, 0], [0, padding], [0, 0]])
            if self.config.graph_expert_input == "pair_and_z":
                # f^n([p_u || q_i || Z^n]): Z^n also reaches the logit non-linearly.
                shared = tf.repeat(pair[:, None], self.config.num_experts, axis=1)
                experts = self.experts(tf.concat([shared, z], -1))
            else:
                experts = self.experts(pair)
            experts = tf.concat([experts, z], -1)
        gates = self.gates(pair)
        return self.heads((experts, gates)), gates
