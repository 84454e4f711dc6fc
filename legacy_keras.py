"""TF-GNN and TF Recommenders need Keras 2 (tf-keras), not the Keras 3 of TensorFlow 2.21.

Importing this module sets ``TF_USE_LEGACY_KERAS=1`` (unless it is already
set), which TensorFlow reads when it is first imported. It is the one place
that sets it: every package's ``__init__`` (``beam_pipelines``, ``model``,
``serving``, ``synthetic``), ``tests/conftest.py`` and the scripts that import
TensorFlow themselves import this module before TensorFlow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
