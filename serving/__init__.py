"""Serving: the TF Serving export, a TF Serving–compatible server, a client.

Sets the legacy Keras switch before TensorFlow can be imported by any module
of this package (the export rebuilds the tf-keras model).
"""

import legacy_keras  # noqa: F401  (before TensorFlow)
