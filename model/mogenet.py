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
     task on [p_u || q_i];
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
under every tf.distribute strategy.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from beam_pipelines.sample_layout import (
    CHANNELS,
    ITEM,
    NODE_SETS,
    USER,
    WEIGHTED_EDGE_SETS,
    SampleLayout,
)
from model.config import ModelConfig
from model.entities import EntityTable
from model.layers import (
    EntityEncoder,
    Experts,
    PairInteraction,
    TaskGates,
    TaskHeads,
    TreeChannel,
)

# Z^n = κ(a, b) for the (user tree, item tree) pairs of the paper's Z (§2.3), in order.
Z_PAIRS = (("G_u", "G_i"), ("G_u", "I"), ("U", "G_i"), ("U", "I"))
# Sample tree -> the graph channel (and so the layers) it runs on.
TREE_CHANNEL = {"G_u": "G", "G_i": "G", "U": "U", "I": "I"}
_ROOT_SET = {channel.name: channel.root for channel in CHANNELS}


class MoGENet(tfrs.models.Model):
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
        super().__init__(**kwargs)
        if config.graph_experts and config.num_layers > layout.num_hops:
            raise ValueError(
                f"num_layers={config.num_layers} needs samples with at least that many hops; "
                f"these have fan-outs {list(layout.fanouts)}"
            )
        self.config = config
        self.task_names = tuple(tasks)
        self.layout = layout
        dim = config.embedding_dim
        slope = config.leaky_relu_alpha
        self.encoders = {
            node_set: EntityEncoder.from_table(entities[node_set], dim, name=f"{node_set}_encoder")
            for node_set in NODE_SETS
        }
        self.trees = tuple(
            sorted(
                {
                    tree
                    for pair in Z_PAIRS[: config.graph_experts]
                    for tree in pair
                    if TREE_CHANNEL[tree] in config.channels
                }
            )
        )
        self.channels = {
            channel: TreeChannel(
                config.num_layers, dim, config.edge_weight, slope, name=f"channel_{channel}"
            )
            for channel in sorted({TREE_CHANNEL[tree] for tree in self.trees})
        }
        self.kappa = PairInteraction(config.kappa, slope, name="kappa")
        self.experts = Experts(config.num_experts, config.expert_units, slope, name="experts")
        self.gates = TaskGates(len(self.task_names), config.num_experts, name="gates")
        self.heads = TaskHeads(len(self.task_names), name="heads")
        self.log_variance = self.add_weight(
            name="log_variance", shape=[len(self.task_names)], initializer="zeros"
        )
        self.ranking_tasks = [
            tfrs.tasks.Ranking(
                loss=tf.keras.losses.BinaryCrossentropy(
                    from_logits=True, reduction=tf.keras.losses.Reduction.NONE
                ),
                metrics=[tf.keras.metrics.AUC(from_logits=True, name=f"{task}_auc")],
                loss_metrics=[tf.keras.metrics.Mean(name=f"{task}_loss")],
                name=f"{task}_task",
            )
            for task in self.task_names
        ]
        self._mix = tf.function(self.mix, jit_compile=True) if jit_compile else self.mix
        self.cooperative_loss = tf.keras.metrics.Mean(name="cooperative_loss")
        self.l2_loss = tf.keras.metrics.Mean(name="l2_loss")

    def forward(self, inputs, training=False, with_norm=False):
        """Runs the model up to the task logits.

        The encoders look up each distinct entity once (`tf.unique`, dynamic
        shapes); everything after them is `mix`, compiled with XLA when the
        model was built with `jit_compile`.

        Args:
          inputs: A batch in the dense layout (see the module doc).
          training: Keras training flag.
          with_norm: Also return the squared norm of the embedding rows read.

        Returns:
          (logits [B, K], gates [B, K, N]) and, with `with_norm`, the scalar norm.
        """
        del training  # no dropout or batch norm
        encoded, dense, norm = self.encode(inputs, with_norm)
        logits, gates = self._mix(encoded, dense)
        return (logits, gates, norm) if with_norm else (logits, gates)

    def encode(self, inputs, with_norm=False):
        """Step 1: the shared encoders on the sample's nodes.

        Args:
          inputs: A batch in the dense layout (see the module doc).
          with_norm: Also compute the squared norm of the embedding rows read.

        Returns:
          (encoded {node set: [B, n, d]}, the masks and weights the MGNN needs,
          squared norm or 0.0).
        """
        encoded, norm = {}, 0.0
        for node_set in NODE_SETS:
            indices = inputs[f"{node_set}_index"]
            if not self.trees:  # MMoE: only the roots are read
                indices = indices[:, :1]
            result = self.encoders[node_set](indices, return_squared_norm=with_norm)
            if with_norm:
                result, squared = result
                norm += squared
            encoded[node_set] = result
        dense = {}
        if self.trees:  # the masks and weights of the layout, for the MGNN
            names = [f"{s}_mask" for s in NODE_SETS] + [f"{e}_weight" for e in WEIGHTED_EDGE_SETS]
            dense = {name: inputs[name] for name in names}
        return encoded, dense, norm

    def mix(self, encoded, inputs):
        """MGNN, graph interactions, experts, gates and heads on encoded nodes.

        Args:
          encoded: {node set: [B, n, d]} encodings of the sample's nodes.
          inputs: The masks and weights of the dense layout.

        Returns:
          (logits [B, K], gates [B, K, N]).
        """
        return self.head(*self.tree_states(encoded, inputs))

    def tree_states(self, encoded, inputs):
        """Step 2: the MGNN channels on the sample's trees.

        A user's trees (G_u, U) depend on the user alone and an item's (G_i,
        I) on the item alone, which is what lets `serving.export` compute them
        once per node.

        Args:
          encoded: {node set: [B, n, d]} encodings of the sample's nodes.
          inputs: The masks and weights of the dense layout.

        Returns:
          (roots {node set: [B, d]}, states {tree: [B, d]} for every tree of
          `Z_PAIRS`; a tree the model does not run holds its root's encoding).
        """
        roots = {s: encoded[s][:, 0] for s in NODE_SETS}
        states = {tree: roots[root_set] for tree, root_set in _ROOT_SET.items()}
        for tree in self.trees:
            hops, masks, weights = self._tree_inputs(tree, encoded, inputs)
            states[tree] = self.channels[TREE_CHANNEL[tree]](hops, masks, weights)
        return roots, states

    def head(self, roots, states):
        """Steps 3–5: graph interactions, experts, gates and task logits.

        Args:
          roots: {node set: [B, d]} the roots' encodings (p_u, q_i).
          states: {tree: [B, d]} as `tree_states` returns them.

        Returns:
          (logits [B, K], gates [B, K, N]).
        """
        pair = tf.concat([roots[USER], roots[ITEM]], -1)
        experts = self.experts(pair)
        if self.config.graph_experts:
            z = tf.stack([self.kappa((states[a], states[b])) for a, b in Z_PAIRS], 1)
            z = z[:, : self.config.graph_experts]
            padding = self.config.num_experts - self.config.graph_experts
            z = tf.pad(z, [[0, 0], [0, padding], [0, 0]])
            experts = tf.concat([experts, z], -1)
        gates = self.gates(pair)
        return self.heads((experts, gates)), gates

    def _tree_inputs(self, tree, encoded, inputs):
        """Slices one tree's hop states, masks and weights out of the layout."""
        root_set = _ROOT_SET[tree]
        hops = [encoded[root_set][:, 0]]
        masks, weights, fanouts = [], [], []
        dim = self.config.embedding_dim
        for segment in self.layout.channel_segments(tree)[: self.config.num_layers]:
            fanouts.append(segment.fanout)
            start, end = segment.node_offset, segment.node_offset + segment.size
            shape = [-1, *fanouts]
            hops.append(tf.reshape(encoded[segment.node_set][:, start:end], [*shape, dim]))
            masks.append(tf.reshape(inputs[f"{segment.node_set}_mask"][:, start:end], shape))
            if segment.edge_set in WEIGHTED_EDGE_SETS:
                start = segment.edge_offset
                weight = inputs[f"{segment.edge_set}_weight"][:, start : start + segment.size]
                weights.append(tf.reshape(weight, shape))
        return hops, masks, (weights or None)

    def call(self, inputs, training=False):
        """Returns {task: probability [B]}."""
        logits, _ = self.forward(inputs, training)
        return self.probabilities(logits)

    def probabilities(self, logits):
        """Returns {task: σ(logit) [B]} for logits [B, K]."""
        return {task: tf.sigmoid(logits[:, k]) for k, task in enumerate(self.task_names)}

    def task_sigmas(self):
        """Returns the learned σ_k [K] (σ_k² = exp(log_variance_k))."""
        return tf.exp(0.5 * self.log_variance)

    def compute_loss(self, inputs, training=False):
        """The training loss of §2 for one (features, labels) batch (see module doc)."""
        features, labels = inputs
        config = self.config
        logits, gates, norm = self.forward(features, training, with_norm=True)
        total = 0.0
        for k, (task, ranking) in enumerate(zip(self.task_names, self.ranking_tasks, strict=True)):
            per_example = ranking(labels[task][:, None], logits[:, k : k + 1], training=training)
            bce = tf.nn.compute_average_loss(per_example)
            if config.uncertainty:
                s_k = self.log_variance[k]
                total += tf.exp(-s_k) * bce + tf.nn.scale_regularization_loss(s_k)
            else:
                total += bce
        if config.cooperative:
            cooperative = cooperative_loss(gates)
            self.cooperative_loss.update_state(cooperative)
            total += config.beta * tf.nn.compute_average_loss(cooperative)
        if config.l2:
            batch = tf.cast(tf.shape(logits)[0], tf.float32)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            l2 = norm / (batch * tf.cast(replicas, tf.float32))
            tracked = norm / batch
            if config.l2_scope == "all":
                dense = tf.add_n([tf.reduce_sum(tf.square(v)) for v in self.dense_weights()])
                l2 += tf.nn.scale_regularization_loss(dense)
                tracked += dense
            self.l2_loss.update_state(tracked)
            total += config.l2_lambda * l2
        return total

    def train_step(self, inputs):
        """TFRS's step; the losses it logs are scaled from replica 0's share to the batch."""
        logs = super().train_step(inputs)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            for key in ("loss", "regularization_loss", "total_loss"):
                logs[key] = logs[key] * replicas
        return logs

    def dense_weights(self):
        """Trainable weights under the L2 penalty other than embedding tables and σ."""
        excluded = {id(self.log_variance)}
        for encoder in self.encoders.values():
            excluded.update(id(v) for v in (encoder.id_embedding, encoder.feature_embedding))
        return [v for v in self.trainable_weights if id(v) not in excluded]


def cooperative_loss(gates):
    """L_co = −Σ_k Σ_{n<m} g^k_n g^k_m per example (§2), for gates [B, K, N].

    Σ_{n<m} g_n g_m = ((Σ_n g_n)² − Σ_n g_n²) / 2, which for a softmax is
    (1 − Σ_n g_n²) / 2: largest when the gate is uniform.

    Returns:
      [B] losses.
    """
    pairs = 0.5 * (tf.square(tf.reduce_sum(gates, -1)) - tf.reduce_sum(tf.square(gates), -1))
    return -tf.reduce_sum(pairs, -1)
