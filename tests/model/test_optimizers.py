"""RowSparseAdam: Adam on the rows in the batch, untouched rows left alone."""

import numpy as np
import pytest
import tensorflow as tf

from model.optimizers import RowSparseAdam, make_optimizer


def _adam_rows(value, grads, lr, steps, beta_1=0.9, beta_2=0.999, eps=1e-7):
    m = np.zeros_like(value)
    v = np.zeros_like(value)
    for t, g in enumerate(grads, 1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        value = value - alpha * m / (np.sqrt(v) + eps)
    return value


def test_rows_in_the_batch_follow_adam_and_the_others_do_not_move():
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))
    initial = table.numpy().copy()
    optimizer = RowSparseAdam(0.1)
    grads = []
    for step in range(3):
        with tf.GradientTape() as tape:
            rows = tf.gather(table, [1, 3, 1])  # row 1 twice: its gradients add up
            loss = tf.reduce_sum(rows * tf.constant([[1.0], [2.0], [0.5]]) * (step + 1))
        (grad,) = tape.gradient(loss, [table])
        assert isinstance(grad, tf.IndexedSlices)
        optimizer.apply_gradients([(grad, table)])
        grads.append(np.array([1.5, 2.0]) * (step + 1))
    after = table.numpy()
    np.testing.assert_array_equal(after[[0, 2]], initial[[0, 2]])
    for row, k in ((1, 0), (3, 1)):
        expected = _adam_rows(initial[row], [np.full(3, g[k]) for g in grads], 0.1, 3)
        np.testing.assert_allclose(after[row], expected, rtol=1e-5)


def test_dense_gradients_get_plain_adam():
    a, b = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    sparse, plain = RowSparseAdam(0.05), tf.keras.optimizers.Adam(0.05)
    for _ in range(3):
        sparse.apply_gradients([(tf.constant([0.3, -0.1]), a)])
        plain.apply_gradients([(tf.constant([0.3, -0.1]), b)])
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_make_optimizer_names():
    assert isinstance(make_optimizer("row_sparse_adam", 0.1), RowSparseAdam)
    assert type(make_optimizer("adam", 0.1)) is tf.keras.optimizers.Adam
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("sgd", 0.1)


def test_embedding_lr_scale_multiplies_only_the_row_sparse_steps():
    table, dense = tf.Variable(np.ones((3, 2), np.float32)), tf.Variable([1.0, -2.0])
    reference = tf.Variable([1.0, -2.0])
    optimizer, plain = RowSparseAdam(0.01, embedding_lr_scale=10.0), tf.keras.optimizers.Adam(0.01)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, [2]) * 0.5)
        (grad,) = tape.gradient(loss, [table])
        optimizer.apply_gradients([(grad, table), (tf.constant([0.3, -0.1]), dense)])
        plain.apply_gradients([(tf.constant([0.3, -0.1]), reference)])
    expected = _adam_rows(np.ones(2), [np.full(2, 0.5)] * 2, 0.1, 2)  # 10 x 0.01
    np.testing.assert_allclose(table.numpy()[2], expected, rtol=1e-5)
    np.testing.assert_array_equal(table.numpy()[:2], np.ones((2, 2)))
    np.testing.assert_allclose(dense.numpy(), reference.numpy(), rtol=1e-6)  # dense: unscaled
    assert make_optimizer("row_sparse_adam", 0.1, 3.0).embedding_lr_scale == 3.0
    with pytest.raises(ValueError, match="needs --optimizer row_sparse_adam"):
        make_optimizer("adam", 0.1, 3.0)
