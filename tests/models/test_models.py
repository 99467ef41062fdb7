# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Model builders: shapes, CNN/ANN parity, layer inventory, ops count, argument checks, training."""

import functools
import warnings

import keras
import numpy as np

import pytest
import tensorflow as tf

import model_batches
from addernet_tf import models
from addernet_tf.layers import Adder2D

# name -> (input shape the tests run at, Adder2D layers in the ANN: main path + 1×1 shortcuts).
SPECS = {
    "resnet20": ((16, 16, 3), 18 + 2),
    "resnet32": ((16, 16, 3), 30 + 2),
    "resnet56": ((16, 16, 3), 54 + 2),
    "vgg_small": ((16, 16, 3), 5),
    "resnet18": ((64, 64, 3), 16 + 3),
    "resnet50": ((64, 64, 3), 48 + 4),
}
NUM_CLASSES = 7
BATCH = 4


@functools.lru_cache(maxsize=None)
def built(name, network):
    """One model per (name, form) for the tests that only read it."""
    return models.get_model(name, network=network, num_classes=NUM_CLASSES,
                            input_shape=SPECS[name][0])


def count(model, layer_type):
    return sum(isinstance(layer, layer_type) for layer in model.layers)


def macs(model):
    """Multiply-accumulates (adder layers counted as conv layers) per image."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, Adder2D)):
            kh, kw, cin, _ = layer.kernel.shape
            total += int(np.prod(layer.output.shape[1:])) * kh * kw * cin
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def test_registry():
    assert set(models.MODELS) == set(SPECS)
    for name in models.__all__:
        assert hasattr(models, name)


@pytest.mark.parametrize("network", models.NETWORKS)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_forward_gives_finite_logits(name, network):
    model = built(name, network)
    x, _ = model_batches.digits_batch(BATCH, SPECS[name][0][0])
    for training in (True, False):
        logits = model(x, training=training)
        assert logits.shape == (BATCH, NUM_CLASSES)
        assert logits.dtype == tf.float32
        assert np.all(np.isfinite(logits))
    # With batch statistics, the images must give different logits.
    assert np.std(model(x, training=True).numpy(), axis=0).min() > 0.1


@pytest.mark.parametrize("name", sorted(SPECS))
def test_cnn_and_ann_have_identical_weights(name):
    cnn, ann = built(name, "cnn"), built(name, "ann")
    assert cnn.count_params() == ann.count_params()
    assert [tuple(w.shape) for w in cnn.weights] == [tuple(w.shape) for w in ann.weights]
    assert [w.trainable for w in cnn.weights] == [w.trainable for w in ann.weights]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_only_stem_and_classifier_multiply(name):
    adders = SPECS[name][1]
    ann, cnn = built(name, "ann"), built(name, "cnn")
    assert count(ann, Adder2D) == adders
    assert count(ann, keras.layers.Conv2D) == 1
    assert count(ann, keras.layers.Dense) == 1
    assert count(cnn, Adder2D) == 0
    assert count(cnn, keras.layers.Conv2D) == adders + 1
    assert count(cnn, keras.layers.Dense) == 1
    for model in (ann, cnn):
        stem = next(layer for layer in model.layers
                    if isinstance(layer, (keras.layers.Conv2D, Adder2D)))
        assert isinstance(stem, keras.layers.Conv2D)
        assert not stem.use_bias
        assert isinstance(model.layers[-2], keras.layers.Dense)
        assert not model.layers[-2].use_bias
        assert isinstance(model.layers[-1], keras.layers.BatchNormalization)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                assert (layer.momentum, layer.epsilon) == (0.9, 1e-5)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_adder_and_conv_layers_match(name):
    """Each Adder2D sits where the CNN has a Conv2D of the same kernel, strides and output."""
    ann_layers = [layer for layer in built(name, "ann").layers if isinstance(layer, Adder2D)]
    cnn_layers = [layer for layer in built(name, "cnn").layers
                  if isinstance(layer, keras.layers.Conv2D)][1:]
    assert [a.name for a in ann_layers] == [c.name for c in cnn_layers]
    for adder, conv in zip(ann_layers, cnn_layers):
        assert adder.kernel.shape == conv.kernel.shape
        assert adder.strides == tuple(conv.strides)
        assert adder.output.shape == conv.output.shape
        assert adder.adaptive_eta == 0.2


def test_default_names_and_shapes():
    assert models.resnet20().name == "resnet20_ann"
    assert models.resnet20(network="cnn").name == "resnet20_cnn"
    assert models.get_model("vgg_small", network="cnn", name="teacher").name == "teacher"
    assert models.resnet56(network="cnn").input_shape == (None, 32, 32, 3)
    assert models.resnet18(network="cnn").output_shape == (None, 1000)
    assert models.vgg_small().output_shape == (None, 10)


def test_parameter_counts():
    # Torchvision's ResNet-18 has a 1000-bias fc; ours a bias-free fc + BN (2 × 1000 trainable).
    assert models.resnet20(network="cnn").count_params() == 274_072
    assert models.resnet18(network="cnn").count_params() == 11_702_112
    trainable = sum(int(np.prod(w.shape)) for w in models.resnet18(network="cnn").trainable_weights)
    assert trainable == 11_689_512 - 1000 + 2000


def test_resnet50_is_v1_by_default():
    v1 = models.resnet50(network="cnn")
    v15 = models.resnet50(network="cnn", stride_in_1x1=False)
    # Original ResNet-50: 3.86 G MACs at 224×224; torchvision's v1.5: 4.09 G.
    assert macs(v1) == pytest.approx(3.858e9, rel=1e-3)
    assert macs(v15) == pytest.approx(4.089e9, rel=1e-3)
    assert v1.count_params() == v15.count_params()
    assert v1.get_layer("stage2_block1_conv1").strides == (2, 2)
    assert v1.get_layer("stage2_block1_conv2").strides == (1, 1)
    assert v15.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert v15.get_layer("stage2_block1_conv2").strides == (2, 2)


def test_cifar_macs_match_the_paper():
    # Table 2 counts 69.12 M multiplications for the CNN ResNet-32.
    assert macs(models.resnet32(network="cnn")) == 69_124_736


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50"])
def test_unknown_spatial_size(name):
    model = models.get_model(name, num_classes=3, input_shape=(None, None, 3))
    for size in (9, 17):
        x, _ = model_batches.digits_batch(2, size)
        logits = model(x, training=True)
        assert logits.shape == (2, 3)
        assert np.all(np.isfinite(logits))


def test_small_inputs_work():
    model = models.resnet20(input_shape=(8, 8, 1))
    assert model(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 10)
    assert models.vgg_small(input_shape=(8, 8, 3)).get_layer("flatten").output.shape == (None, 512)


def test_resnet_cifar_depth():
    assert sum(isinstance(layer, Adder2D) for layer in models.resnet_cifar(8).layers) == 6 + 2
    assert len(models.tap_layers(models.resnet_cifar(110))) == 108


def test_implementation_reaches_every_adder():
    auto = models.resnet_cifar(8, input_shape=(8, 8, 3))
    ref = models.resnet_cifar(8, input_shape=(8, 8, 3), implementation="builtin",
                              adaptive_eta=None)
    ref.set_weights(auto.get_weights())
    adders = [layer for layer in ref.layers if isinstance(layer, Adder2D)]
    assert all(a.implementation == "builtin" and a.adaptive_eta is None for a in adders)
    x, _ = model_batches.digits_batch(BATCH, 8)
    # Inference mode: batch-statistics BN over a small batch would amplify the
    # backends' float32 summation-order differences (seen up to 2e-4).
    want = np.asarray(auto(x, training=False))
    np.testing.assert_allclose(ref(x, training=False), want, rtol=1e-4,
                               atol=1e-5 * np.abs(want).max())


def test_channels_last_whatever_the_global_format():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        for network in models.NETWORKS:
            model = models.resnet_cifar(8, network=network, input_shape=(8, 8, 3))
            x, _ = model_batches.digits_batch(2, 8)
            assert model(x, training=True).shape == (2, 10)
    finally:
        keras.config.set_image_data_format(previous)


def test_logits_are_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        for network in models.NETWORKS:
            model = models.resnet_cifar(8, network=network, input_shape=(8, 8, 3))
            x, _ = model_batches.digits_batch(2, 8)
            logits = model(x, training=True)
            assert logits.dtype == tf.float32
            assert np.all(np.isfinite(logits))
    finally:
        keras.config.set_dtype_policy(previous)


BAD_ARGUMENTS = [
    ("resnet20", dict(network="foo"), "network", "'foo'"),
    ("resnet20", dict(network="Adder"), "network", "'Adder'"),
    ("resnet20", dict(conv="foo"), "network", "'foo'"),
    ("resnet20", dict(num_classes=0), "num_classes", "0"),
    ("resnet50", dict(num_classes=-3), "num_classes", "-3"),
    ("vgg_small", dict(num_classes=2.5), "num_classes", "2.5"),
    ("resnet18", dict(num_classes=True), "num_classes", "True"),
    ("resnet20", dict(input_shape=(32, 32)), "input_shape", "(32, 32)"),
    ("resnet20", dict(input_shape=(0, 32, 3)), "input_shape", "(0, 32, 3)"),
    ("resnet20", dict(input_shape=(32, 32, None)), "input_shape", "(32, 32, None)"),
    ("resnet18", dict(input_shape="224"), "input_shape", "'224'"),
    ("vgg_small", dict(input_shape=(4, 32, 3)), "input_shape", "(4, 32, 3)"),
    ("vgg_small", dict(input_shape=(None, None, 3)), "input_shape", "(None, None, 3)"),
    ("resnet32", dict(adaptive_eta=0), "adaptive_eta", "0"),
    ("resnet32", dict(adaptive_eta=-0.2, network="cnn"), "adaptive_eta", "-0.2"),
    ("resnet56", dict(implementation="fast"), "implementation", "'fast'"),
    ("resnet20", dict(name=3), "name", "3"),
    ("resnet50", dict(stride_in_1x1="yes"), "stride_in_1x1", "'yes'"),
]


@pytest.mark.parametrize("name,kwargs,argument,value", BAD_ARGUMENTS)
def test_bad_arguments(name, kwargs, argument, value):
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        models.get_model(name, **kwargs)
    assert value in str(info.value)


def test_spellings_before_0_2_still_build_with_a_deprecation_warning():
    shape = (8, 8, 3)
    with pytest.warns(DeprecationWarning, match="`conv=` is deprecated"):
        cnn = models.get_model("resnet20", conv="conv", input_shape=shape)
    with pytest.warns(DeprecationWarning, match="network='adder' is deprecated: use 'ann'"):
        ann = models.resnet20(10, "adder", shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builtin = models.resnet_cifar(8, input_shape=shape, implementation="reference")
    # Once for the call, not again for each of its adder layers.
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
        "implementation='reference' is deprecated: use 'builtin'"]
    assert (cnn.name, ann.name) == ("resnet20_cnn", "resnet20_ann")
    assert count(cnn, Adder2D) == 0 and count(ann, Adder2D) == 18 + 2  # + 2 shortcuts
    assert {layer.implementation for layer in builtin.layers if isinstance(layer, Adder2D)} == {
        "builtin"}
    with pytest.raises(TypeError, match="`network` and `conv`"):
        models.resnet20(network="ann", conv="adder")


def test_bad_depth_and_model_name():
    with pytest.raises(ValueError, match=r"`depth`.*21"):
        models.resnet_cifar(21)
    with pytest.raises(ValueError, match=r"`name` 'resnet99'.*resnet20"):
        models.get_model("resnet99")


# Keras's own `model.save` converts variables with `np.array(x, copy=False)`.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    model = models.resnet20(input_shape=(16, 16, 3))
    x, labels = model_batches.digits_batch(8, 16)
    _train(model, x, labels, steps=1)
    path = str(tmp_path / "resnet20_adder.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for training in (False, True):
        np.testing.assert_allclose(loaded(x, training=training), model(x, training=training),
                                   rtol=1e-5, atol=1e-5)
    for kind in ("layer", "block"):
        original, restored = models.tap_layers(model, kind), models.tap_layers(loaded, kind)
        assert [(t.index, t.fan_in, t.name) for t in restored] == [
            (t.index, t.fan_in, t.name) for t in original]
        _, tapped = models.with_taps(loaded, kind)(x, training=True)
        _, expected = models.with_taps(model, kind)(x, training=True)
        for got, want in zip(tapped, expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert [type(a) for a in loaded.layers] == [type(a) for a in model.layers]


def _train(model, x, labels, steps, learning_rate=0.1):
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    return losses


def test_adder_resnet20_trains():
    keras.utils.set_random_seed(0)
    model = models.resnet20(input_shape=(16, 16, 3))
    x, labels = model_batches.digits_batch(16, 16)
    adders = [layer for layer in model.layers if isinstance(layer, Adder2D)]
    before = [layer.kernel.numpy() for layer in adders]
    losses = _train(model, x, labels, steps=8)
    assert np.all(np.isfinite(losses))
    for layer, kernel in zip(adders, before):
        assert not np.allclose(layer.kernel.numpy(), kernel), layer.name
    # Fitting one batch of 16 digits: the loss must go down.
    assert losses[-1] < losses[0] - 0.3
