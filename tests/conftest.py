"""Test-wide set-up: Keras 2 for TF-GNN before TensorFlow is imported."""

import os

import legacy_keras  # noqa: F401  (before TensorFlow)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
