"""The shared encoder of users and items (Hu et al., §2.1).

Enc(x) sums the id embedding, one embedding per categorical feature value and
a linear map of the standardised numeric features (a choice where the paper
leaves room).
"""

from __future__ import annotations

import tensorflow as tf

from model.entities import EntityTable


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
