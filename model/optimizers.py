"""Optimizers: Adam, and Adam whose embedding-table updates touch only the rows used.

Keras' Adam applies a sparse (IndexedSlices) gradient by decaying the moments
of every row and moving every row of the table, so a step costs the size of
the whole table, not of the batch. `RowSparseAdam` ("lazy Adam", as in TF
Addons' LazyAdam and TF1's `LazyAdamOptimizer`) updates the moments and the
values of the rows in the gradient only; dense gradients get plain Adam. A
row not in the batch keeps its moments and its value, so the two differ only
in what rows outside the batch do between their visits.
"""

from __future__ import annotations

import tensorflow as tf

from model.config import OPTIMIZERS


class RowSparseAdam(tf.keras.optimizers.Adam):
    """Adam with row-sparse updates for IndexedSlices gradients (see the module doc).

    Args:
      learning_rate: The learning rate.
      embedding_lr_scale: Multiplies the learning rate of the row-sparse
        (embedding table) updates.
      **kwargs: Passed to Adam.
    """

    def __init__(self, learning_rate=1e-3, embedding_lr_scale: float = 1.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.embedding_lr_scale = float(embedding_lr_scale)

    def get_config(self):
        return {**super().get_config(), "embedding_lr_scale": self.embedding_lr_scale}

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        # Keras' apply_gradients has already summed duplicate indices.
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = (
            tf.cast(self.learning_rate * self.embedding_lr_scale, dtype)
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        epsilon = self.epsilon
        if self.adaptive_epsilon:
            epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step))
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        rows, values = gradient.indices, gradient.values
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def make_optimizer(
    name: str, learning_rate: float, embedding_lr_scale: float = 1.0
) -> tf.keras.optimizers.Optimizer:
    """Returns the optimizer called `name` ("adam" or "row_sparse_adam").

    Raises:
      ValueError: For an unknown name, or an embedding learning-rate scale
        other than 1 with "adam" (whose table updates are dense).
    """
    if name == "adam":
        if embedding_lr_scale != 1.0:
            raise ValueError("embedding_lr_scale needs --optimizer row_sparse_adam")
        return tf.keras.optimizers.Adam(learning_rate)
    if name == "row_sparse_adam":
        return RowSparseAdam(learning_rate, embedding_lr_scale)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
