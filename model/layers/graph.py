"""The MGNN over a sample's trees (Hu et al., §2.2) and κ of the graph interactions Z (§2.3).

Every layer works on dense tensors: each of a sample's trees has a fixed
fan-out per hop (`contracts.layout`), so the neighbours of the nodes at hop h
are the [..., f_{h+1}] slots below them, with a mask where a node has fewer
neighbours. Only the nodes whose outputs reach the roots are updated: layer l
updates hops 0..L-1-l.

Choices where the paper leaves room, each in one line:
  * attention: GAT form, e = LeakyReLU(a_1ᵀh_v + a_2ᵀh_j), softmax over the
    real neighbours; similarity weights enter as a prior (α ∝ w·exp(e)),
    as a message scale, or not at all (`edge_weight`);
  * `W_c` is applied after the attention-weighted sum (exact, and cheaper
    than transforming every neighbour);
  * the LSTM-like update is an LSTM cell whose input is the message and whose
    previous cell state is the node state: h' = o ⊙ tanh(f ⊙ h + i ⊙ g).
"""

from __future__ import annotations

import tensorflow as tf

_LOG_EPS = 1e-6


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
