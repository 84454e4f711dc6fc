"""What the layer tests share: fixed inputs and the config round trip."""

import numpy as np
import tensorflow as tf


def normal(*shape, seed=0):
    """A float32 tensor of standard normal values, the same for the same seed."""
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def assert_config_roundtrip(layer):
    """A layer rebuilt from its config has the same config."""
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
