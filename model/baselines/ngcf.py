"""NGCF (Wang et al., 2019) on the samples' bipartite trees; single task, as in the paper.

Embedding propagation over G, L layers (`config.num_layers`, 2 in §3), on
the sampled trees from u and from i: at layer l every node v that reaches
the root is updated from its sampled neighbours N(v),

  e_v ← LeakyReLU(W_1 (e_v + m_v) + W_2 m'_v),
  m_v = mean_{j ∈ N(v)} e_j,   m'_v = mean_{j ∈ N(v)} e_j ⊙ e_v,

with W_1, W_2 per layer and shared by users and items. The mean over the
sampled neighbours stands in for NGCF's 1/sqrt(|N_u||N_i|) over the whole
graph (one line, documented choice: the samples hold a fixed fan-out, not
degrees). The final representation concatenates the layers, e* = [e^(0) ||
... || e^(L)], and the score is the inner product, ŷ = σ(e*_uᵀ e*_i).
One model per task: train it with `--tasks click`, then `--tasks conversion`.
"""

from __future__ import annotations

import tensorflow as tf

from model.multitask import GraphMultiTaskModel

_TREES = ("G_u", "G_i")


class NGCFLayer(tf.keras.layers.Layer):
    """One NGCF propagation layer over the nodes of a fixed-fan-out tree (see the module doc).

    Args:
      dim: d.
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, dim, negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.negative_slope = negative_slope
        self.w1 = tf.keras.layers.Dense(dim, name="w1")
        self.w2 = tf.keras.layers.Dense(dim, use_bias=False, name="w2")

    def call(self, inputs):
        """(nodes [..., d], neighbours [..., f, d], mask [..., f]) -> updated nodes [..., d]."""
        nodes, neighbours, mask = inputs
        mask = mask[..., None]
        count = tf.maximum(tf.reduce_sum(mask, -2), 1.0)
        mean = tf.reduce_sum(neighbours * mask, -2) / count
        mean_product = tf.reduce_sum(neighbours * nodes[..., None, :] * mask, -2) / count
        return tf.nn.leaky_relu(self.w1(nodes + mean) + self.w2(mean_product), self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "negative_slope": self.negative_slope}


class NGCF(GraphMultiTaskModel):
    """NGCF scoring one task from the trees of G rooted at the user and at the item.

    Raises:
      ValueError: For more than one task, or more layers than the samples' hops.
    """

    task_uncertainty = False
    cooperative_gates = False
    multi_task = False
    single_task = True
    scores_from_node_states = False  # its own `mix`: NGCF's propagation, no `head`

    def __init__(self, config, tasks, layout, entities, jit_compile=False, **kwargs):
        tasks = tuple(tasks)
        if len(tasks) != 1:
            raise ValueError(
                f"ngcf is single-task, one model per task as in the paper; got tasks {tasks} "
                "(train with --tasks click, then --tasks conversion)"
            )
        if config.num_layers > layout.num_hops:
            raise ValueError(
                f"num_layers={config.num_layers} needs samples with at least that many hops; "
                f"these have fan-outs {list(layout.fanouts)}"
            )
        super().__init__(config, tasks, layout, entities, jit_compile, **kwargs)
        self.propagation = [
            NGCFLayer(config.embedding_dim, config.leaky_relu_alpha, name=f"propagation_{layer}")
            for layer in range(config.num_layers)
        ]

    @property
    def reads_neighbours(self) -> bool:
        return True

    def mix(self, encoded, inputs, training=False):
        """Propagates over both trees; returns (logits [B, 1], None)."""
        final = {}
        for tree in _TREES:
            hops, masks, _ = self._tree_inputs(tree, encoded, inputs)
            final[tree] = self.represent(hops, masks)
        return tf.reduce_sum(final["G_u"] * final["G_i"], -1, keepdims=True), None

    def represent(self, hops, masks):
        """e* = [e^(0) || ... || e^(L)] of a tree's root."""
        states, layers = list(hops), [hops[0]]
        for layer, propagate in enumerate(self.propagation):
            states = [
                propagate((states[hop], states[hop + 1], masks[hop]))
                for hop in range(len(self.propagation) - layer)
            ]
            layers.append(states[0])
        return tf.concat(layers, -1)
