# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The int8 adder op (custom_ops/cc/kernels/adder_conv2d_int8.h, lite.int8).

The op runs in LiteRT from single-op models built here by hand, checked
against an int64 NumPy reference written below; the same kernel compiled
for AVX2, SSE2 and the portable scalar loop is checked against it too.
`quantize_adder` is checked against the float adder it stands for, and
`fuse_adders` on a small Keras model against the converter's builtin int8
model and the float model.
"""

import os
import shutil
import subprocess

import keras
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import flatbuffers
from addernet_tf import lite
from addernet_tf.lite import flatbuffer as fb
from addernet_tf.lite import int8 as lite_int8

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (x shape [H, W, C], filter [KH, KW, C, O], strides, pads (top, bottom, left, right))
CASES = [
    ((9, 7, 5), (3, 3, 5, 8), (1, 1), (1, 1, 1, 1)),
    ((9, 7, 5), (3, 3, 5, 17), (2, 2), (0, 1, 0, 1)),
    ((6, 6, 70), (3, 3, 70, 6), (1, 1), (1, 1, 1, 1)),     # rows of 210 bytes: tails
    ((5, 4, 16), (1, 1, 16, 3), (1, 1), (0, 0, 0, 0)),
    ((8, 8, 32), (5, 3, 32, 9), (2, 1), (2, 0, 1, 3)),
    ((32, 32, 16), (3, 3, 16, 16), (1, 1), (1, 1, 1, 1)),  # big enough for two threads
]


def _reference(xq, wq, requant, strides, pads, residual=None):
    """int8 `[N, OH, OW, O]`: clamp(round(bias - m * sum |x - w| [+ rm * residual]), lo, hi),
    pads at x's zero point; requant = (zero, lo, hi, m[O], bias[O] [, rm])."""
    o = wq.shape[3]
    zero, lo, hi = (int(v) for v in requant[:3])
    m, bias = (requant[3:3 + o].astype(np.float64), requant[3 + o:3 + 2 * o].astype(np.float64))
    assert len(bias) == o and len(requant) == 2 * o + 3 + (residual is not None)
    top, bottom, left, right = pads
    xp = np.pad(xq.astype(np.int64), [(0, 0), (top, bottom), (left, right), (0, 0)],
                constant_values=zero)
    kh, kw, _, _ = wq.shape
    sh, sw = strides
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    acc = np.zeros((len(xq), oh, ow, wq.shape[3]), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
            acc += np.abs(patch[..., None] - wq[i, j].astype(np.int64)).sum(axis=3)
    value = bias - m * acc
    if residual is not None:
        value = value + float(requant[-1]) * residual.astype(np.float64)
    return np.clip(np.round(value), lo, hi), value


def _assert_matches(got, xq, wq, requant, strides, pads, residual=None):
    want, value = _reference(xq, wq, requant, strides, pads, residual)
    assert got.shape == want.shape
    # The kernel rounds a float32 value; ties (within float32 error) may go either way.
    tie = np.abs(np.abs(value - np.floor(value)) - 0.5) < 1e-3 * np.maximum(1, np.abs(value))
    diff = np.abs(got.astype(np.int64) - want)
    assert np.all(diff[~tie] == 0), (int(diff.max()), np.argwhere(diff * ~tie))
    assert np.all(diff <= 1)


def _case_data(seed, case, batch=8, residual=False):
    (h, w, c), fshape, _, _ = case
    rng = np.random.default_rng(seed)
    xq = rng.integers(-128, 128, size=(batch, h, w, c)).astype(np.int8)
    wq = rng.integers(-128, 128, size=fshape).astype(np.int8)
    zero = int(rng.integers(-128, 128))
    # |a - b| of uniform bytes: mean 85.3, std 60.2, so a sum of `pairs` has std
    # 60.2 sqrt(pairs): outputs spread over about ±40 around the middle of int8.
    pairs = fshape[0] * fshape[1] * fshape[2]
    # Per-channel multipliers of either sign (a folded BN's scale may be negative).
    m = rng.uniform(0.5, 1.5, size=fshape[3]) * rng.choice([-1, 1], size=fshape[3]) * 20 / (
        60.2 * np.sqrt(pairs))
    bias = m * 85.3 * pairs * rng.uniform(0.95, 1.05, size=fshape[3])
    # Every other case clamps below (as a folded ReLU does), every third above.
    lo = int(rng.integers(-30, -10)) if seed % 2 else -128
    hi = int(rng.integers(20, 40)) if seed % 3 == 0 else 127
    # A residual's multiplier (s_r / s_o) keeps its term within about ±40 too.
    extra = [rng.uniform(0.1, 0.3)] if residual else []
    requant = np.concatenate([[zero, lo, hi], m, bias, extra]).astype(np.float32)
    return xq, wq, requant


def _tensor(graph, model, name, shape, tensor_type, data=None):
    buffer = schema.BufferT()
    if data is not None:
        buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape = np.array(shape, np.int32)
    tensor.shapeSignature = np.array([-1, *shape[1:]] if name == "x" else shape, np.int32)
    tensor.type = tensor_type
    tensor.buffer = len(model.buffers) - 1
    tensor.name = name.encode()
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _single_op_model(case, wq, requant, path, requant_shape=None, residual=False):
    """A .tflite of one int8 adder op: x int8 [1, H, W, C] in, y int8 out; with
    `residual`, x is the op's residual too (x and y of one shape)."""
    (h, w, c), fshape, (sh, sw), (top, bottom, left, right) = case
    oh = (h + top + bottom - fshape[0]) // sh + 1
    ow = (w + left + right - fshape[1]) // sw + 1
    model = schema.ModelT()
    model.version = 3
    model.buffers = [schema.BufferT()]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = 32  # CUSTOM
    code.customCode = lite.OP_NAME.encode()
    code.version = 1
    model.operatorCodes = [code]
    graph = schema.SubGraphT()
    graph.tensors = []
    int8, float32 = schema.TensorType.INT8, schema.TensorType.FLOAT32
    x = _tensor(graph, model, "x", [1, h, w, c], int8)
    f = _tensor(graph, model, "filter", list(fshape), int8, wq)
    geometry = [sh, sw, top + 1, bottom + 1, left + 1, right + 1, 1]
    g = _tensor(graph, model, "geometry", geometry, int8, np.zeros(np.prod(geometry), np.int8))
    shape = [len(requant)] if requant_shape is None else requant_shape
    r = _tensor(graph, model, "requantization", shape, float32, requant)
    y = _tensor(graph, model, "y", [1, oh, ow, fshape[3]], int8)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.array([x, f, g, r] + ([x] if residual else []), np.int32)
    op.outputs = np.array([y], np.int32)
    graph.operators = [op]
    graph.inputs = np.array([x], np.int32)
    graph.outputs = np.array([y], np.int32)
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with open(path, "wb") as out:
        out.write(lite.finalize(bytes(builder.Output())))
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def _runner():
    if lite.load_error() is not None:
        pytest.fail(f"the LiteRT runner must load in this suite: {lite.load_error()}")


@pytest.mark.parametrize("index", range(len(CASES)))
def test_int8_op_matches_the_reference_at_every_geometry(index, tmp_path):
    case = CASES[index]
    xq, wq, requant = _case_data(index, case)
    path = _single_op_model(case, wq, requant, tmp_path / "op.tflite")
    with lite.Interpreter(path, 1) as one, lite.Interpreter(path, 2) as two:
        got = one(xq)
        assert got.dtype == np.int8
        np.testing.assert_array_equal(two(xq), got)
        np.testing.assert_array_equal(one(xq[:1]), got[:1])  # batch changes between calls
    _assert_matches(got, xq, wq, requant, case[2], case[3])
    assert len(np.unique(got)) > 20  # outputs spread over int8, not all clamped
    lo, hi = int(requant[1]), int(requant[2])
    assert (lo == -128 or np.any(got == lo)) and (hi == 127 or np.any(got == hi))


@pytest.mark.parametrize("case", [((9, 7, 8), (3, 3, 8, 8), (1, 1), (1, 1, 1, 1)), CASES[5]],
                         ids=["8ch", "16ch"])
def test_int8_op_adds_its_residual(case, tmp_path):
    xq, wq, requant = _case_data(7, case, residual=True)
    path = _single_op_model(case, wq, requant, tmp_path / "op.tflite", residual=True)
    with lite.Interpreter(path, 1) as one, lite.Interpreter(path, 2) as two:
        got = one(xq)
        np.testing.assert_array_equal(two(xq), got)
    _assert_matches(got, xq, wq, requant, case[2], case[3], residual=xq)
    # The residual's term moves the outputs: without it they would differ.
    without, _ = _reference(xq, wq, np.concatenate([requant[:-1], [0]]), case[2], case[3],
                            residual=xq)
    assert np.mean(got != without) > 0.5
    # A residual needs the requantization's [2 O + 4] form.
    bad = _single_op_model(case, wq, requant[:-1], tmp_path / "bad.tflite", residual=True)
    with lite.Interpreter(bad) as model:
        with pytest.raises(RuntimeError, match=r"the requantization input must have shape "
                                               r"\[2 O \+ 4\] with a residual"):
            model(xq)


@pytest.mark.parametrize("target", ["-march=x86-64-v3", "-march=x86-64",
                                    "-march=x86-64-v3 -DADDERNET_INT8_PORTABLE"])
def test_the_kernel_built_for_other_targets_matches_the_reference(target, tmp_path):
    if shutil.which("g++") is None or os.uname().machine != "x86_64":
        pytest.skip("needs g++ on x86-64")  # the LiteRT test above runs everywhere
    harness = tmp_path / "harness.cc"
    harness.write_text(_HARNESS)
    binary = tmp_path / "harness"
    build = subprocess.run(["g++", "-std=c++17", "-O2", *target.split(), "-I", REPO,
                            str(harness), "-o", str(binary)], capture_output=True, text=True,
                           timeout=120)
    assert build.returncode == 0, build.stderr[-3000:]
    for index, case in enumerate(CASES):
        # Every other case with a residual (its partial vectors of channels too).
        with_residual = index % 2 == 1
        xq, wq, requant = _case_data(index, case, residual=with_residual)
        (h, w, c), (kh, kw, _, o), (sh, sw), (top, bottom, left, right) = case
        oh = (h + top + bottom - kh) // sh + 1
        ow = (w + left + right - kw) // sw + 1
        residual = np.random.default_rng(index).integers(
            -128, 128, (len(xq), oh, ow, o)).astype(np.int8) if with_residual else None
        for name, array in (("x", xq), ("w", wq), ("r", requant), ("res", residual)):
            if array is not None:
                array.tofile(tmp_path / f"{name}.bin")
        args = [len(xq), h, w, c, kh, kw, o, oh, ow, sh, sw, top, left, int(with_residual)]
        run = subprocess.run([str(binary), str(tmp_path), *map(str, args)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        expected = {"-march=x86-64-v3": "avx2", "-march=x86-64": "sse2"}.get(target, "portable")
        assert run.stdout.split()[0] == expected
        got = np.fromfile(tmp_path / "y.bin", np.int8).reshape(len(xq), oh, ow, o)
        _assert_matches(got, xq, wq, requant, case[2], case[3], residual)


_HARNESS = r"""
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "custom_ops/cc/kernels/adder_conv2d_int8.h"

template <typename T>
std::vector<T> Read(const std::string& path, size_t n) {
  std::vector<T> v(n);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr || std::fread(v.data(), sizeof(T), n, f) != n) std::exit(3);
  std::fclose(f);
  return v;
}

int main(int argc, char** argv) {
  if (argc != 16) return 2;
  const std::string dir = argv[1];
  long a[14];
  for (int i = 0; i < 14; ++i) a[i] = std::atol(argv[2 + i]);
  const bool with_residual = a[13] != 0;
  addernet::AdderConvGeometry g{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                                a[10], a[11], a[12]};
  auto x = Read<int8_t>(dir + "/x.bin", g.batch * g.in_height * g.in_width * g.in_channels);
  auto w = Read<int8_t>(dir + "/w.bin", g.kernel_height * g.kernel_width * g.in_channels *
                                            g.out_channels);
  auto r = Read<float>(dir + "/r.bin", 2 * g.out_channels + 3 + with_residual);
  const size_t outputs = g.batch * g.out_height * g.out_width * g.out_channels;
  std::vector<int8_t> residual;
  if (with_residual) residual = Read<int8_t>(dir + "/res.bin", outputs);
  std::vector<uint8_t> packed(addernet::int8::PackedFilterBytes(g));
  addernet::int8::PackFilter(g, w.data(), packed.data());
  std::vector<int8_t> y(outputs);
  const addernet::int8::Requantization rq{
      r.data() + 3, r.data() + 3 + g.out_channels, static_cast<int>(r[1]),
      static_cast<int>(r[2]), with_residual ? residual.data() : nullptr,
      with_residual ? r[3 + 2 * g.out_channels] : 0.0f};
  // Chunks of one and of three output rows, as a thread pool hands them out.
  auto chunked_for = [](int64_t units, int64_t, const auto& fn) {
    for (int64_t begin = 0, size = 1; begin < units; begin += size, size = 4 - size) {
      fn(begin, std::min(units, begin + size));
    }
  };
  addernet::int8::AdderConv2DForwardInt8(g, x.data(), static_cast<int>(r[0]), packed.data(), rq,
                                         y.data(), chunked_for);
  FILE* f = std::fopen((dir + "/y.bin").c_str(), "wb");
  std::fwrite(y.data(), 1, y.size(), f);
  std::fclose(f);
  std::printf("%s\n", addernet::int8::kTarget);
  return 0;
}
"""


def test_quantize_adder_stands_for_the_float_layer():
    rng = np.random.default_rng(11)
    x_scale, x_zero, y_scale, y_zero = 0.02, -20, 0.5, 10
    kernel = rng.normal(0.5, 1.0, size=(3, 3, 4, 5))
    kernel[0, 0, 0, 0] = 40.0    # far above x's range [-2.16, 2.94]: clipped
    kernel[1, 1, 1, 1] = -9.0    # far below it
    center = rng.normal(0, 3, size=5)
    filter_q, requant = lite_int8.quantize_adder(kernel, center, x_scale, x_zero, y_scale, y_zero)
    assert filter_q.dtype == np.int8 and requant.dtype == np.float32
    assert requant.shape == (2 * 5 + 3,) and tuple(requant[:3]) == (x_zero, -128, 127)
    assert filter_q[0, 0, 0, 0] == 127 and filter_q[1, 1, 1, 1] == -128
    xq = rng.integers(-128, 128, size=(2, 6, 6, 4)).astype(np.int8)
    _, value = _reference(xq, filter_q, requant, (1, 1), (1, 1, 1, 1))
    # The float layer on the dequantized x, zero padded: -sum |x - w| + center.
    x = x_scale * (xq.astype(np.float64) - x_zero)
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    want = np.zeros((2, 6, 6, 5)) + center
    for i in range(3):
        for j in range(3):
            want -= np.abs(xp[:, i:i + 6, j:j + 6, :, None] - kernel[i, j]).sum(axis=3)
    got = (value - y_zero) * y_scale
    # Only the rounding of the unclipped weights to x's grid remains: <= 36 * 0.01.
    assert np.max(np.abs(got - want)) <= 36 * x_scale / 2 + 1e-6
    # The clipped weights' parts are exact: without the bias term they would be off by ~37.
    assert np.max(np.abs(got - want)) < 0.2

    # A BN folded in (scales of both signs), then a ReLU: relu(scale (A + center) + shift).
    scale = np.array([0.5, -0.25, 2.0, -1.0, 0.1])
    shift = rng.normal(0, 1, size=5)
    _, folded = lite_int8.quantize_adder(kernel, center, x_scale, x_zero, y_scale, y_zero,
                                         scale=scale, shift=shift, relu=True)
    assert tuple(folded[:3]) == (x_zero, y_zero, 127)  # the ReLU: clamped at real 0
    want_folded = np.maximum(scale * want + shift, 0)
    got_folded, value = _reference(xq, filter_q, folded, (1, 1), (1, 1, 1, 1))
    assert np.max(np.abs(scale * want + shift - (value - y_zero) * y_scale)) <= (
        36 * x_scale / 2 * np.abs(scale).max() + 1e-5)
    # What the op outputs, dequantized: within half a step of the rounding above.
    in_range = want_folded < (127 - y_zero) * y_scale
    assert np.any(got_folded == y_zero) and np.all(got_folded >= y_zero)
    assert np.max(np.abs((got_folded - y_zero) * y_scale - want_folded)[in_range]) <= (
        36 * x_scale / 2 * np.abs(scale).max() + y_scale / 2 + 1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(x_scale=0.0), "`x_scale` must be a positive finite float, got 0.0"),
    (dict(y_scale=float("nan")), "`y_scale` must be a positive finite float, got nan"),
    (dict(x_zero_point=200), "`x_zero_point` must be an int in [-128, 127], got 200"),
    (dict(y_zero_point=1.5), "`y_zero_point` must be an int in [-128, 127], got 1.5"),
    (dict(scale=[1.0, 2.0]), "`scale` must be 1 finite floats, got array([1., 2.])"),
    (dict(shift=[float("inf")]), "`shift` must be 1 finite floats, got array([inf])"),
])
def test_quantize_adder_names_a_bad_argument(kwargs, message):
    args = dict(kernel=np.zeros((1, 1, 1, 1)), center=np.zeros(1), x_scale=0.1, x_zero_point=0,
                y_scale=0.1, y_zero_point=0)
    args.update(kwargs)
    with pytest.raises(ValueError) as raised:
        lite_int8.quantize_adder(**args)
    assert str(raised.value) == message


def test_a_bad_requantization_shape_fails_the_run_and_says_why(tmp_path, capfd):
    case = CASES[0]
    xq, wq, requant = _case_data(0, case)
    path = _single_op_model(case, wq, requant[:-1], tmp_path / "bad.tflite")
    with lite.Interpreter(path) as model:
        # The runtime ignores the kernel's status; the runner asks the kernel.
        with pytest.raises(RuntimeError, match=r"Addernet>AdderConv2D: the requantization "
                                               r"input must have shape \[2 O \+ 3\]"):
            model(xq)
    assert "the requantization input must have shape [2 O + 3]" in capfd.readouterr().err


@pytest.mark.parametrize("changes", [
    {0: 300.0}, {0: 0.5}, {1: -129.0}, {2: 127.5}, {1: 20.0, 2: 10.0}, {3: float("inf")},
    {3 + 8: float("nan")},
], ids=["zero_point_range", "zero_point_int", "lo_range", "hi_int", "lo_above_hi",
        "multiplier_inf", "bias_nan"])
def test_a_bad_requantization_value_fails_the_run_and_says_why(changes, tmp_path):
    case = CASES[0]  # O = 8
    xq, wq, requant = _case_data(0, case)
    for index, value in changes.items():
        requant[index] = value
    with lite.Interpreter(_single_op_model(case, wq, requant, tmp_path / "bad.tflite")) as model:
        with pytest.raises(RuntimeError, match=r"the requantization needs a zero point and "
                                               r"lo <= hi in \[-128, 127\] and finite "
                                               r"multipliers and biases"):
            model(xq)


def test_int8_kernel_target_is_reported():
    assert lite.kernel_target(int8=True).split()[0] in ("avx512bw", "avx2", "sse2", "portable")


def _small_adder_model():
    from addernet_tf.layers import Adder2D  # pylint: disable=import-outside-toplevel
    inputs = keras.Input([8, 8, 3], name="pixels")
    x = Adder2D(8, 3, padding="same", implementation="builtin", name="adder_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = Adder2D(16, 3, strides=2, padding="same", implementation="builtin", name="adder_b")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="dense")(x))


def test_fuse_adders_replaces_each_adder_scope_with_the_int8_op(tmp_path):
    from addernet_tf.export import int8, serving  # pylint: disable=import-outside-toplevel
    from addernet_tf.export.run import RunInfo  # pylint: disable=import-outside-toplevel
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    model = _small_adder_model()
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    normalized = (images / 255.0 - 0.5) / 0.25
    # BN statistics of these images, so that the ReLUs fire and the classes differ.
    for adder, bn in (("adder_a", "bn_a"), ("adder_b", "bn_b")):
        out = keras.Model(model.input, model.get_layer(adder).output).predict(normalized,
                                                                               verbose=0)
        model.get_layer(bn).moving_mean.assign(out.mean((0, 1, 2)))
        model.get_layer(bn).moving_variance.assign(out.var((0, 1, 2)))
    dense = model.get_layer("dense")
    dense.kernel.assign(dense.kernel.numpy() * 30)
    info = RunInfo(str(tmp_path), "digits", 8, "small", "ann", 4, None, ((0.5,) * 3, (0.25,) * 3))
    friendly = int8.int8_friendly(model)
    builtin = serving.to_tflite(friendly, info, str(tmp_path / "convert"), images)
    fused = lite.finalize(lite_int8.fuse_adders(builtin, int8.adder_layers(friendly)))
    ops = lite.adder_ops(fused)
    assert len(ops) == 2 and all(len(op["inputs"]) == 4 for op in ops)
    assert len(fused) < len(builtin) / 3  # the per-offset constants are gone
    (tmp_path / "fused.tflite").write_bytes(fused)
    with lite.Interpreter(str(tmp_path / "fused.tflite")) as run:
        got = run(images)
    reference = Interpreter(model_content=builtin)
    reference.resize_tensor_input(reference.get_input_details()[0]["index"], images.shape)
    reference.allocate_tensors()
    reference.set_tensor(reference.get_input_details()[0]["index"], images)
    reference.invoke()
    builtin_p = reference.get_tensor(reference.get_output_details()[0]["index"])
    float_p = keras.activations.softmax(model.predict(normalized, verbose=0)).numpy()
    assert len(np.unique(float_p.argmax(1))) > 1
    # Both int8 models quantize the same float model; the fused one at least as well.
    assert np.mean(got.argmax(1) == float_p.argmax(1)) >= 0.95
    assert np.abs(got - float_p).max() <= max(0.1, np.abs(builtin_p - float_p).max())
    with pytest.raises(ValueError, match="adder layer 2: no ops in scope 'addernet_int8_adder_2'"):
        lite_int8.fuse_adders(builtin, int8.adder_layers(friendly) * 2)
    with pytest.raises(ValueError, match="1 adder layers given, but the model has more adder "
                                         "scopes"):
        lite_int8.fuse_adders(builtin, int8.adder_layers(friendly)[:1])


def _trained_like(model, normalized, rng):
    """Sets `model`'s BNs (adder_k → bn_k) and its "dense" layer as training would leave
    them on `normalized` images; returns the float logits."""
    for adder, bn in (("adder_a", "bn_a"), ("adder_b", "bn_b")):
        out = keras.Model(model.input, model.get_layer(adder).output).predict(normalized,
                                                                               verbose=0)
        layer = model.get_layer(bn)
        layer.moving_mean.assign(out.mean((0, 1, 2)))
        layer.moving_variance.assign(out.var((0, 1, 2)))
        # γ of both signs and β: what a trained BN holds.
        layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape)
                           * rng.choice([-1, 1], layer.gamma.shape))
        layer.beta.assign(rng.normal(0, 0.5, layer.beta.shape))
    # A classifier whose logits spread around 0 for every class on these images.
    dense = model.get_layer("dense")
    pooled = keras.Model(model.input, dense.input).predict(normalized, verbose=0)
    weights = rng.normal(size=dense.kernel.shape) / (pooled.std(0)[:, None] + 1e-6)
    dense.kernel.assign(weights)
    dense.bias.assign(-(pooled @ weights).mean(0))
    return model.predict(normalized, verbose=0)


def test_fuse_adders_folds_each_batch_norm_and_relu_into_the_int8_op(tmp_path):
    from addernet_tf.export import int8, serving  # pylint: disable=import-outside-toplevel
    from addernet_tf.export.run import RunInfo  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(1)
    model = _small_adder_model()
    images = np.random.default_rng(1).integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    normalized = (images / 255.0 - 0.5) / 0.25
    float_logits = _trained_like(model, normalized, np.random.default_rng(2))

    friendly = int8.int8_friendly(model, fold_batch_norm=True)
    assert [type(friendly.get_layer(n)).__name__ for n in ("bn_a", "bn_b")] == ["FoldedAway"] * 2
    layers = int8.adder_layers(friendly)
    assert [layer["relu"] for layer in layers] == [True, True]
    np.testing.assert_allclose(friendly.predict(normalized, verbose=0), float_logits,
                               rtol=1e-4, atol=1e-3)
    info = RunInfo(str(tmp_path), "digits", 8, "small", "ann", 4, None, ((0.5,) * 3, (0.25,) * 3))
    builtin = serving.to_tflite(friendly, info, str(tmp_path / "convert"), images)
    fused = lite.finalize(lite_int8.fuse_adders(builtin, layers))
    ops = lite.adder_ops(fused)
    assert len(ops) == 2 and all(len(op["inputs"]) == 4 for op in ops)
    (tmp_path / "fused.tflite").write_bytes(fused)
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    names = [op["op_name"] for op in Interpreter(
        model_content=builtin)._get_ops_details()]  # pylint: disable=protected-access
    # The unfused model's BN and ReLU ops sit in the scopes; nothing of them is left after.
    with lite.Interpreter(str(tmp_path / "fused.tflite")) as run:
        got = run(images)
    float_p = keras.activations.softmax(float_logits).numpy()
    assert len(np.unique(float_p.argmax(1))) > 1
    assert np.mean(got.argmax(1) == float_p.argmax(1)) >= 0.95
    assert np.abs(got - float_p).max() <= 0.1
    unfolded = int8.int8_friendly(model)
    plain = lite_int8.fuse_adders(
        serving.to_tflite(unfolded, info, str(tmp_path / "plain"), images),
        int8.adder_layers(unfolded))
    counts = [len(fb._model(b).subgraphs[0].operators)  # pylint: disable=protected-access
              for b in (plain, fused)]
    assert counts[1] == counts[0] - 4, (counts, names)  # the two BNs' MUL and ADD


def test_fuse_adders_folds_a_residual_add_into_the_int8_op(tmp_path):
    from addernet_tf.export import int8, serving  # pylint: disable=import-outside-toplevel
    from addernet_tf.export.run import RunInfo  # pylint: disable=import-outside-toplevel
    from addernet_tf.layers import Adder2D  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(3)
    inputs = keras.Input([8, 8, 3], name="pixels")
    a = Adder2D(8, 3, padding="same", implementation="builtin", name="adder_a")(inputs)
    a = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn_a")(a))
    b = Adder2D(8, 3, padding="same", implementation="builtin", name="adder_b")(a)
    b = keras.layers.BatchNormalization(name="bn_b")(b)
    x = keras.layers.ReLU()(keras.layers.Add(name="add")([b, a]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="dense")(x))
    images = np.random.default_rng(3).integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    normalized = (images / 255.0 - 0.5) / 0.25
    float_p = keras.activations.softmax(
        _trained_like(model, normalized, np.random.default_rng(4))).numpy()
    assert len(np.unique(float_p.argmax(1))) > 1

    friendly = int8.int8_friendly(model, fold_batch_norm=True)
    info = RunInfo(str(tmp_path), "digits", 8, "small", "ann", 4, None, ((0.5,) * 3, (0.25,) * 3))
    builtin = serving.to_tflite(friendly, info, str(tmp_path / "convert"), images)
    layers = int8.adder_layers(friendly)
    fused = lite.finalize(lite_int8.fuse_adders(builtin, layers))
    kept = lite.finalize(lite_int8.fuse_adders(builtin, layers, residuals=False))
    # adder_b's op took the ADD (and its ReLU) and adder_a's output as its residual.
    assert sorted(len(op["inputs"]) for op in lite.adder_ops(fused)) == [4, 5]
    assert [len(op["inputs"]) for op in lite.adder_ops(kept)] == [4, 4]
    counts = [len(fb._model(b).subgraphs[0].operators)  # pylint: disable=protected-access
              for b in (kept, fused)]
    assert counts[1] == counts[0] - 1, counts
    for name, flatbuffer in (("fused", fused), ("kept", kept)):
        (tmp_path / f"{name}.tflite").write_bytes(flatbuffer)
        with lite.Interpreter(str(tmp_path / f"{name}.tflite")) as run:
            got = run(images)
        assert np.mean(got.argmax(1) == float_p.argmax(1)) >= 0.95, name
        assert np.abs(got - float_p).max() <= 0.1, name


def test_a_pool_between_adder_and_batch_norm_keeps_the_batch_norm():
    from addernet_tf.export import int8  # pylint: disable=import-outside-toplevel
    from addernet_tf.layers import Adder2D  # pylint: disable=import-outside-toplevel

    inputs = keras.Input([8, 8, 3], name="pixels")
    x = Adder2D(4, 3, padding="same", implementation="builtin", name="adder")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(x))
    model.get_layer("bn").gamma.assign(-np.ones(4))  # max(−a) ≠ −max(a): not foldable
    friendly = int8.int8_friendly(model, fold_batch_norm=True)
    assert isinstance(friendly.get_layer("bn"), keras.layers.BatchNormalization)
    assert int8.adder_layers(friendly)[0]["scale"] is None
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(friendly.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-3)


def test_pruning_keeps_a_buffer_that_a_kept_constant_shares():
    """The converter gives equal constants one buffer; dropping an unused tensor must
    not empty the buffer a kept one still reads."""
    model = schema.ModelT()
    shared = schema.BufferT()
    shared.data = np.arange(4, dtype=np.uint8)
    model.buffers = [schema.BufferT(), shared]
    graph = schema.SubGraphT()
    graph.tensors = []
    for name, buffer in (("x", 0), ("kept", 1), ("dropped", 1), ("y", 0)):
        tensor = schema.TensorT()
        tensor.name, tensor.buffer, tensor.shape = name.encode(), buffer, np.array([4], np.int32)
        graph.tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1], np.int32), np.array([3], np.int32)
    graph.operators, graph.inputs, graph.outputs = [op], np.array([0]), np.array([3])
    model.subgraphs = [graph]
    assert fb.prune(model, graph) == set()
    assert [t.name for t in graph.tensors] == [b"x", b"kept", b"y"]
    assert list(op.outputs) == [2]
    np.testing.assert_array_equal(model.buffers[1].data, np.arange(4))
