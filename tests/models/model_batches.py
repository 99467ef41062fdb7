# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Small real image batches for the model tests: scikit-learn's 8×8 digits, offline."""

import functools

import numpy as np
import tensorflow as tf


@functools.lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits.images.astype(np.float32)
    return (images - images.mean()) / images.std(), digits.target.astype(np.int32)


def digits_batch(n, size, channels=3):
    """The first `n` digits resized to `size`×`size`, standardized, channels repeated.

    Returns:
      `(images [n, size, size, channels] float32, labels [n] int32 in 0..9)`.
    """
    images, labels = _digits()
    x = tf.image.resize(images[:n, :, :, None], (size, size))
    return np.repeat(x.numpy(), channels, axis=-1), labels[:n]
