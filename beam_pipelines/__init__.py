"""Beam pipelines that turn interaction logs into MoGENet GraphTensor samples.

TF-GNN needs Keras 2, so the legacy Keras switch is set before TensorFlow can
be imported by any module of this package.
"""

import os

import legacy_keras  # noqa: F401  (before TensorFlow)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the job's log readable
