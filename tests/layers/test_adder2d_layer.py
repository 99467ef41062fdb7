# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`Adder2D`: output, shapes, config and saving, adaptive gradient, bad arguments."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers.layer_harness import run_layer_test
from addernet_tf.layers import Adder2D
from addernet_tf.ops import adder_conv2d_builtin


def _images(shape=(2, 9, 9, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# (id, layer kwargs, equivalent op padding)
PADDINGS = [
    ("valid", {"padding": "valid"}, "VALID"),
    ("same", {"padding": "same"}, "SAME"),
    ("int", {"padding": 1}, [[0, 0], [1, 1], [1, 1], [0, 0]]),
    ("pair", {"padding": (2, 0)}, [[0, 0], [2, 2], [0, 0], [0, 0]]),
]


@pytest.mark.parametrize("strides", [1, 2, (2, 1)])
@pytest.mark.parametrize("pid,kwargs,op_padding", PADDINGS, ids=[p[0] for p in PADDINGS])
def test_output_is_the_adder_convolution(pid, kwargs, op_padding, strides):
    x = _images()
    layer = Adder2D(4, 3, strides=strides, **kwargs)
    y = layer(x)
    expected = adder_conv2d_builtin(x, layer.kernel, strides=strides, padding=op_padding)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-4)
    assert tuple(y.shape) == layer.compute_output_shape(x.shape)


def test_symbolic_shape_matches_eager_shape():
    inputs = keras.Input((None, 10, 3))
    outputs = Adder2D(5, (3, 2), strides=(2, 3), padding=1)(inputs)
    assert tuple(outputs.shape) == (None, None, 4, 5)
    model = keras.Model(inputs, outputs)
    assert model(_images((1, 7, 10, 3))).shape == (1, 4, 4, 5)


def test_channels_first_matches_channels_last():
    x = _images((2, 8, 8, 3))
    last = Adder2D(4, 3, strides=2, padding=1)
    first = Adder2D(4, 3, strides=2, padding=1, data_format="channels_first")
    last.build(x.shape)
    first.build((2, 3, 8, 8))
    first.kernel.assign(last.kernel)
    y_first = first(np.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.transpose(y_first, (0, 2, 3, 1)), last(x), rtol=1e-6)
    assert first.compute_output_shape((2, 3, 8, 8)) == (2, 4, 4, 4)


def test_kernel_shape_init_and_no_bias_match_conv2d():
    layer = Adder2D(8, 3)
    layer.build((None, 16, 16, 4))
    conv = keras.layers.Conv2D(8, 3, use_bias=False)
    conv.build((None, 16, 16, 4))
    assert [w.shape for w in layer.weights] == [w.shape for w in conv.weights]
    kernel = np.asarray(layer.kernel)
    assert abs(kernel.mean()) < 0.2 and 0.85 < kernel.std() < 1.15  # AdderNet: N(0, 1)


def test_reference_implementation_matches_auto():
    x = _images()
    auto = Adder2D(4, 3, padding=1)
    ref = Adder2D(4, 3, padding=1, implementation="builtin")
    auto.build(x.shape)
    ref.build(x.shape)
    ref.kernel.assign(auto.kernel)
    np.testing.assert_allclose(ref(x), auto(x), rtol=1e-5)


def test_eager_and_tf_function_agree():
    layer = Adder2D(3, 3, padding="same")
    x = _images()
    np.testing.assert_allclose(tf.function(layer)(x), layer(x), rtol=1e-6)


@pytest.mark.parametrize("policy,dtype", [("float64", "float64"), ("mixed_bfloat16", "bfloat16")])
def test_dtype_policies(policy, dtype):
    layer = Adder2D(2, 3, dtype=policy)
    y = layer(_images())
    assert y.dtype == dtype
    assert np.all(np.isfinite(np.asarray(tf.cast(y, tf.float32))))


# --- the adaptive gradient --------------------------------------------------

def _kernel_grad(layer, x, upstream):
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    return tape.gradient(loss, layer.kernel)


def _raw_filter_grad(kernel, x, upstream, **kwargs):
    k = tf.convert_to_tensor(kernel)
    with tf.GradientTape() as tape:
        tape.watch(k)
        loss = tf.reduce_sum(adder_conv2d_builtin(x, k, **kwargs) * upstream)
    return tape.gradient(loss, k).numpy()


@pytest.mark.parametrize("eta", [0.2, 1.5])
def test_adaptive_gradient_is_eta_sqrt_k_times_unit_dF(eta):
    x = _images()
    layer = Adder2D(4, 3, strides=2, padding=1, adaptive_eta=eta)
    layer.build(x.shape)
    upstream = _images((2, 5, 5, 4), seed=1)
    got = _kernel_grad(layer, x, upstream).numpy()
    raw = _raw_filter_grad(layer.kernel, x, upstream, strides=2,
                           padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    k = 3 * 3 * 3 * 4
    np.testing.assert_allclose(got, eta * np.sqrt(k) * raw / np.linalg.norm(raw), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got), eta * np.sqrt(k), rtol=1e-5)


def test_adaptive_eta_none_leaves_full_precision_dF():
    x = _images()
    layer = Adder2D(4, 3, adaptive_eta=None)
    layer.build(x.shape)
    upstream = _images((2, 7, 7, 4), seed=2) * 1e-3
    got = _kernel_grad(layer, x, upstream).numpy()
    np.testing.assert_allclose(got, _raw_filter_grad(layer.kernel, x, upstream), rtol=1e-5,
                               atol=1e-8)


@pytest.mark.parametrize("scale", [0.0, 1e-30, 1e30])
def test_adaptive_gradient_is_finite_for_zero_tiny_and_huge_dF(scale):
    x = _images()
    layer = Adder2D(4, 3)
    layer.build(x.shape)
    got = _kernel_grad(layer, x, np.full((2, 7, 7, 4), scale, "float32")).numpy()
    assert np.all(np.isfinite(got))
    norm = np.linalg.norm(got)
    if scale == 1e30:
        np.testing.assert_allclose(norm, 0.2 * np.sqrt(108), rtol=1e-4)
    else:  # ‖dF‖ below the 1e-12 floor is scaled, not normalized (as in AdderNet)
        assert norm < 1e-10


def test_optimizer_applies_the_adaptive_gradient():
    x = _images()
    inputs = keras.Input(x.shape[1:])
    outputs = keras.layers.GlobalAveragePooling2D()(Adder2D(4, 3, name="adder")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    target = np.zeros((2, 4), "float32")
    before = model.get_layer("adder").kernel.numpy()
    model.train_on_batch(x, target)
    step = model.get_layer("adder").kernel.numpy() - before
    # SGD moves the kernel by lr · 0.2 · sqrt(k) in norm, whatever the loss scale.
    np.testing.assert_allclose(np.linalg.norm(step), 0.5 * 0.2 * np.sqrt(108), rtol=1e-4)


_MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from addernet_tf.layers import Adder2D

    def build():
        keras.utils.set_random_seed(3)
        inputs = keras.Input((6, 6, 2))
        y = Adder2D(3, 3, name="adder")(inputs)
        outputs = keras.layers.Dense(4, name="head")(keras.layers.Flatten()(y))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 6, 2)).astype("float32")
    y = rng.integers(0, 4, size=8)
    steps = {}
    for name, strategy in (("single", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        with strategy.scope():
            model = build()
        before = model.get_layer("adder").kernel.numpy()
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        steps[name] = (model.get_layer("adder").kernel.numpy() - before).ravel().tolist()
        if name == "mirrored":
            steps["replicas"] = strategy.num_replicas_in_sync
    print(json.dumps(steps))
""")


def test_mirrored_strategy_applies_the_global_adaptive_gradient():
    """Two replicas step the kernel exactly as one device does on the whole batch."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json
    steps = json.loads(result.stdout.strip().splitlines()[-1])
    assert steps["replicas"] == 2
    single, mirrored = np.array(steps["single"]), np.array(steps["mirrored"])
    np.testing.assert_allclose(np.linalg.norm(single), 0.1 * 0.2 * np.sqrt(54), rtol=1e-5)
    np.testing.assert_allclose(mirrored, single, rtol=1e-4, atol=1e-6)


# --- serialization ----------------------------------------------------------

LAYER_CASES = [
    ("valid", {"filters": 4, "kernel_size": 3}, (2, 7, 7, 3), (2, 5, 5, 4)),
    ("same_strided", {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same"},
     (2, 7, 7, 3), (2, 4, 4, 5)),
    ("explicit_pad_rect", {"filters": 6, "kernel_size": (3, 1), "strides": (2, 1),
                           "padding": (1, 0), "adaptive_eta": None}, (2, 7, 6, 3), (2, 4, 6, 6)),
    ("builtin_regularized", {"filters": 3, "kernel_size": 1, "implementation": "builtin",
                             "kernel_regularizer": keras.regularizers.L2(1e-4),
                             "kernel_constraint": keras.constraints.MaxNorm(2.0)},
     (2, 5, 5, 2), (2, 5, 5, 3)),
    ("channels_first", {"filters": 4, "kernel_size": 3, "padding": 1,
                        "data_format": "channels_first"}, (2, 3, 6, 6), (2, 4, 6, 6)),
]


@pytest.mark.parametrize("kwargs,input_shape,output_shape", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_layer_harness(kwargs, input_shape, output_shape):
    y = run_layer_test(Adder2D, kwargs, input_shape, output_shape, expected_trainable=1)
    assert (y <= 0).all()  # -Σ|x - f|

def test_get_config_round_trip():
    layer = Adder2D(6, (3, 1), strides=(2, 1), padding=(1, 0), adaptive_eta=None,
                    data_format="channels_last", implementation="builtin",
                    kernel_regularizer=keras.regularizers.L2(1e-4), name="a")
    clone = Adder2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.filters, clone.kernel_size, clone.strides, clone.padding) == (6, (3, 1), (2, 1), (1, 0))
    assert clone.adaptive_eta is None and clone.implementation == "builtin"


def _functional():
    inputs = keras.Input((9, 9, 3))
    x = Adder2D(4, 3, padding=1)(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, Adder2D(2, 3, strides=2, padding="same")(x))


def _sequential():
    return keras.Sequential([keras.Input((9, 9, 3)), Adder2D(4, 3, padding=1),
                             keras.layers.ReLU(), Adder2D(2, 1)])


@keras.saving.register_keras_serializable(package="addernet_tf_tests")
class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = Adder2D(4, 3, padding=1)
        self.second = Adder2D(2, 3, strides=2, padding=1)

    def call(self, x):
        return self.second(tf.nn.relu(self.first(x)))


@pytest.mark.parametrize("make", [_functional, _sequential, _Subclassed],
                         ids=["functional", "sequential", "subclassed"])
def test_model_save_and_load_give_equal_outputs(make, tmp_path):
    model = make()
    x = _images()
    expected = model(x)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x), expected, rtol=0, atol=0)
    adders = [l for l in loaded._flatten_layers() if isinstance(l, Adder2D)]
    assert len(adders) == 2


def test_trains_in_fit():
    x = _images((16, 9, 9, 3))
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
    model = keras.Sequential([keras.Input((9, 9, 3)), Adder2D(8, 3, padding=1),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


# --- bad arguments ----------------------------------------------------------

BAD_ARGS = [
    ({"filters": 0}, r"`filters`.*0"),
    ({"filters": 2.5}, r"`filters`.*2\.5"),
    ({"kernel_size": (3, 3, 3)}, r"`kernel_size`.*\(3, 3, 3\)"),
    ({"kernel_size": 0}, r"`kernel_size`.*0"),
    ({"strides": -1}, r"`strides`.*-1"),
    ({"padding": "full"}, r"`padding`.*full"),
    ({"padding": -1}, r"`padding`.*-1"),
    ({"padding": (1, 2, 3)}, r"`padding`.*\(1, 2, 3\)"),
    ({"adaptive_eta": 0.0}, r"`adaptive_eta`.*0\.0"),
    ({"adaptive_eta": float("nan")}, r"`adaptive_eta`.*nan"),
    ({"data_format": "NHWC"}, r"`data_format`.*NHWC"),
    ({"implementation": "cuda"}, r"`implementation`.*cuda"),
]


@pytest.mark.parametrize("kwargs,message", BAD_ARGS, ids=[str(a[0]) for a in BAD_ARGS])
def test_bad_arguments_name_the_argument_and_value(kwargs, message):
    args = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        Adder2D(**args)


def test_unknown_channels_and_wrong_rank_are_rejected():
    with pytest.raises(ValueError, match="input channels"):
        Adder2D(2, 3).build((None, 8, 8, None))
    with pytest.raises(ValueError):
        Adder2D(2, 3)(np.zeros((8, 8, 3), "float32"))


def test_saved_model_file_loads_after_importing_only_the_package(tmp_path):
    path = str(tmp_path / "model.keras")
    model = _sequential()
    x = _images()
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model(x)))
    script = textwrap.dedent(f"""
        import keras, numpy as np
        import addernet_tf
        model = keras.models.load_model({path!r})
        y = model(np.load({str(tmp_path / 'x.npy')!r}))
        np.testing.assert_array_equal(y, np.load({str(tmp_path / 'y.npy')!r}))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
