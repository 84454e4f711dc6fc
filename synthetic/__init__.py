"""Synthetic click/conversion data with a known generating model, and its oracle.

`synthetic.generator` writes the canonical CSV files (`python -m
synthetic.generator`), `synthetic.latent` holds the generative model, and
`synthetic.oracle` scores a preprocessed split with the generator's own
probabilities (`python -m synthetic.oracle`). The oracle imports TensorFlow,
so the legacy Keras switch is set first.
"""

import legacy_keras  # noqa: F401  (before TensorFlow)
