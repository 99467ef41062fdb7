# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""BatchNorm statistics re-estimated with the current weights before evaluation.

An adder network's layer outputs move fast in training: AdderNet's adaptive
learning rate moves every filter by `lr·η·√k` in norm each step, and an
adder layer's output mean (−Σ|x − f|, in the hundreds) drifts by tens per
step. A BN moving average lags it, so the network evaluated in inference mode
is not the trained one (measured on digits: train-mode accuracy 0.86,
eval-mode 0.11 after 3 epochs). Before every evaluation and before saving,
`BatchNormRecalibration` replaces the moving statistics of every trainable BN
layer by the population statistics of K training batches, computed with the
current weights:

    mean = E_k[μ_k],   variance = E_k[v_k] + Var_k[μ_k]

(μ_k, v_k the batch mean and biased variance each BN sees in training mode on
batch k; equal batches make this the exact variance over all K·N examples
at that layer, with the earlier layers already in training mode).
"""

import keras
import numpy as np
import tensorflow as tf

from addernet_tf._validate import positive_int

__all__ = ["batch_norm_layers", "recalibrate_batch_norm", "BatchNormRecalibration"]


def batch_norm_layers(model):
    """Every trainable `BatchNormalization` in `model`, nested models included."""
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable:
                found.append(layer)
            return
        for child in getattr(layer, "layers", None) or ():
            visit(child)
        for child in getattr(layer, "_layers", None) or ():
            visit(child)

    visit(model)
    return found


def recalibrate_batch_norm(model, batches, forward=None):
    """Sets `model`'s BN moving statistics to those of `batches` (see the module doc).

    Args:
      model: a `keras.Model`; frozen (non-trainable) BN layers are left alone.
      batches: an iterable of `(images [N, H, W, C], ...)` or of images; every
        batch is used (take K of an endless stream before passing it).
      forward: optional callable `images -> anything` that runs `model` in
        training mode (e.g. a `tf.function` reused across calls); default
        `model(images, training=True)`. It runs with every BN's momentum at 0.

    Returns:
      the number of batches used (0 leaves the statistics untouched).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    forward = forward or (lambda images: model(images, training=True))
    momenta = [layer.momentum for layer in layers]
    sums = [[0.0, 0.0, 0.0] for _ in layers]  # Σ μ, Σ μ², Σ v (float64 arrays)
    used = 0
    try:
        for layer in layers:
            layer.momentum = 0.0  # moving = batch statistics after each call
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            if int(tf.shape(images)[0]) == 0:
                continue
            forward(images)
            for acc, layer in zip(sums, layers):
                mean = np.asarray(layer.moving_mean.numpy(), np.float64)
                acc[0] = acc[0] + mean
                acc[1] = acc[1] + mean * mean
                acc[2] = acc[2] + np.asarray(layer.moving_variance.numpy(), np.float64)
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if used == 0:
        return 0
    for (total, squares, variances), layer in zip(sums, layers):
        mean = total / used
        variance = variances / used + np.maximum(squares / used - mean * mean, 0.0)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return used


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrates networks' BN statistics at the start of every evaluation.

    In `fit` the validation runs before `on_epoch_end`, so the epoch's saved
    weights carry the recalibrated statistics too; without validation it
    recalibrates at `on_epoch_end` (list it before the callbacks that save).
    Call `recalibrate()` yourself before a final evaluation or save outside
    `fit`.

    Args:
      networks: `keras.Model`s to recalibrate (None entries skipped).
      dataset: endless `tf.data.Dataset` of training batches (its own stream,
        not the one being trained on); one iterator is kept across calls, so
        every recalibration sees new batches.
      num_batches: K, batches per recalibration (> 0).
    """

    def __init__(self, networks, dataset, num_batches):
        super().__init__()
        positive_int(num_batches, "num_batches")
        self.networks = [net for net in networks if net is not None]
        self.num_batches = num_batches
        self._dataset = dataset
        self._iterator = None
        self._forwards = {}
        self._fresh = False

    def _forward(self, network):
        # Traced on first use, with the momenta at 0 (they are constants in the graph).
        if id(network) not in self._forwards:
            self._forwards[id(network)] = tf.function(
                lambda images: network(images, training=True), reduce_retracing=True)
        return self._forwards[id(network)]

    def recalibrate(self):
        if self._iterator is None:
            self._iterator = iter(self._dataset)
        batches = [next(self._iterator) for _ in range(self.num_batches)]
        for network in self.networks:
            recalibrate_batch_norm(network, batches, self._forward(network))

    def on_epoch_begin(self, epoch, logs=None):
        self._fresh = False

    def on_test_begin(self, logs=None):
        self.recalibrate()
        self._fresh = True

    def on_epoch_end(self, epoch, logs=None):
        if not self._fresh:  # no validation this epoch: the saves still get them
            self.recalibrate()
