"""MoGENet's Keras layers, one per equation of the paper (Hu et al., §2).

Each docstring cites the paper's section and writes out the formula it computes.

Every layer works on dense tensors: a sample's channel is a tree with a fixed
fan-out per hop (`beam_pipelines.sample_layout`), so the neighbours of the
nodes at hop h are the [..., f_{h+1}] slots below them, with a mask where a
node has fewer neighbours. Only the nodes whose outputs reach the roots are
updated: layer l updates hops 0..L-1-l.

Choices where the paper leaves room, each in one line:
  * attention: GAT form, e = LeakyReLU(a_1ᵀh_v + a_2ᵀh_j), softmax over the
    real neighbours; similarity weights enter as a prior (α ∝ w·exp(e)),
    as a message scale, or not at all (`edge_weight`);
  * `W_c` is applied after the attention-weighted sum (exact, and cheaper
    than transforming every neighbour);
  * the LSTM-like update is an LSTM cell whose input is the message and whose
    previous cell state is the node state: h' = o ⊙ tanh(f ⊙ h + i ⊙ g);
  * the shared encoder sums the id embedding, one embedding per categorical
    feature value and a linear map of the standardised numeric features.
"""

from __future__ import annotations

import tensorflow as tf

from model.entities import EntityTable

_LOG_EPS = 1e-6


class EntityEncoder(tf.keras.layers.Layer):
    """Shared encoder p_u = Enc(x_u), q_i = Enc(x_i) (§2.1).

    Enc(x) = E_id[x] + Σ_f E_f[value_f(x)] + W_num · numeric(x): the id
    embedding plus the embeddings of the entity's categorical feature values
    plus a linear map of its numeric features. The feature tables (entity ->
    value index, entity -> numeric values) are non-trainable weights, so a
    checkpoint holds everything the encoder needs.

    Args:
      num_entities: Rows of the id table (known ids + the padding row 0).
      categorical_sizes: Values + 1 of each categorical feature, in order.
      num_numeric: Number of numeric features.
      dim: d, the encoding size.
    """

    def __init__(self, num_entities, categorical_sizes=(), num_numeric=0, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.num_entities = int(num_entities)
        self.categorical_sizes = tuple(int(s) for s in categorical_sizes)
        self.num_numeric = int(num_numeric)
        self.dim = int(dim)
        init = "uniform"  # U(-0.05, 0.05), Keras' embedding default
        self.id_embedding = self.add_weight(
            name="id_embedding", shape=[self.num_entities, self.dim], initializer=init
        )
        self.feature_values = self.feature_embedding = None
        if self.categorical_sizes:
            self.feature_values = self.add_weight(
                name="feature_values",
                shape=[self.num_entities, len(self.categorical_sizes)],
                dtype=tf.int32,
                initializer="zeros",
                trainable=False,
            )
            self.feature_embedding = self.add_weight(
                name="feature_embedding",
                shape=[sum(self.categorical_sizes), self.dim],
                initializer=init,
            )
            offsets, total = [], 0
            for size in self.categorical_sizes:
                offsets.append(total)
                total += size
            self._offsets = tf.constant(offsets, tf.int32)
        self.numeric_values = self.numeric_kernel = None
        if self.num_numeric:
            self.numeric_values = self.add_weight(
                name="numeric_values",
                shape=[self.num_entities, self.num_numeric],
                initializer="zeros",
                trainable=False,
            )
            self.numeric_kernel = self.add_weight(
                name="numeric_kernel", shape=[self.num_numeric, self.dim], initializer=init
            )

    @classmethod
    def from_table(cls, table: EntityTable, dim: int, **kwargs) -> EntityEncoder:
        """Returns an encoder sized for `table`, with its feature tables loaded."""
        encoder = cls(
            table.size,
            [len(values) + 1 for values, _ in table.categorical.values()],
            len(table.numeric),
            dim,
            **kwargs,
        )
        if table.categorical:
            encoder.feature_values.assign(
                tf.stack([column for _, column in table.categorical.values()], axis=1)
            )
        if table.numeric:
            encoder.numeric_values.assign(tf.stack(list(table.numeric.values()), axis=1))
        return encoder

    def call(self, indices, return_squared_norm=False):
        """Encodes entities.

        Each distinct index in `indices` is encoded once (`tf.unique`), then
        copied to its slots: the embedding gradients touch one row per
        distinct entity, not one per slot.

        Args:
          indices: int32 [...] entity indices (0 = padding / unknown).
          return_squared_norm: Also return the summed squared norm of the
            embedding rows of the batch's distinct entities: each entity's id
            row and its feature-value rows (a value row shared by several
            entities counts once per entity).

        Returns:
          float32 [..., d] encodings, and with `return_squared_norm` also a
          float32 scalar.
        """
        unique, slots = tf.unique(tf.reshape(indices, [-1]))
        rows = tf.gather(self.id_embedding, unique)
        norm = tf.reduce_sum(tf.square(rows)) if return_squared_norm else None
        encoding = rows
        if self.feature_embedding is not None:
            values = tf.gather(self.feature_values, unique) + self._offsets
            feature_rows = tf.gather(self.feature_embedding, values)
            encoding += tf.reduce_sum(feature_rows, -2)
            if return_squared_norm:
                norm += tf.reduce_sum(tf.square(feature_rows))
        if self.numeric_kernel is not None:
            numeric = tf.gather(self.numeric_values, unique)
            encoding += tf.linalg.matmul(numeric, self.numeric_kernel)
        encoding = tf.reshape(
            tf.gather(encoding, slots), tf.concat([tf.shape(indices), [self.dim]], 0)
        )
        return (encoding, norm) if return_squared_norm else encoding

    def get_config(self):
        return {
            **super().get_config(),
            "num_entities": self.num_entities,
            "categorical_sizes": self.categorical_sizes,
            "num_numeric": self.num_numeric,
            "dim": self.dim,
        }


class NeighbourAttention(tf.keras.layers.Layer):
    """Attention coefficients α_{v←j} over a node's sampled neighbours (§2.2).

    e_{vj} = LeakyReLU(a_1ᵀ h_v + a_2ᵀ h_j) (GAT's a[Wh_v || Wh_j] with W
    folded into a), α_{v←j} = softmax over v's real neighbours j of
    e_{vj} + log w_{vj} when `edge_weight="prior"`. Padding neighbours get
    α = 0; a node with no real neighbour gets all zeros.

    Args:
      edge_weight: "prior", "scale" or "none" (only "prior" changes α).
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, edge_weight="prior", negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.edge_weight = edge_weight
        self.negative_slope = negative_slope

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.self_kernel = self.add_weight(name="self_kernel", shape=[dim, 1])
        self.neighbour_kernel = self.add_weight(name="neighbour_kernel", shape=[dim, 1])
        super().build(input_shape)

    def call(self, inputs):
        """Returns α [..., f] for inputs (h_v [..., d], h_j [..., f, d], mask [..., f], w)."""
        node, neighbours, mask, weight = inputs
        logits = tf.nn.leaky_relu(
            tf.linalg.matmul(node, self.self_kernel)
            + tf.squeeze(tf.linalg.matmul(neighbours, self.neighbour_kernel), -1),
            self.negative_slope,
        )
        if weight is not None and self.edge_weight == "prior":
            logits += tf.math.log(tf.maximum(weight, _LOG_EPS))
        logits = tf.where(mask > 0, logits, tf.fill(tf.shape(logits), -1e9))
        return tf.nn.softmax(logits, -1) * mask

    def get_config(self):
        return {
            **super().get_config(),
            "edge_weight": self.edge_weight,
            "negative_slope": self.negative_slope,
        }


class AttentionAggregation(tf.keras.layers.Layer):
    """The message of a node's neighbours on one channel (§2.2).

    m_v = LeakyReLU(W_c Σ_j α_{v←j} h_j), with α from `NeighbourAttention`
    (times w_{vj} inside the sum when `edge_weight="scale"`).

    Args:
      dim: Output size of W_c.
      edge_weight: "prior", "scale" or "none".
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, dim, edge_weight="prior", negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.edge_weight = edge_weight
        self.negative_slope = negative_slope
        self.attention = NeighbourAttention(edge_weight, negative_slope, name="attention")
        self.kernel = tf.keras.layers.Dense(dim, use_bias=False, name="W")

    def call(self, inputs):
        """Returns m [..., dim] for inputs (h_v [..., d], h_j [..., f, d], mask, w or None)."""
        node, neighbours, mask, weight = inputs
        alpha = self.attention((node, neighbours, mask, weight))
        if weight is not None and self.edge_weight == "scale":
            alpha *= weight
        pooled = tf.reduce_sum(alpha[..., None] * neighbours, -2)
        return tf.nn.leaky_relu(self.kernel(pooled), self.negative_slope)

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "edge_weight": self.edge_weight,
            "negative_slope": self.negative_slope,
        }


class LSTMUpdate(tf.keras.layers.Layer):
    """The LSTM-like node update h^{l+1} = f(h^l, m) (§2.2).

    [i, f, o, g] = [h || m] W + b;  c = σ(f) ⊙ h + σ(i) ⊙ tanh(g);
    h^{l+1} = σ(o) ⊙ tanh(c): an LSTM cell with the message as its input and
    the node state as its previous cell state. The forget gate's bias starts
    at 1, so a fresh layer mostly keeps the state.
    """

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.dim = dim

        def bias_init(shape, dtype=None):
            return tf.concat([tf.zeros([dim]), tf.ones([dim]), tf.zeros([2 * dim])], 0)

        self.gates = tf.keras.layers.Dense(4 * dim, bias_initializer=bias_init, name="gates")
        super().build(input_shape)

    def call(self, inputs):
        """Returns the new state [..., d] for inputs (h [..., d], m [..., d'])."""
        state, message = inputs
        i, f, o, g = tf.split(self.gates(tf.concat([state, message], -1)), 4, axis=-1)
        cell = tf.sigmoid(f) * state + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(cell)


class TreeChannel(tf.keras.layers.Layer):
    """MGNN on one channel: L layers of the MGNN update over a fixed-fan-out tree (§2.2).

    The tree's nodes at hop h are a [B, f_1, ..., f_h, d] tensor; layer l
    computes, for every hop h ≤ L-1-l, h_v ← f(h_v, LeakyReLU(W_c^l Σ α h_j))
    from the hop-(h+1) states below it. After L layers the root holds the
    channel's final state. Each layer has its own attention, W_c and update.

    Args:
      num_layers: L.
      dim: d.
      edge_weight: "prior", "scale" or "none".
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, num_layers, dim, edge_weight="prior", negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.dim = dim
        self.edge_weight = edge_weight
        self.negative_slope = negative_slope
        self.aggregations = [
            AttentionAggregation(dim, edge_weight, negative_slope, name=f"aggregation_{layer}")
            for layer in range(num_layers)
        ]
        self.node_updates = [LSTMUpdate(name=f"update_{layer}") for layer in range(num_layers)]

    def call(self, states, masks, weights=None):
        """Runs the channel.

        Args:
          states: L + 1 tensors, hop h shaped [B, f_1, ..., f_h, d].
          masks: L tensors, hop h + 1 shaped [B, f_1, ..., f_{h+1}] (1 = real).
          weights: None, or L tensors shaped like `masks` (edge weights to parents).

        Returns:
          The root's final state [B, d].
        """
        states = list(states)
        for layer in range(self.num_layers):
            states = [
                self.node_updates[layer](
                    (
                        states[hop],
                        self.aggregations[layer](
                            (
                                states[hop],
                                states[hop + 1],
                                masks[hop],
                                None if weights is None else weights[hop],
                            )
                        ),
                    )
                )
                for hop in range(self.num_layers - layer)
            ]
        return states[0]

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "dim": self.dim,
            "edge_weight": self.edge_weight,
            "negative_slope": self.negative_slope,
        }


class PairInteraction(tf.keras.layers.Layer):
    """κ(a, b), one element of the graph interactions Z (§2.3).

    "product" a ⊙ b (the paper's default), "add" a + b, "concat" [a || b],
    "mlp" LeakyReLU(W[a || b] + c) with output size d.
    """

    def __init__(self, kind="product", negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.negative_slope = negative_slope

    def build(self, input_shape):
        if self.kind == "mlp":
            self.mlp = tf.keras.layers.Dense(input_shape[0][-1], name="mlp")
        super().build(input_shape)

    def call(self, inputs):
        a, b = inputs
        if self.kind == "product":
            return a * b
        if self.kind == "add":
            return a + b
        pair = tf.concat([a, b], -1)
        if self.kind == "concat":
            return pair
        return tf.nn.leaky_relu(self.mlp(pair), self.negative_slope)

    def output_dim(self, dim: int) -> int:
        """Returns the size of κ(a, b) for inputs of size `dim`."""
        return 2 * dim if self.kind == "concat" else dim

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "negative_slope": self.negative_slope}


class Experts(tf.keras.layers.Layer):
    """N expert networks f^n([x_u || x_i]) (§2.3), run as one batched MLP.

    The input is shared by every expert ([B, in]) or one per expert
    ([B, N, in], e.g. `MoGENet`'s `graph_expert_input="pair_and_z"`).

    Each expert is an MLP with LeakyReLU after every layer; the N experts'
    kernels are stacked ([N, in, out]) so one einsum runs them all.

    Args:
      num_experts: N.
      units: Hidden sizes, e.g. (32, 32).
      negative_slope: LeakyReLU slope.
    """

    def __init__(self, num_experts, units=(32, 32), negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.num_experts = num_experts
        self.units = tuple(units)
        self.negative_slope = negative_slope

    def build(self, input_shape):
        size = input_shape[-1]
        self.kernels, self.biases = [], []
        for layer, units in enumerate(self.units):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{layer}",
                    shape=[self.num_experts, size, units],
                    initializer="glorot_uniform",
                )
            )
            self.biases.append(
                self.add_weight(
                    name=f"bias_{layer}", shape=[self.num_experts, units], initializer="zeros"
                )
            )
            size = units
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, N, units[-1]] for inputs [B, in] (shared) or [B, N, in] (one per expert)."""
        first = "bni,nio->bno" if inputs.shape.rank == 3 else "bi,nio->bno"
        x = tf.einsum(first, inputs, self.kernels[0]) + self.biases[0]
        x = tf.nn.leaky_relu(x, self.negative_slope)
        for kernel, bias in zip(self.kernels[1:], self.biases[1:], strict=True):
            x = tf.nn.leaky_relu(tf.einsum("bni,nio->bno", x, kernel) + bias, self.negative_slope)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "num_experts": self.num_experts,
            "units": self.units,
            "negative_slope": self.negative_slope,
        }


class TaskGates(tf.keras.layers.Layer):
    """One softmax gate per task over the experts, g^k = softmax(W_k x + b_k) (§2.3).

    Args:
      num_tasks: K.
      num_experts: N.
    """

    def __init__(self, num_tasks, num_experts, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks
        self.num_experts = num_experts

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=[self.num_tasks, input_shape[-1], self.num_experts],
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(
            name="bias", shape=[self.num_tasks, self.num_experts], initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K, N] gate weights (each row sums to 1) for inputs [B, in]."""
        return tf.nn.softmax(tf.einsum("bi,kin->bkn", inputs, self.kernel) + self.bias, -1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_experts": self.num_experts,
        }


class TaskLogits(tf.keras.layers.Layer):
    """One linear output per task on its own representation: logit_k = v_kᵀ h_k + b_k.

    Args:
      num_tasks: K.
    """

    def __init__(self, num_tasks, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=[self.num_tasks, input_shape[-1]], initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=[self.num_tasks], initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K] logits for per-task representations [B, K, D]."""
        return tf.einsum("bkd,kd->bk", inputs, self.kernel) + self.bias

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}


class TaskHeads(TaskLogits):
    """Task logits v_kᵀ Σ_n g^k_n [f^n || Z^n] + b_k (§2.3; σ gives ŷ_k).

    Args:
      num_tasks: K.
    """

    def build(self, input_shape):
        super().build(input_shape[0])

    def call(self, inputs):
        """Returns [B, K] logits for inputs (expert outputs [B, N, D], gates [B, K, N])."""
        experts, gates = inputs
        return super().call(tf.einsum("bkn,bnd->bkd", gates, experts))


class GateNetworks(tf.keras.layers.Layer):
    """One gating MLP per task: g^k = softmax(W_k MLP_k(x) + b_k), optionally over allowed experts.

    Used by the MMoE, CGC and SNR-style baselines ("gates of [16, 16]", §3):
    each task's gate is an MLP with LeakyReLU hidden layers, then a softmax
    over the experts; `allowed` [K, N] (0/1) restricts task k to some experts
    (CGC: its own and the shared ones).

    Args:
      num_tasks: K.
      num_experts: N.
      hidden: Hidden sizes of each gate's MLP.
      negative_slope: LeakyReLU slope.
      allowed: None (every expert) or a [K][N] 0/1 nested list.
    """

    def __init__(
        self, num_tasks, num_experts, hidden=(16, 16), negative_slope=0.2, allowed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.hidden = tuple(hidden)
        self.negative_slope = negative_slope
        self.allowed = allowed
        self.mlps = Experts(num_tasks, self.hidden, negative_slope, name="mlps") if hidden else None

    def build(self, input_shape):
        size = self.hidden[-1] if self.hidden else input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=[self.num_tasks, size, self.num_experts],
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(
            name="bias", shape=[self.num_tasks, self.num_experts], initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs):
        """Returns [B, K, N] gate weights (rows sum to 1 over allowed experts) for [B, in]."""
        if self.mlps is not None:
            logits = tf.einsum("bkh,khn->bkn", self.mlps(inputs), self.kernel) + self.bias
        else:
            logits = tf.einsum("bi,kin->bkn", inputs, self.kernel) + self.bias
        if self.allowed is not None:
            allowed = tf.constant(self.allowed, tf.float32)
            logits += (1.0 - allowed) * -1e9
        return tf.nn.softmax(logits, -1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_tasks": self.num_tasks,
            "num_experts": self.num_experts,
            "hidden": self.hidden,
            "negative_slope": self.negative_slope,
            "allowed": self.allowed,
        }
