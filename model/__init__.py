"""MoGENet model: TF-GNN/Keras layers, losses, metrics and training.

TF-GNN and TF Recommenders need Keras 2: the legacy Keras switch is set before
TensorFlow can be imported by any module of this package.
"""

import legacy_keras  # noqa: F401  (before TensorFlow)
