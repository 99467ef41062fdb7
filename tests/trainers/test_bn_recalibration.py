# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""BN statistics re-estimated with the current weights (`trainers.bn_recalibration`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from addernet_tf.trainers.bn_recalibration import (BatchNormRecalibration, batch_norm_layers,
                                       recalibrate_batch_norm)


def _conv_bn(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(3, 3, padding="same", use_bias=True, name="conv")
    bn = keras.layers.BatchNormalization(momentum=0.9, name="bn")
    model = keras.Model(inputs, keras.layers.ReLU()(bn(conv(inputs))))
    return model, conv, bn


def _batches(count, n=5, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 6, 6, 2)).astype("float32") * (1 + k) + shift + k,
             np.zeros(n, "int32")) for k in range(count)]


def test_statistics_are_the_population_statistics_of_the_batches():
    model, conv, bn = _conv_bn()
    batches = _batches(4)
    assert recalibrate_batch_norm(model, batches) == 4
    # Independent: the BN's input over all 4 batches at once, in float64.
    inputs = np.concatenate([conv(x).numpy() for x, _ in batches]).astype("float64")
    np.testing.assert_allclose(bn.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), inputs.var(axis=(0, 1, 2)),
                               rtol=1e-4)
    assert bn.momentum == 0.9


def test_a_moving_average_lags_where_recalibration_does_not():
    """What the recalibration is for: statistics that drift faster than BN's average."""
    model, conv, bn = _conv_bn()
    drifting = _batches(6, shift=50.0)
    for x, _ in drifting:  # training-mode calls update the moving average (momentum 0.9)
        model(x, training=True)
    target = np.concatenate([conv(x).numpy() for x, _ in drifting[-2:]]).mean(axis=(0, 1, 2))
    lagging = np.abs(bn.moving_mean.numpy() - target).max()
    recalibrate_batch_norm(model, drifting[-2:])
    assert np.abs(bn.moving_mean.numpy() - target).max() < 1e-3 * lagging


def test_nested_models_and_frozen_layers():
    inner, _, inner_bn = _conv_bn(1)
    inputs = keras.Input((6, 6, 2))
    frozen = keras.layers.BatchNormalization(name="frozen")
    outer = keras.Model(inputs, frozen(inner(inputs)))
    frozen.trainable = False
    assert batch_norm_layers(outer) == [inner_bn]
    before = frozen.moving_mean.numpy().copy()
    recalibrate_batch_norm(outer, _batches(2))
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), before)
    assert not np.allclose(inner_bn.moving_mean.numpy(), 0.0)


def test_no_batches_leave_the_statistics_alone():
    model, _, bn = _conv_bn()
    assert recalibrate_batch_norm(model, []) == 0
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3))
    np.testing.assert_array_equal(bn.moving_variance.numpy(), np.ones(3))


def test_callback_draws_new_batches_each_time_and_restores_momentum():
    model, conv, bn = _conv_bn()
    stream = tf.data.Dataset.from_tensor_slices(
        np.arange(4, dtype="float32")[:, None, None, None, None]
        + np.zeros((4, 3, 6, 6, 2), "float32")).repeat()
    callback = BatchNormRecalibration([model, None], stream, num_batches=1)
    means = []
    for _ in range(3):
        callback.on_test_begin()
        means.append(float(bn.moving_mean.numpy()[0]))
        assert bn.momentum == 0.9
    # Constant images k give a conv output of bias + k·Σ(kernel over in-image taps): all differ.
    assert len(set(np.round(means, 5))) == 3


def test_callback_recalibrates_at_epoch_end_without_validation():
    model, _, bn = _conv_bn()
    stream = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).normal(size=(2, 4, 6, 6, 2)).astype("float32") + 9.0).repeat()
    callback = BatchNormRecalibration([model], stream, num_batches=2)
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0)
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    bn.moving_mean.assign(np.zeros(3))
    callback.on_epoch_begin(1)
    callback.on_test_begin()
    recalibrated = bn.moving_mean.numpy().copy()
    callback.on_epoch_end(1)  # validation already recalibrated this epoch
    np.testing.assert_array_equal(bn.moving_mean.numpy(), recalibrated)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None])
def test_bad_batch_count(bad):
    with pytest.raises(ValueError, match=r"`num_batches`.*" + repr(bad).replace(".", r"\.")):
        BatchNormRecalibration([], tf.data.Dataset.range(1), bad)
