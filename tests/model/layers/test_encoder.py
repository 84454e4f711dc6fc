"""The shared encoder on fixed tables: its three terms and the norm of the rows it read."""

import numpy as np
import tensorflow as tf

from model.entities import EntityTable
from model.layers.encoder import EntityEncoder
from tests.model.layers.common import assert_config_roundtrip

D = 6


def test_entity_encoder_sums_id_feature_and_numeric_embeddings():
    table = EntityTable.from_rows(
        ["a", "b"], [{"id": "a", "colour": "red", "size": 2.0}, {"id": "c", "colour": "blue"}]
    )
    encoder = EntityEncoder.from_table(table, D)
    indices = tf.constant([[1, 0, 3], [2, 2, 1]])
    encoded, norm = encoder(indices, return_squared_norm=True)
    assert encoded.shape == (2, 3, D)
    # Recomputed from the encoder's tables: the only check of Enc's three terms and of
    # the distinct-row norm the L2 penalty uses.
    ids = encoder.id_embedding.numpy()
    features = encoder.feature_embedding.numpy()
    values = encoder.feature_values.numpy()[:, 0]
    numeric = encoder.numeric_values.numpy()
    kernel = encoder.numeric_kernel.numpy()
    expected = (
        ids[indices.numpy()]
        + features[values[indices.numpy()]]
        + (numeric[indices.numpy()] @ kernel)
    )
    np.testing.assert_allclose(encoded.numpy(), expected, rtol=1e-6)
    distinct = np.unique(indices.numpy())
    expected_norm = (ids[distinct] ** 2).sum() + (features[values[distinct]] ** 2).sum()
    np.testing.assert_allclose(norm.numpy(), expected_norm, rtol=1e-5)
    assert_config_roundtrip(encoder)
