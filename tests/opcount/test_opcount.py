# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`addernet_tf.opcount`: exact counts on hand-built models, the paper's figures, the CLI."""

import functools
import importlib
import json
import os
import re
import subprocess
import sys

import keras
import pytest
from absl import flags

from addernet_tf import cli, models, opcount
from addernet_tf.layers import Adder2D, Tap
from addernet_tf.opcount import ENERGY_PJ, OTHER_KEYS, count_ops, energy_pj

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tiny_model():
    """6×6×2 → Conv2D 3×3 "same" (3) → BN → ReLU → Tap → Adder2D 3×3, s2, p1 (4) → GAP → fc (5)."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = Tap(0, name="tap")(x)
    x = Adder2D(4, 3, strides=2, padding=1, name="adder")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, name="fc")(x)
    return keras.Model(inputs, x)


def test_tiny_model_exact_counts():
    result = count_ops(_tiny_model())
    conv_macs = (6 * 6 * 3) * (3 * 3 * 2)   # 108 outputs × 18 = 1944
    adder_macs = (3 * 3 * 4) * (3 * 3 * 3)  # 36 outputs × 27 = 972
    fc_macs = 4 * 5
    assert result.mult_macs == conv_macs + fc_macs == 1964
    assert result.adder_macs == adder_macs == 972
    assert result.mul == 1964
    assert result.add == 1964 + 2 * 972 == 3908
    # conv 3·3·2·3, BN 4·3 (γ, β trainable; moving mean, variance not), adder 3·3·3·4,
    # fc 4·5 + 5.
    assert result.params == 54 + 12 + 108 + 25 == 199
    assert result.trainable_params == 54 + 6 + 108 + 25 == 193
    conv_out = 6 * 6 * 3  # BN and ReLU elements
    assert result.other == {
        "bn_mul": conv_out, "bn_add": conv_out, "affine_mul": 0, "affine_add": 0, "bias_add": 5,
        "elementwise_add": 0, "elementwise_mul": 0, "compare": 0,
        "pool_add": (3 * 3 - 1) * 4, "pool_mul": 4, "activation": conv_out}
    assert result.uncounted == ()
    rows = {r.name: r for r in result.layers}
    assert (rows["adder"].kind, rows["adder"].macs, rows["adder"].mul, rows["adder"].add,
            rows["adder"].output_shape) == ("adder", 972, 0, 1944, (3, 3, 4))
    assert (rows["conv"].kind, rows["conv"].mul, rows["conv"].add) == ("mult", 1944, 1944)
    assert rows["tap"].kind == "none"
    assert [r.name for r in result.layers] == ["conv", "bn", "relu", "tap", "adder", "gap", "fc"]


@pytest.mark.parametrize("layer, input_shape, macs", [
    (keras.layers.Conv2D(8, 3, groups=2, use_bias=False), (5, 5, 4), 3 * 3 * 8 * (3 * 3 * 2)),
    (keras.layers.Conv2D(2, (1, 3), strides=2, use_bias=False), (6, 7, 3), 3 * 3 * 2 * 3 * 3),
    (keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False), (5, 5, 4),
     3 * 3 * 8 * 9),
    (keras.layers.SeparableConv2D(6, 3, depth_multiplier=2, use_bias=False), (5, 5, 4),
     3 * 3 * (8 * 9 + 8 * 6)),
    (keras.layers.Conv1D(4, 3, use_bias=False), (10, 2), 8 * 4 * 6),
    (keras.layers.Dense(3, use_bias=False), (7, 5), 7 * 3 * 5),
    (Adder2D(5, 2, padding="same"), (4, 4, 3), 4 * 4 * 5 * 12),
], ids=["grouped_conv", "strided_1x3_conv", "depthwise", "separable", "conv1d", "dense_3d",
        "adder_same"])
def test_layer_macs(layer, input_shape, macs):
    inputs = keras.Input(input_shape)
    result = count_ops(keras.Model(inputs, layer(inputs)))
    if isinstance(layer, Adder2D):
        assert (result.adder_macs, result.mul, result.add) == (macs, 0, 2 * macs)
    else:
        assert (result.mult_macs, result.mul, result.add) == (macs, macs, macs)


@pytest.mark.parametrize("layer, input_shape, other", [
    (keras.layers.MaxPooling2D(2), (4, 4, 3), {"compare": 3 * 12}),
    (keras.layers.AveragePooling2D(3, strides=1), (5, 5, 2), {"pool_add": 8 * 18, "pool_mul": 18}),
    (keras.layers.GlobalMaxPooling2D(), (3, 3, 2), {"compare": 8 * 2}),
    (keras.layers.Rescaling(0.5, offset=1.0), (2, 2, 3), {"affine_mul": 12, "affine_add": 12}),
    (keras.layers.Activation("sigmoid"), (2, 3), {"activation": 6}),
    (keras.layers.Dense(3, activation="relu"), (4,), {"bias_add": 3, "activation": 3}),
], ids=["max_pool", "avg_pool", "global_max_pool", "rescaling", "sigmoid", "dense_bias_relu"])
def test_other_counts(layer, input_shape, other):
    inputs = keras.Input(input_shape)
    result = count_ops(keras.Model(inputs, layer(inputs)))
    assert result.other == {key: other.get(key, 0) for key in OTHER_KEYS}


def test_merges_ops_shared_layers_and_nested_models():
    inner_in = keras.Input((4, 4, 2))
    inner = keras.Model(inner_in, Adder2D(3, 1, name="adder")(inner_in), name="inner")
    inputs = keras.Input((4, 4, 2))
    shared = keras.layers.Conv2D(3, 1, use_bias=False, name="shared")
    a, b = shared(inputs), shared(keras.layers.ReLU()(inputs))
    x = keras.layers.Add()([a, b, inner(inputs)])  # 2 additions per element
    x = x * a                                      # a non-layer operation
    result = count_ops(keras.Model(inputs, x))
    assert result.mult_macs == 2 * 16 * 3 * 2   # the shared layer, counted per call
    assert result.adder_macs == 16 * 3 * 2
    assert result.params == 6 + 6               # ... but its weights once
    assert result.other["elementwise_add"] == 2 * 48
    assert result.other["elementwise_mul"] == 48
    assert result.other["activation"] == 32
    assert "inner/adder" in [r.name for r in result.layers]


def test_sequential_model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, use_bias=False),
                              keras.layers.Dense(2, use_bias=False)])
    assert count_ops(model).mul == 6 * 4 + 4 * 2


def test_unknown_layer_with_weights_raises():
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, Scale(name="my_scale")(inputs))
    with pytest.raises(ValueError, match=r"'my_scale'.*Scale"):
        count_ops(model)


def test_weightless_layer_without_rule_is_listed():
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, keras.layers.UpSampling2D(name="up")(inputs))
    result = count_ops(model)
    assert result.uncounted == ("up",)
    assert (result.mul, result.add) == (0, 0)


def test_undefined_shape_and_subclassed_model_raise():
    inputs = keras.Input((None, None, 3))
    with pytest.raises(ValueError, match="fully defined"):
        count_ops(keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)))

    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional or Sequential"):
        count_ops(Net())


def test_energy_arithmetic():
    assert energy_pj(1000, 2000) == pytest.approx(
        {"fp32": 3700 + 1800, "fp16": 1100 + 800, "int32": 3100 + 200, "int8": 200 + 60})
    result = count_ops(_tiny_model())
    for precision, (e_mul, e_add) in ENERGY_PJ.items():
        assert result.energy_pj[precision] == pytest.approx(
            result.mul * e_mul + result.add * e_add)


def test_import_defines_no_flags():
    # The trainer imports `count_ops` and defines its own --model: executing the
    # module again (what an import does) must add no flag.
    before = set(flags.FLAGS)
    importlib.reload(opcount)
    assert set(flags.FLAGS) - before == set()


# --- The models package against the paper ------------------------------------

_NUM_CLASSES = {"resnet20": 10, "resnet32": 10, "resnet56": 10, "vgg_small": 10,
                "resnet18": 1000, "resnet50": 1000}


@functools.lru_cache(maxsize=None)
def _model_count(name, network):
    return count_ops(models.get_model(name, num_classes=_NUM_CLASSES[name], network=network))


@pytest.mark.parametrize("name, network, field, paper, tolerance", [
    ("resnet20", "cnn", "mul", 41.17e6, 0.02),
    ("resnet20", "ann", "add", 81.89e6, 0.02),
    ("resnet20", "ann", "mul", 0.45e6, 0.02),
    ("resnet32", "cnn", "mul", 69.12e6, 0.02),
    ("resnet32", "ann", "add", 137.79e6, 0.02),
    ("resnet18", "ann", "add", 3.5e9, 0.03),
    ("resnet50", "ann", "add", 7.6e9, 0.03),
])
def test_paper_counts(name, network, field, paper, tolerance):
    assert getattr(_model_count(name, network), field) == pytest.approx(paper, rel=tolerance)


# --- Exact counts, written out from the architectures (not from the code) ------
#
# Each network as (stem, body, classifier): `stem` and `body` list its
# convolutions as (out_h, out_w, kh, kw, c_in, c_out), one MAC per
# out_h·out_w·kh·kw·c_in·c_out; the stem stays a multiplication in the ANN, the
# body becomes adder layers; the classifier is a Dense (fc_in, num_classes).
# Spatial sizes: a 3×3 pad-1 layer keeps the size, stride 2 halves it (even
# sizes); ImageNet: 7×7/2 pad 3 stem 224 → 112, max pool 3×3/2 pad 1 → 56.


def _cifar_resnet(n, num_classes=10, size=32):
    """ResNet-(6n+2) for CIFAR: stem 3→16, stages of n basic blocks at 16/32/64 filters."""
    s1, s2, s3 = size, size // 2, size // 4
    stem = [(s1, s1, 3, 3, 3, 16)]
    body = (
        # stage 1: n blocks of two 3×3 16→16, identity shortcuts
        [(s1, s1, 3, 3, 16, 16)] * (2 * n)
        # stage 2: first block 3×3/2 16→32, 3×3 32→32 and a 1×1/2 16→32 shortcut;
        # then n − 1 blocks of two 3×3 32→32
        + [(s2, s2, 3, 3, 16, 32), (s2, s2, 1, 1, 16, 32)] + [(s2, s2, 3, 3, 32, 32)] * (2 * n - 1)
        # stage 3: the same at 64 filters
        + [(s3, s3, 3, 3, 32, 64), (s3, s3, 1, 1, 32, 64)] + [(s3, s3, 3, 3, 64, 64)] * (2 * n - 1))
    return stem, body, (64, num_classes)


def _vgg_small(num_classes=10):
    """Stem 3×3 3→128 at 32; 3×3 layers 128@32 → pool, 256@16, 256@16 → pool, 512@8,
    512@8 → pool; classifier on 4·4·512."""
    stem = [(32, 32, 3, 3, 3, 128)]
    body = [(32, 32, 3, 3, 128, 128), (16, 16, 3, 3, 128, 256), (16, 16, 3, 3, 256, 256),
            (8, 8, 3, 3, 256, 512), (8, 8, 3, 3, 512, 512)]
    return stem, body, (4 * 4 * 512, num_classes)


def _resnet18(num_classes=1000):
    stem = [(112, 112, 7, 7, 3, 64)]
    body = [(56, 56, 3, 3, 64, 64)] * 4
    for size, c_in, c in ((28, 64, 128), (14, 128, 256), (7, 256, 512)):
        # block 1: 3×3/2 c_in→c, 3×3 c→c, 1×1/2 shortcut; block 2: two 3×3 c→c
        body += [(size, size, 3, 3, c_in, c), (size, size, 1, 1, c_in, c)]
        body += [(size, size, 3, 3, c, c)] * 3
    return stem, body, (512, num_classes)


def _resnet50(num_classes=1000):
    """Bottlenecks 1×1 → 3×3 → 1×1 (×4), the stride in the first 1×1 (v1)."""
    stem = [(112, 112, 7, 7, 3, 64)]
    body = []
    for size, c_in, f, blocks in ((56, 64, 64, 3), (28, 256, 128, 4), (14, 512, 256, 6),
                                  (7, 1024, 512, 3)):
        # block 1: 1×1(/2) c_in→f, 3×3 f→f, 1×1 f→4f, 1×1(/2) shortcut c_in→4f
        body += [(size, size, 1, 1, c_in, f), (size, size, 3, 3, f, f),
                 (size, size, 1, 1, f, 4 * f), (size, size, 1, 1, c_in, 4 * f)]
        # blocks 2..: 1×1 4f→f, 3×3 f→f, 1×1 f→4f, identity shortcut
        body += [(size, size, 1, 1, 4 * f, f), (size, size, 3, 3, f, f),
                 (size, size, 1, 1, f, 4 * f)] * (blocks - 1)
    return stem, body, (2048, num_classes)


_ARCHITECTURES = {"resnet20": functools.partial(_cifar_resnet, 3),
                  "resnet32": functools.partial(_cifar_resnet, 5),
                  "vgg_small": _vgg_small, "resnet18": _resnet18, "resnet50": _resnet50}


def _macs(layers):
    return sum(oh * ow * kh * kw * c_in * c_out for oh, ow, kh, kw, c_in, c_out in layers)


def _expected(name, network, num_classes=None):
    """(mul, add, params, trainable_params) from the written-out architecture.

    Every conv/adder layer and the classifier is followed by one BN (γ, β
    trainable; moving mean and variance not); there are no biases.
    """
    stem, body, (fc_in, classes) = _ARCHITECTURES[name](
        num_classes or _NUM_CLASSES[name])
    mult = _macs(stem) + fc_in * classes
    adder = _macs(body)
    if network == "cnn":
        mult, adder = mult + adder, 0
    weights = sum(kh * kw * c_in * c_out for _, _, kh, kw, c_in, c_out in stem + body)
    weights += fc_in * classes
    bn_channels = sum(layer[-1] for layer in stem + body) + classes
    return mult, 2 * adder + mult, weights + 4 * bn_channels, weights + 2 * bn_channels


def test_written_out_architectures_match_hand_sums():
    # The tables above, against sums done by hand for ResNet-20 (32×32, 10 classes):
    # stem 32²·27·16; stage 1 six 32²·9·16·16; stage 2 16²·9·16·32 + 16²·16·32 +
    # five 16²·9·32·32; stage 3 8²·9·32·64 + 8²·32·64 + five 8²·9·64·64.
    stem, body, fc = _cifar_resnet(3)
    assert _macs(stem) == 32 * 32 * 27 * 16 and fc == (64, 10)
    assert _macs(body) == (6 * 32 * 32 * 9 * 16 * 16
                           + 16 * 16 * 9 * 16 * 32 + 16 * 16 * 16 * 32 + 5 * 16 * 16 * 9 * 32 * 32
                           + 8 * 8 * 9 * 32 * 64 + 8 * 8 * 32 * 64 + 5 * 8 * 8 * 9 * 64 * 64)
    assert len(body) == 18 + 2  # 18 tapped 3×3 layers, two 1×1 shortcuts
    assert len(_cifar_resnet(5)[1]) == 30 + 2
    assert len(_resnet18()[1]) == 16 + 3 and len(_resnet50()[1]) == 48 + 4


@pytest.mark.parametrize("name, network", [
    ("resnet20", "cnn"), ("resnet20", "ann"), ("resnet32", "cnn"), ("resnet32", "ann"),
    ("vgg_small", "cnn"), ("vgg_small", "ann"), ("resnet18", "ann"),
    ("resnet50", "ann"),
])
def test_exact_model_counts(name, network):
    mul, add, params, trainable = _expected(name, network)
    result = _model_count(name, network)
    assert (result.mul, result.add) == (mul, add)
    assert (result.params, result.trainable_params) == (params, trainable)
    assert result.mult_macs == mul and result.adder_macs == (add - mul) // 2


@pytest.mark.parametrize("name", sorted(_NUM_CLASSES))
def test_ann_additions_follow_from_cnn(name):
    cnn, ann = _model_count(name, "cnn"), _model_count(name, "ann")
    assert cnn.mul == cnn.add == cnn.mult_macs and cnn.adder_macs == 0
    assert ann.mul == ann.mult_macs
    assert ann.add == 2 * (cnn.mult_macs - ann.mult_macs) + ann.mult_macs
    assert (ann.params, ann.trainable_params) == (cnn.params, cnn.trainable_params)
    assert ann.other == cnn.other
    assert cnn.uncounted == ann.uncounted == ()


# --- Command line --------------------------------------------------------------

# TensorFlow's native logging writes these before absl is initialised, whatever
# TF_CPP_MIN_LOG_LEVEL says; everything else on stderr is ours.
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::"
    r"|To enable the following instructions)")


def _run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "addernet_tf.opcount", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    own_stderr = [line for line in proc.stderr.splitlines()
                  if line.strip() and not _TF_NATIVE_LOG.match(line)]
    return proc, own_stderr


def test_cli_json():
    proc, stderr = _run_cli("--model", "resnet20", "--num_classes", "100", "--network", "ann",
                            "--input_size", "32", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert list(report) == ["model", "network", "num_classes", "input_shape", "mul", "add",
                            "params",
                            "trainable_params", "energy_pj", "other"]
    assert (report["model"], report["network"], report["num_classes"], report["input_shape"]) == (
        "resnet20", "ann", 100, [32, 32, 3])
    mul, add, params, trainable = _expected("resnet20", "ann", num_classes=100)
    assert (report["mul"], report["add"]) == (mul, add)
    assert (report["params"], report["trainable_params"]) == (params, trainable)
    assert set(report["energy_pj"]) == set(ENERGY_PJ)
    assert report["energy_pj"]["fp32"] == pytest.approx(
        report["mul"] * 3.7 + report["add"] * 0.9)
    assert set(report["other"]) == set(OTHER_KEYS)
    assert stderr == []


@pytest.mark.parametrize("flag, value", [
    ("model", "resnet21"), ("num_classes", "0"), ("network", "mult"), ("conv", "mult")])
def test_bad_flag_value_is_one_line_naming_it(flag, value):
    values = flags.FlagValues()
    opcount.define_flags(values)
    with pytest.raises(flags.Error) as error:
        values(["opcount", f"--{flag}={value}"])
    line = cli.usage_line(error.value)
    assert line.startswith(f"--{flag}={value}: ") and "\n" not in line


def test_cli_bad_flag_value_is_one_line():
    # The command's wiring to addernet_tf.cli (tested in tests/test_cli.py), once.
    proc, stderr = _run_cli("--network=mult")
    assert proc.returncode == cli.USAGE
    assert "Traceback" not in proc.stderr
    assert stderr == ["opcount: --network=mult: must be one of ann, cnn"], proc.stderr
    assert proc.stdout == ""


def test_deprecated_conv_flag_reads_as_network(capsys):
    values = flags.FlagValues()
    opcount.define_flags(values)
    values(["opcount", "--model=resnet20", "--conv=conv", "--input_size=8", "--json"])
    opcount._main(values)  # pylint: disable=protected-access
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["network"] == "cnn" and report["add"] == report["mul"]
    assert err == "opcount: --conv is deprecated: use --network=cnn\n"
