# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Kernel maps (Eq. 7, 8), heads with ρ (Eq. 11, 12), the head factory, and `Tap`."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from addernet_tf.layers import KernelHead, KernelMap, Tap, kernel_heads_for_taps
from tests.layers.layer_harness import run_layer_test


def _features(shape=(2, 4, 4, 3), seed=0, scale=2.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype("float32")


def _capped(z, m):
    return 1.0 / (np.exp(-z) + np.exp(-m))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_gaussian_map_is_eq7(sigma):
    """Rising in the conv output x∗f: exp(x∗f / (2σc²)) (docs/DESIGN.md: the sign)."""
    y = _features()
    got = KernelMap("gaussian", sigma_init=sigma, standardize=False)(y).numpy()
    z = y.astype("float64") / (2 * sigma ** 2)
    np.testing.assert_allclose(got, _capped(z, 10.0), rtol=1e-5)
    # The cap changes exp(z) by a relative exp(z - m) only.
    np.testing.assert_allclose(got, np.exp(z), rtol=np.exp(z.max() - 10.0) * 1.01 + 1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 4.0])
def test_laplace_map_is_eq8_on_adder_outputs(sigma):
    y = -np.abs(_features())  # adder outputs are -‖x − f‖₁ ≤ 0
    got = KernelMap("laplace", sigma_init=sigma, standardize=False)(y).numpy()
    z = y.astype("float64") / sigma
    np.testing.assert_allclose(got, _capped(z, 10.0), rtol=1e-5)
    np.testing.assert_allclose(got, np.exp(z), rtol=np.exp(-10.0) * 1.01)
    assert np.all((got > 0) & (got <= 1))


@pytest.mark.parametrize("direction", ["rising", "falling"])
@pytest.mark.parametrize("sigma_c", [0.5, 1.0, 2.0])
def test_matched_bandwidths_give_identical_maps(direction, sigma_c):
    """σa = 2σc²: the same standardized outputs give the same Gaussian-alike and Laplace maps."""
    y = _features((4, 5, 5, 3), seed=3)
    h = KernelMap("gaussian", sigma_init=sigma_c, direction=direction)(y).numpy()
    g = KernelMap("laplace", sigma_init=2 * sigma_c ** 2, direction=direction)(y).numpy()
    np.testing.assert_allclose(g, h, rtol=1e-5)
    standardized = (y - y.mean(axis=(0, 1, 2))) / y.std(axis=(0, 1, 2))
    sign = 1.0 if direction == "rising" else -1.0
    np.testing.assert_allclose(h, _capped(sign * standardized / (2 * sigma_c ** 2), 10.0),
                               rtol=1e-3)


@pytest.mark.parametrize("direction", ["rising", "falling"])
def test_both_maps_move_the_same_way_as_their_outputs(direction):
    y = np.linspace(-3, 3, 13, dtype="float32").reshape(1, 1, 13, 1)
    for kind in ("gaussian", "laplace"):
        out = KernelMap(kind, standardize=False, direction=direction)(y).numpy().ravel()
        steps = np.diff(out)
        assert np.all(steps > 0) if direction == "rising" else np.all(steps < 0), (kind, out)


def test_identity_map_has_no_sigma_and_passes_through():
    layer = KernelMap("identity", standardize=False)
    y = _features()
    np.testing.assert_array_equal(layer(y), y)
    assert layer.weights == [] and layer.sigma is None


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "identity"])
def test_standardized_maps_ignore_the_feature_scale_and_offset(kind):
    """Per-channel batch standardization: a raw output's drift in scale or offset
    (BN follows it, so it is free to drift) leaves the map unchanged."""
    y = _features((4, 5, 5, 3))
    layer = KernelMap(kind)
    drifted = y * np.array([30.0, 0.01, 7.0], "float32") - np.array([600.0, -2.0, 0.0], "float32")
    np.testing.assert_allclose(layer(drifted), layer(y), rtol=2e-4, atol=1e-4)
    standardized = (y - y.mean(axis=(0, 1, 2))) / y.std(axis=(0, 1, 2))
    expected = {"gaussian": np.exp(standardized / 2), "laplace": np.exp(standardized),
                "identity": standardized}[kind]
    np.testing.assert_allclose(layer(y), expected, rtol=1e-3, atol=1e-5)


def test_standardization_is_constant_in_the_gradient():
    y = tf.constant(_features((2, 3, 3, 2)))
    layer = KernelMap("identity")
    with tf.GradientTape() as tape:
        tape.watch(y)
        out = tf.reduce_sum(layer(y))
    grad = tape.gradient(out, y).numpy()
    np.testing.assert_allclose(grad, np.broadcast_to(1 / y.numpy().std(axis=(0, 1, 2)), grad.shape),
                               rtol=1e-4)


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_sigma_is_learnable(kind):
    layer = KernelMap(kind, sigma_init=2.0)
    y = -np.abs(_features())
    layer.build(y.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(layer(y))
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    assert np.isfinite(grad) and grad != 0
    np.testing.assert_allclose(layer.sigma, 2.0, rtol=1e-6)


def test_sigma_stays_positive_and_bounded():
    layer = KernelMap("gaussian")
    layer.build((1,))
    for log_sigma, expected in ((-500.0, 1e-4), (500.0, 1e4)):
        layer.log_sigma.assign(log_sigma)
        np.testing.assert_allclose(layer.sigma, expected, rtol=1e-5)


EXTREMES = np.array([0.0, 1.0, -1.0, 1e30, -1e30, 3.4e38, -3.4e38, np.inf, -np.inf],
                    "float32").reshape(1, 1, 9, 1)


@pytest.mark.parametrize("log_sigma", [math.log(1e-4), 0.0, math.log(1e4), -80.0, 80.0])
@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_extreme_inputs_give_finite_values_and_gradients(kind, log_sigma):
    head = KernelHead(kind)
    head.build(EXTREMES.shape)
    head.map.log_sigma.assign(log_sigma)
    y = tf.constant(EXTREMES)
    with tf.GradientTape() as tape:
        tape.watch(y)
        out = head(y)
        loss = tf.reduce_sum(tf.square(out - 1.0))
    grads = tape.gradient(loss, [y] + head.trainable_weights)
    assert np.all(np.isfinite(out))
    assert np.all(out >= 0) and np.all(out <= math.exp(10.0) * 1.0001)
    for g in grads:
        assert np.all(np.isfinite(g)), g


def test_head_rho_starts_as_identity_and_learns():
    y = _features()
    head = KernelHead("laplace", sigma_init=1.0)
    np.testing.assert_allclose(head(y), head.map(y), rtol=1e-6)
    np.testing.assert_allclose(head.rho_norm, math.sqrt(3), rtol=1e-6)
    names = sorted(w.path for w in head.trainable_weights)
    assert len(names) == 2 and any("log_sigma" in n for n in names)


def test_rho_constraint_keeps_unit_columns_under_updates():
    head = KernelHead("identity", rho_constraint=keras.constraints.UnitNorm(axis=0))
    y = _features()
    head.build(y.shape)
    optimizer = keras.optimizers.SGD(1.0)
    for _ in range(3):  # a loss that pulls ρ toward 0
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(head(y)))
        optimizer.apply(tape.gradient(loss, head.trainable_weights), head.trainable_weights)
    np.testing.assert_allclose(np.linalg.norm(head.rho_layer.kernel.numpy(), axis=0), 1.0,
                               rtol=1e-5)
    assert KernelHead.from_config(head.get_config()).rho_constraint is not None


def test_head_without_rho_is_the_map():
    head = KernelHead("gaussian", rho=False)
    y = _features()
    np.testing.assert_allclose(head(y), KernelMap("gaussian")(y), rtol=1e-6)
    assert head.rho_norm is None and len(head.trainable_weights) == 1


def test_head_rho_filters_changes_channels():
    head = KernelHead("identity", rho_filters=5, rho_initializer="glorot_uniform")
    assert head(_features()).shape == (2, 4, 4, 5)
    assert head.compute_output_shape((2, 4, 4, 3)) == (2, 4, 4, 5)


def test_head_config_and_save_round_trip(tmp_path):
    head = KernelHead("gaussian", sigma_init=0.7, standardize=False, max_exponent=6.0,
                      rho_filters=4, name="h")
    clone = KernelHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, head(inputs))
    model.get_layer("h").map.log_sigma.assign(0.3)
    y = _features()
    path = str(tmp_path / "head.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(y), model(y), rtol=0, atol=0)
    np.testing.assert_allclose(loaded.get_layer("h").sigma, math.exp(0.3), rtol=1e-6)


BAD_MAPS = [
    ({"kind": "cosine"}, r"`kind`.*cosine"),
    ({"sigma_init": 0.0}, r"`sigma_init`.*0\.0"),
    ({"sigma_init": 1e9}, r"`sigma_init`.*1000000000"),
    ({"sigma_init": float("inf")}, r"`sigma_init`.*inf"),
    ({"standardize": 1}, r"`standardize`.*1"),
    ({"max_exponent": 0}, r"`max_exponent`.*0"),
    ({"direction": "up"}, r"`direction`.*up"),
]


@pytest.mark.parametrize("kwargs,message", BAD_MAPS, ids=[str(a[0]) for a in BAD_MAPS])
def test_bad_map_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KernelMap(**kwargs)


def test_bad_head_arguments():
    with pytest.raises(ValueError, match=r"`rho`.*yes"):
        KernelHead(rho="yes")
    with pytest.raises(ValueError, match=r"`rho_filters`.*0"):
        KernelHead(rho_filters=0)


def test_factory_picks_kernel_by_network():
    taps = [Tap(0, fan_in=144), Tap(1, fan_in=576)]
    ann = kernel_heads_for_taps(taps, "ann", sigma_init=0.5)
    cnn = kernel_heads_for_taps(taps, "cnn", sigma_init=2.0, rho=False, standardize=False)
    plain = kernel_heads_for_taps(taps, "ann", kernel=False)
    assert [h.map.kind for h in ann] == ["laplace", "laplace"]
    assert [h.map.sigma_init for h in ann] == [0.5, 0.5] and ann[0].map.standardize
    assert [h.map.kind for h in cnn] == ["gaussian", "gaussian"]
    assert not cnn[0].map.standardize and not any(h.rho for h in cnn)
    assert [h.map.kind for h in plain] == ["identity", "identity"]
    assert [h.name for h in ann] == ["ann_head_0", "ann_head_1"]
    with pytest.raises(ValueError, match=r"`network`.*bnn"):
        kernel_heads_for_taps(taps, "bnn")


HARNESS_CASES = [
    ("map_gaussian", KernelMap, {"kind": "gaussian", "sigma_init": 0.7}, 1, (2, 4, 4, 3)),
    ("map_laplace_falling", KernelMap, {"kind": "laplace", "standardize": False,
                                        "direction": "falling", "max_exponent": 6.0},
     1, (2, 4, 4, 3)),
    ("head_rho", KernelHead, {"kind": "laplace", "sigma_init": 0.5}, 2, (2, 4, 4, 3)),
    ("head_rho_filters", KernelHead, {"kind": "gaussian", "rho_filters": 5,
                                      "rho_initializer": "glorot_uniform",
                                      "rho_constraint": keras.constraints.UnitNorm(axis=0)},
     2, (2, 4, 4, 5)),
    ("head_no_rho", KernelHead, {"kind": "laplace", "rho": False}, 1, (2, 4, 4, 3)),
    ("head_identity", KernelHead, {"kind": "identity", "rho": False}, 0, (2, 4, 4, 3)),
    ("tap", Tap, {"index": 3, "kind": "block", "fan_in": 27}, 0, (2, 4, 4, 3)),
]


@pytest.mark.parametrize("cls,kwargs,trainable,output_shape", [c[1:] for c in HARNESS_CASES],
                         ids=[c[0] for c in HARNESS_CASES])
def test_layer_harness(cls, kwargs, trainable, output_shape):
    run_layer_test(cls, kwargs, (2, 4, 4, 3), output_shape, expected_trainable=trainable)


# --- Tap ---------------------------------------------------------------------

def test_tap_is_identity_and_serializes():
    tap = Tap(3, kind="block", name="t")
    y = _features()
    np.testing.assert_array_equal(tap(y), y)
    clone = Tap.from_config(tap.get_config())
    assert (clone.index, clone.kind, clone.fan_in) == (3, "block", None)


@pytest.mark.parametrize("kwargs,message", [
    ({"index": -1}, r"`index`.*-1"),
    ({"index": 0, "kind": "stage"}, r"`kind`.*stage"),
    ({"index": 0, "fan_in": 0}, r"`fan_in`.*0"),
])
def test_tap_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tap(**kwargs)


_MIRRORED_MAP = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from addernet_tf.layers import KernelMap
x = np.random.default_rng(0).normal(size=(8, 3, 3, 2)).astype("float32")
x[:4] += 5.0  # the two replicas' halves have different statistics
expected = KernelMap("laplace")(x).numpy()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    layer = KernelMap("laplace")
    layer.build(x.shape)
dataset = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices(x).batch(8))
out = strategy.run(tf.function(layer), args=(next(iter(dataset)),))
got = np.concatenate([t.numpy() for t in strategy.experimental_local_results(out)])
np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_standardization_uses_the_global_batch_under_mirrored_strategy():
    import os
    import subprocess
    import sys
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _MIRRORED_MAP], capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
