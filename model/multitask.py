"""What every model of this project shares: encoders, the MGNN, the losses.

`GraphMultiTaskModel` is a `tfrs.models.Model` over one batch of samples in
the dense fixed layout (see `model.mogenet` for the inputs). It owns

  * the shared encoders p_u = Enc(user), q_i = Enc(item) (§2.1);
  * the MGNN channels on the trees a model asks for (§2.2: G from u and from
    i, G^U from u, G^I from i) and κ, the interaction of two channel states;
  * one `tfrs.tasks.Ranking` per task and the loss of §2: Σ_k BCE_k / σ_k² +
    log σ_k² (or the plain sum), + β·L_co when the model has gates, + λ·L2.

A model defines `head(roots, states) -> (logits [B, K], gates [B, K, N] or
None)`: MoGENet its graph enhanced experts, the baselines their towers.
Models whose papers train with the plain sum of BCEs set
`task_uncertainty = False` and `cooperative_gates = False`. What the paper
counts a model as, `multi_task` and `single_task`, plans its tables
(`model.experiments.plan`); `scores_from_node_states` says whether
`serving.export` can bake the model's per-node states.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from contracts.layout import NODE_SETS, TREES, WEIGHTED_EDGE_SETS, SampleLayout
from contracts.model_inputs import index_input, mask_input, weight_input
from model.config import ModelConfig
from model.entities import EntityTable
from model.layers.encoder import EntityEncoder
from model.layers.graph import PairInteraction, TreeChannel

# Z^n = κ(a, b) for the (user tree, item tree) pairs of the paper's Z (§2.3), in order.
Z_PAIRS = (("G_u", "G_i"), ("G_u", "I"), ("U", "G_i"), ("U", "I"))
# Sample tree -> the graph channel (and so the layers) it runs on.
TREE_CHANNEL = {"G_u": "G", "G_i": "G", "U": "U", "I": "I"}
_ROOT_SET = {tree.name: tree.root for tree in TREES}


def z_trees(config: ModelConfig, pairs=Z_PAIRS) -> tuple[str, ...]:
    """The trees the MGNN must run for the given Z pairs, given the channels switched on."""
    return tuple(sorted({t for pair in pairs for t in pair if TREE_CHANNEL[t] in config.channels}))


class GraphMultiTaskModel(tfrs.models.Model):
    """Encoders, MGNN channels, ranking tasks and loss; subclasses add `head`.

    Args:
      config: Sizes and switches.
      tasks: Task names, in label order.
      layout: The samples' fixed layout (its fan-outs).
      entities: {"user": EntityTable, "item": EntityTable}.
      jit_compile: Compile `mix` (everything after the encoders) with XLA.
      trees: The sample trees the MGNN runs (see `Z_PAIRS`); none = no MGNN.

    Raises:
      ValueError: If the MGNN needs more layers than the samples have hops.
    """

    task_uncertainty = True
    cooperative_gates = True  # β·L_co on the gates, if the model has gates
    # A multi-task model ties the tasks in its head (Table 3 gives the
    # multi-task baselines "+ MGNN"); a single-task one scores one task, one
    # model per task (Table 2 trains it once per task).
    multi_task = True
    single_task = False
    # The logits are `head(*tree_states(...))`: from the roots' encodings and
    # tree states that each depend on one node, which `serving.export` bakes
    # per node. A model that scores otherwise (its own `mix`) sets False.
    scores_from_node_states = True

    def __init__(
        self,
        config: ModelConfig,
        tasks,
        layout: SampleLayout,
        entities: dict[str, EntityTable],
        jit_compile: bool = False,
        trees=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if trees and config.num_layers > layout.num_hops:
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
        self.trees = tuple(trees)
        self.channels = {
            channel: TreeChannel(
                config.num_layers, dim, config.edge_weight, slope, name=f"channel_{channel}"
            )
            for channel in sorted({TREE_CHANNEL[tree] for tree in self.trees})
        }
        self.kappa = PairInteraction(config.kappa, slope, name="kappa")
        self.state_norms = {}
        if config.graph_norm == "layer":
            self.state_norms = {
                tree: tf.keras.layers.LayerNormalization(name=f"state_norm_{tree}")
                for tree in sorted({t for pair in Z_PAIRS for t in pair})
            }
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
          (logits [B, K], gates [B, K, N] or None) and, with `with_norm`, the
          scalar norm.
        """
        encoded, dense, norm = self.encode(inputs, with_norm)
        logits, gates = self._mix(encoded, dense, bool(training))
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
            indices = inputs[index_input(node_set)]
            if not self.reads_neighbours:  # e.g. MMoE: only the roots are read
                indices = indices[:, :1]
            result = self.encoders[node_set](indices, return_squared_norm=with_norm)
            if with_norm:
                result, squared = result
                norm += squared
            encoded[node_set] = result
        dense = {}
        if self.reads_neighbours:  # the masks and weights of the layout
            names = [mask_input(s) for s in NODE_SETS]
            names += [weight_input(e) for e in WEIGHTED_EDGE_SETS]
            dense = {name: inputs[name] for name in names}
        return encoded, dense, norm

    @property
    def reads_neighbours(self) -> bool:
        """Whether the model reads the sample's neighbours (else only its two roots)."""
        return bool(self.trees)

    def regularization(self):
        """A model's own penalty added to the loss (scalar); none by default."""
        return 0.0

    def mix(self, encoded, inputs, training=False):
        """MGNN, graph interactions, experts, gates and heads on encoded nodes.

        Args:
          encoded: {node set: [B, n, d]} encodings of the sample's nodes.
          inputs: The masks and weights of the dense layout.

        Returns:
          (logits [B, K], gates [B, K, N] or None).
        """
        return self.head(*self.tree_states(encoded, inputs), training=training)

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

    def head(self, roots, states, training=False):
        """The model's own part, after the encoders and the MGNN.

        Args:
          roots: {node set: [B, d]} the roots' encodings (p_u, q_i).
          states: {tree: [B, d]} as `tree_states` returns them.
          training: Keras training flag.

        Returns:
          (logits [B, K], gates [B, K, N] or None).
        """
        raise NotImplementedError

    def graph_features(self, states):
        """Z of §2.3: [κ(h_a, h_b) for (a, b) in Z_PAIRS] stacked, [B, 4, d_κ].

        With `graph_norm="layer"` each state is layer-normalised first (see
        `ModelConfig.graph_norm`).
        """
        if self.state_norms:
            states = {tree: self.state_norms[tree](state) for tree, state in states.items()}
        return tf.stack([self.kappa((states[a], states[b])) for a, b in Z_PAIRS], 1)

    def _tree_inputs(self, tree, encoded, inputs):
        """Slices one tree's hop states, masks and weights out of the layout."""
        root_set = _ROOT_SET[tree]
        hops = [encoded[root_set][:, 0]]
        masks, weights, fanouts = [], [], []
        dim = self.config.embedding_dim
        for segment in self.layout.tree_segments(tree)[: self.config.num_layers]:
            fanouts.append(segment.fanout)
            start, end = segment.node_offset, segment.node_offset + segment.size
            shape = [-1, *fanouts]
            hops.append(tf.reshape(encoded[segment.node_set][:, start:end], [*shape, dim]))
            masks.append(tf.reshape(inputs[mask_input(segment.node_set)][:, start:end], shape))
            if segment.edge_set in WEIGHTED_EDGE_SETS:
                start = segment.edge_offset
                weight = inputs[weight_input(segment.edge_set)][:, start : start + segment.size]
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
            if config.uncertainty and self.task_uncertainty:
                s_k = self.log_variance[k]
                total += tf.exp(-s_k) * bce + tf.nn.scale_regularization_loss(s_k)
            else:
                total += bce
        if config.cooperative and self.cooperative_gates and gates is not None:
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
        own = self.regularization()
        if not isinstance(own, float):
            total += tf.nn.scale_regularization_loss(own)
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
