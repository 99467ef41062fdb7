# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Distillation taps: count, order, placement, shapes, CNN/ANN equality, `with_taps`."""

import functools

import keras
import numpy as np
import pytest

import model_batches
from addernet_tf import models
from addernet_tf.layers import Adder2D, Tap

# name -> (input shape, "layer" taps, "block" taps)
TAPS = {
    "resnet20": ((16, 16, 3), 18, 9),
    "resnet32": ((16, 16, 3), 30, 15),
    "resnet56": ((16, 16, 3), 54, 27),
    "vgg_small": ((16, 16, 3), 5, 5),
    "resnet18": ((32, 32, 3), 16, 8),
    "resnet50": ((32, 32, 3), 48, 16),
}


@functools.lru_cache(maxsize=None)
def built(name, network):
    return models.get_model(name, network=network, num_classes=5, input_shape=TAPS[name][0])


def producer(tap):
    return tap.input._keras_history.operation


@pytest.mark.parametrize("network", models.NETWORKS)
@pytest.mark.parametrize("name", sorted(TAPS))
def test_tap_counts_order_and_placement(name, network):
    model = built(name, network)
    _, layer_count, block_count = TAPS[name]
    layer_taps = models.tap_layers(model, "layer")
    block_taps = models.tap_layers(model, "block")
    assert [t.index for t in layer_taps] == list(range(layer_count))
    assert [t.index for t in block_taps] == list(range(block_count))
    assert all(t.kind == "layer" for t in layer_taps) and all(t.kind == "block" for t in block_taps)
    all_taps = [layer for layer in model.layers if isinstance(layer, Tap)]
    assert len(all_taps) == layer_count + block_count
    # Index order is forward order (Functional.layers is topologically sorted).
    position = {id(layer): i for i, layer in enumerate(model.layers)}
    for taps in (layer_taps, block_taps):
        assert [position[id(t)] for t in taps] == sorted(position[id(t)] for t in taps)
    conv_type = Adder2D if network == "ann" else keras.layers.Conv2D
    for tap in layer_taps:
        layer = producer(tap)
        assert isinstance(layer, conv_type)
        assert "shortcut" not in layer.name and "stem" not in layer.name
        kh, kw, cin, _ = layer.kernel.shape
        assert tap.fan_in == kh * kw * cin
    for tap in block_taps:
        assert isinstance(producer(tap), keras.layers.ReLU)
        assert tap.fan_in is None


@pytest.mark.parametrize("name", sorted(TAPS))
def test_cnn_and_ann_taps_match(name):
    for kind in ("layer", "block"):
        cnn, ann = (models.tap_layers(built(name, network), kind) for network in ("cnn", "ann"))
        assert [(t.index, t.fan_in, t.name, t.output.shape) for t in cnn] == [
            (t.index, t.fan_in, t.name, t.output.shape) for t in ann]


def test_resnet20_tap_shapes():
    model = models.resnet20(input_shape=(32, 32, 3))
    layer_shapes = [tuple(t.output.shape[1:]) for t in models.tap_layers(model)]
    assert layer_shapes == [(32, 32, 16)] * 6 + [(16, 16, 32)] * 6 + [(8, 8, 64)] * 6
    assert [t.fan_in for t in models.tap_layers(model)] == (
        [144] * 6 + [144] + [288] * 5 + [288] + [576] * 5)
    block_shapes = [tuple(t.output.shape[1:]) for t in models.tap_layers(model, "block")]
    assert block_shapes == [(32, 32, 16)] * 3 + [(16, 16, 32)] * 3 + [(8, 8, 64)] * 3


def test_vgg_small_taps_precede_pooling():
    model = models.vgg_small(network="cnn")
    assert [tuple(t.output.shape[1:]) for t in models.tap_layers(model)] == [
        (32, 32, 128), (16, 16, 256), (16, 16, 256), (8, 8, 512), (8, 8, 512)]
    assert [tuple(t.output.shape[1:]) for t in models.tap_layers(model, "block")] == [
        (16, 16, 128), (16, 16, 256), (8, 8, 256), (8, 8, 512), (4, 4, 512)]


@pytest.mark.parametrize("network", models.NETWORKS)
@pytest.mark.parametrize("name", ["resnet20", "vgg_small", "resnet50"])
def test_with_taps_outputs(name, network):
    model = built(name, network)
    x, _ = model_batches.digits_batch(3, TAPS[name][0][0])
    for kind in ("layer", "block"):
        tapped = models.with_taps(model, kind)
        assert tapped.name == f"{model.name}_with_{kind}_taps"
        logits, features = tapped(x, training=True)
        np.testing.assert_allclose(logits, model(x, training=True), rtol=1e-5, atol=1e-5)
        taps = models.tap_layers(model, kind)
        assert len(features) == len(taps)
        for feature, tap in zip(features, taps):
            assert feature.shape == (3, *tap.output.shape[1:])
            assert np.all(np.isfinite(feature))
        if kind == "block":
            assert all(np.min(f) >= 0 for f in features)
        elif network == "ann":
            # Raw adder outputs −‖x − f‖₁: before BN they are never positive.
            assert all(np.max(f) <= 0 for f in features)
        else:
            assert all(np.min(f) < 0 < np.max(f) for f in features)
    # The first layer tap is the first adder/conv layer applied to the stem's output.
    first = models.tap_layers(model)[0]
    stem_out = keras.Model(model.inputs[0], first.input._keras_history.operation.input)
    _, features = models.with_taps(model)(x, training=False)
    np.testing.assert_allclose(features[0], producer(first)(stem_out(x, training=False)),
                               rtol=1e-5, atol=1e-3)


def test_with_taps_shares_weights():
    model = models.resnet_cifar(8, network="cnn", input_shape=(8, 8, 3))
    tapped = models.with_taps(model)
    assert [id(w) for w in tapped.weights] == [id(w) for w in model.weights]


def test_nested_models():
    inner = models.resnet_cifar(8, input_shape=(8, 8, 3))
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, inner(inputs))
    assert models.tap_layers(outer) == models.tap_layers(inner)
    with pytest.raises(ValueError, match="nested"):
        models.with_taps(outer)
    other = models.resnet_cifar(8, network="cnn", input_shape=(8, 8, 3))
    both = keras.Model(inputs, [inner(inputs), other(inputs)])
    with pytest.raises(ValueError, match="index 0"):
        models.tap_layers(both)


def test_tap_argument_errors():
    model = models.resnet_cifar(8, input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="`kind`.*'blocks'"):
        models.tap_layers(model, "blocks")
    with pytest.raises(ValueError, match="`kind`.*'all'"):
        models.with_taps(model, "all")
    with pytest.raises(ValueError, match="`model`"):
        models.tap_layers(keras.layers.Dense(3))
    plain_inputs = keras.Input((4,))
    plain = keras.Model(plain_inputs, keras.layers.Dense(2)(plain_inputs))
    assert models.tap_layers(plain) == []
    with pytest.raises(ValueError, match="no 'layer' Tap"):
        models.with_taps(plain)
