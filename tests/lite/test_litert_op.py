# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The LiteRT custom op (custom_ops/lite) and `addernet_tf.lite`: converted adder
convolutions run in LiteRT's CompiledModel and match the float64 NumPy reference.

One model holds several adder convolutions of one input (VALID, SAME,
EXPLICIT; strides 1 and 2; 1x1, 3x3, 5x3 filters; channel counts off the
vector width), their outputs flattened into one: one conversion covers them.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from addernet_tf import lite
from addernet_tf.ops import adder_conv2d

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


npref = _load("numpy_reference_lite", os.path.join(REPO, "tests", "ops", "numpy_reference.py"))

H, W, C = 9, 7, 5
# (filter shape [KH, KW, C, O], strides, padding as the op takes it, as numpy_reference takes it)
CASES = [
    ((3, 3, C, 8), (1, 1), "SAME", "SAME"),
    ((3, 3, C, 17), (2, 2), "SAME", "SAME"),
    ((1, 1, C, 3), (1, 1), "VALID", "VALID"),
    ((5, 3, C, 40), (2, 1), "VALID", "VALID"),
    ((3, 3, C, 16), (1, 2), [[0, 0], [2, 0], [1, 3], [0, 0]], [[0, 0], [2, 0], [1, 3], [0, 0]]),
]


def _filters(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype(np.float32) for shape, *_ in CASES]


def _convert(fn, input_spec, workdir):
    """A finalized .tflite of `fn` (one input, one output) via a SavedModel, as export does."""
    module = tf.Module()
    module.serve = tf.function(fn, input_signature=[input_spec])
    saved = os.path.join(workdir, "saved_model")
    tf.saved_model.save(module, saved, signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    return converter.convert()


def _multi_conv(filters, formulation):
    def fn(x):
        outs = [adder_conv2d(x, tf.constant(f), strides=s, padding=p, formulation=formulation)
                for f, (_, s, p, _) in zip(filters, CASES)]
        # Static sizes: LiteRT allocates the output from the shapes it infers.
        return {"y": tf.concat([tf.reshape(y, [-1, int(np.prod(y.shape[1:]))]) for y in outs],
                               axis=1)}
    return fn


def _reference(x, filters):
    return np.concatenate([npref.forward(x, f, s, p).reshape(len(x), -1)
                           for f, (_, s, _, p) in zip(filters, CASES)], axis=1)


def _bound(x, filters):
    return np.concatenate([npref.max_identity_bound(x, f, s, p).reshape(len(x), -1)
                           for f, (_, s, _, p) in zip(filters, CASES)], axis=1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{formulation: path of the finalized multi-convolution model}."""
    if lite.load_error() is not None:
        pytest.fail(f"the LiteRT runner must load in this suite: {lite.load_error()}")
    work = tmp_path_factory.mktemp("lite")
    filters = _filters()
    paths = {}
    for formulation in ("exact", "max_identity"):
        flatbuffer = lite.finalize(_convert(_multi_conv(filters, formulation),
                                            tf.TensorSpec([None, H, W, C], tf.float32),
                                            str(work / formulation)))
        paths[formulation] = str(work / f"{formulation}.tflite")
        with open(paths[formulation], "wb") as f:
            f.write(flatbuffer)
    return paths, filters


@pytest.mark.parametrize("threads", [1, 2])
def test_exact_matches_the_numpy_reference_at_every_geometry(models, threads):
    paths, filters = models
    x = np.random.default_rng(1).normal(size=(3, H, W, C)).astype(np.float32)
    with lite.Interpreter(paths["exact"], num_threads=threads) as model:
        got = model(x)
    want = _reference(x, filters)
    assert got.shape == want.shape
    # float32 sums of up to 75 terms |x - f| ~ 1: a few ulps of the sum.
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-5)
    assert np.abs(got - want).max() > 0  # float32, not a copy of the float64 result


def test_max_identity_is_within_its_bound(models):
    paths, filters = models
    x = np.random.default_rng(2).normal(size=(2, H, W, C)).astype(np.float32)
    with lite.Interpreter(paths["max_identity"]) as model:
        got = model(x).astype(np.float64)
    err = np.abs(got - _reference(x, filters))
    bound = _bound(x, filters)
    assert np.all(err <= bound), float((err / bound).max())
    # The bound is tight enough to catch a wrong formula: far below every output.
    assert np.all(bound < 1e-3 * np.abs(_reference(x, filters)))


def test_batch_changes_between_calls_and_threads_agree_bitwise(models):
    paths, filters = models
    x = np.random.default_rng(3).normal(size=(5, H, W, C)).astype(np.float32)
    with lite.Interpreter(paths["exact"], 1) as one, lite.Interpreter(paths["exact"], 2) as two:
        for batch in (1, 5, 2, 5):
            a, b = one(x[:batch]), two(x[:batch])
            assert a.shape[0] == batch
            np.testing.assert_array_equal(a, b)
        whole = one(x)
        np.testing.assert_array_equal(np.concatenate([one(x[i:i + 1]) for i in range(5)]),
                                      whole)
    np.testing.assert_allclose(whole, _reference(x, filters), rtol=2e-6, atol=1e-5)


def test_finalize_adds_geometry_and_aligns_every_tensor_buffer(models):
    paths, _ = models
    with open(paths["exact"], "rb") as f:
        flatbuffer = f.read()
    ops = lite.adder_ops(flatbuffer)
    assert len(ops) == len(CASES)
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    graph = model.subgraphs[0]
    geometries = sorted(tuple(graph.tensors[op["inputs"][2]].shape) for op in ops)
    # [sh, sw, top+1, bottom+1, left+1, right+1, formulation+1], by hand from the cases:
    # SAME 3x3 s1 on 9x7: pads 1,1,1,1; SAME 3x3 s2: 9 -> out 5, total 2 -> 1,1;
    # 7 -> out 4, total 2 -> 1,1; EXPLICIT top 2, bottom 0, left 1, right 3.
    assert geometries == sorted([(1, 1, 2, 2, 2, 2, 1), (2, 2, 2, 2, 2, 2, 1),
                                 (1, 1, 1, 1, 1, 1, 1), (2, 1, 1, 1, 1, 1, 1),
                                 (1, 2, 3, 1, 2, 4, 1)])
    data_buffers = {int(t.buffer) for t in graph.tensors if model.buffers[t.buffer].size}
    assert data_buffers and all(model.buffers[b].offset % lite.flatbuffer.ALIGNMENT == 0
                                for b in data_buffers)
    assert all(model.buffers[b].data is None for b in data_buffers)
    with pytest.raises(ValueError, match="finalized already"):
        lite.finalize(flatbuffer)
    with pytest.raises(ValueError, match="not a TFLite model"):
        lite.finalize(b"\0" * 64)


def test_builtin_only_model_runs_after_finalize(tmp_path):
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 3)).astype(np.float32)
    w = np.random.default_rng(5).normal(size=(3, 3, 3, 4)).astype(np.float32)
    flatbuffer = _convert(lambda x: {"y": tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))},
                          tf.TensorSpec([None, 6, 6, 3], tf.float32), str(tmp_path))
    path = tmp_path / "conv.tflite"
    path.write_bytes(lite.finalize(flatbuffer))
    assert lite.adder_ops(path.read_bytes()) == []
    with lite.Interpreter(str(path)) as model:
        np.testing.assert_allclose(model(x), tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME")).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_bad_arguments_name_themselves(models, tmp_path):
    paths, _ = models
    with pytest.raises(ValueError, match="`model_path`"):
        lite.Interpreter(str(tmp_path / "missing.tflite"))
    (tmp_path / "garbage.tflite").write_bytes(b"not a model" * 20)
    with pytest.raises(ValueError, match="`model_path` .*garbage.tflite"):
        lite.Interpreter(str(tmp_path / "garbage.tflite"))
    for threads in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"`num_threads` .*{threads}"):
            lite.Interpreter(paths["exact"], num_threads=threads)
    model = lite.Interpreter(paths["exact"])
    assert model.input_shape[1:] == (H, W, C) and model.input_dtype == np.float32
    with pytest.raises(ValueError, match="`inputs` must be float32, got float64"):
        model(np.zeros((1, H, W, C)))
    with pytest.raises(ValueError, match=r"`inputs` must have shape \[N, 9, 7, 5\]"):
        model(np.zeros((1, H, W + 1, C), np.float32))
    with pytest.raises(ValueError, match="N >= 1"):
        model(np.zeros((0, H, W, C), np.float32))
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model(np.zeros((1, H, W, C), np.float32))


def test_a_node_with_a_broken_geometry_fails_and_says_why(models, tmp_path, capfd):
    paths, _ = models
    with open(paths["exact"], "rb") as f:
        flatbuffer = bytearray(f.read())
    first = lite.adder_ops(bytes(flatbuffer))[0]
    tensor = schema.Model.GetRootAs(flatbuffer, 0).Subgraphs(0).Tensors(first["inputs"][2])
    shape = tensor.ShapeAsNumpy()  # a view into `flatbuffer`
    assert list(shape) == [1, 1, 2, 2, 2, 2, 1]
    # Formulation code 3 (none such); the size stays 16 bytes, as its buffer's.
    shape[4], shape[5], shape[6] = 1, 1, 4
    (tmp_path / "broken.tflite").write_bytes(bytes(flatbuffer))
    x = np.ones((1, H, W, C), np.float32)
    with lite.Interpreter(str(tmp_path / "broken.tflite")) as broken:
        # The node's stand-in output shape does not fit the ops after it.
        with pytest.raises(RuntimeError, match="LiteRT: "):
            broken(x)
    assert "Addernet>AdderConv2D: unknown formulation" in capfd.readouterr().err


_APP = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "custom_ops/lite/adder_conv2d_litert.h"
#include "litert/c/litert_compiled_model.h"
#include "litert/c/litert_environment.h"
#include "litert/c/litert_model.h"
#include "litert/c/litert_tensor_buffer.h"

#define OK(x) do { if ((x) != kLiteRtStatusOk) { std::fprintf(stderr, "%s\n", #x); return 1; } } while (0)

// "1,9,7,5" -> a layout of that shape.
static LiteRtLayout Layout(const char* dims) {
  LiteRtLayout layout = {};
  for (const char* p = dims; *p; ++p) {
    layout.dimensions[layout.rank++] = static_cast<int32_t>(std::strtol(p, const_cast<char**>(&p), 10));
    if (*p == 0) break;
  }
  return layout;
}

static size_t Elements(const LiteRtLayout& layout) {
  size_t n = 1;
  for (unsigned i = 0; i < layout.rank; ++i) n *= layout.dimensions[i];
  return n;
}

// app MODEL X.bin f32|i8 X_DIMS Y_DIMS: runs MODEL once on X, prints y.
int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const bool int8 = std::strcmp(argv[3], "i8") == 0;
  const LiteRtElementType type = int8 ? kLiteRtElementTypeInt8 : kLiteRtElementTypeFloat32;
  const size_t bytes = int8 ? 1 : 4;
  LiteRtEnvironment env;  OK(LiteRtCreateEnvironment(0, nullptr, &env));
  LiteRtModel model;  OK(LiteRtCreateModelFromFile(env, argv[1], &model));
  AddernetLiteRtKernel* adder = AddernetLiteRtKernelCreate(2);
  LiteRtOptions options;  OK(LiteRtCreateOptions(&options));
  OK(LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu));
  OK(AddernetLiteRtRegister(options, adder));
  LiteRtCompiledModel compiled;  OK(LiteRtCreateCompiledModel(env, model, options, &compiled));
  LiteRtRankedTensorType in_type = {type, Layout(argv[4])}, out_type = {type, Layout(argv[5])};
  const size_t n = Elements(in_type.layout), out_n = Elements(out_type.layout);
  const size_t in_size = 64 * ((n * bytes + 63) / 64), out_size = 64 * ((out_n * bytes + 63) / 64);
  void* x = std::aligned_alloc(64, in_size);
  void* y = std::aligned_alloc(64, out_size);
  FILE* f = std::fopen(argv[2], "rb");
  if (std::fread(x, bytes, n, f) != n) return 1;
  std::fclose(f);
  LiteRtTensorBuffer in, out;
  OK(LiteRtCreateTensorBufferFromHostMemory(&in_type, x, in_size, nullptr, &in));
  OK(LiteRtCreateTensorBufferFromHostMemory(&out_type, y, out_size, nullptr, &out));
  OK(LiteRtRunCompiledModel(compiled, 0, 1, &in, 1, &out));
  // The runtime ignores a custom kernel's status: ask the kernel.
  if (const char* error = AddernetLiteRtKernelTakeError(adder)) {
    std::fprintf(stderr, "adder op: %s\n", error);
    return 1;
  }
  for (size_t i = 0; i < out_n; ++i) {
    if (int8) std::printf("%d\n", static_cast<const int8_t*>(y)[i]);
    else std::printf("%.9g\n", static_cast<const float*>(y)[i]);
  }
  LiteRtDestroyTensorBuffer(in);  LiteRtDestroyTensorBuffer(out);
  LiteRtDestroyCompiledModel(compiled);  LiteRtDestroyOptions(options);
  AddernetLiteRtKernelDestroy(adder);  LiteRtDestroyModel(model);  LiteRtDestroyEnvironment(env);
  return 0;
}
"""


def _build_app(tmp_path):
    """The app above, compiled and linked as adder_conv2d_litert.h tells an app to."""
    litert_dir = os.path.dirname(lite.interpreter._litert_path())  # pylint: disable=protected-access
    (tmp_path / "app.cc").write_text(_APP)
    os.symlink(lite.library_path(), tmp_path / "libaddernet_litert.so")
    build = subprocess.run(
        ["g++", "-std=c++17", "-O1", "-I", REPO, "-I",
         os.path.join(REPO, "third_party", "litert", "include"), str(tmp_path / "app.cc"),
         "-o", str(tmp_path / "app"), "-L", str(tmp_path), "-laddernet_litert",
         os.path.join(litert_dir, "libLiteRt.so"), f"-Wl,-rpath,{tmp_path}:{litert_dir}"],
        capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr[-3000:]
    return str(tmp_path / "app")


def _dims(shape):
    return ",".join(str(d) for d in shape)


def test_a_cpp_app_registers_the_op_with_the_documented_call(models, tmp_path):
    """What adder_conv2d_litert.h tells an app to do, for the float op and the int8 op."""
    paths, filters = models
    app = _build_app(tmp_path)
    x = np.random.default_rng(6).normal(size=(1, H, W, C)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    want = _reference(x, filters)[0]
    run = subprocess.run([app, paths["exact"], str(tmp_path / "x.bin"), "f32", _dims(x.shape),
                          _dims([1, want.size])], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.array([float(v) for v in run.stdout.split()])
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-5)

    # The int8 op (tests/lite/test_litert_int8.py builds its single-op models).
    from tests.lite import test_litert_int8 as int8_tests  # pylint: disable=import-outside-toplevel
    case = int8_tests.CASES[1]
    xq, wq, requant = int8_tests._case_data(1, case, batch=1)  # pylint: disable=protected-access
    path = int8_tests._single_op_model(case, wq, requant, tmp_path / "int8.tflite")  # pylint: disable=protected-access
    xq.tofile(tmp_path / "xq.bin")
    want, _ = int8_tests._reference(xq, wq, requant, case[2], case[3])  # pylint: disable=protected-access
    run = subprocess.run([app, path, str(tmp_path / "xq.bin"), "i8", _dims(xq.shape),
                          _dims(want.shape)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.array([int(v) for v in run.stdout.split()], np.int8).reshape(want.shape)
    int8_tests._assert_matches(got, xq, wq, requant, case[2], case[3])  # pylint: disable=protected-access

    # A node that fails reports through AddernetLiteRtKernelTakeError, and the app stops.
    bad = int8_tests._single_op_model(case, wq, requant[:-1], tmp_path / "bad.tflite")  # pylint: disable=protected-access
    run = subprocess.run([app, bad, str(tmp_path / "xq.bin"), "i8", _dims(xq.shape),
                          _dims(want.shape)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "adder op: the requantization input must have shape [2 O + 3]" in run.stderr


def test_kernel_target_is_reported():
    assert lite.kernel_target().split()[0] in ("avx512", "avx2", "avx", "portable")
    assert sys.modules["addernet_tf.lite"].__all__


def test_a_filter_computed_in_the_graph_is_repacked_when_it_changes(tmp_path):
    """The op packs a filter once per address; a filter that is not a constant (same
    arena address, new values each call) must still be read afresh."""
    base = np.random.default_rng(7).normal(size=(3, 3, 4, 6)).astype(np.float32)

    def fn(x):
        f = tf.constant(base) + tf.reduce_mean(x)
        return {"y": tf.reshape(adder_conv2d(x, f, padding="SAME"), [-1, 5 * 5 * 6])}

    path = tmp_path / "computed.tflite"
    path.write_bytes(lite.finalize(_convert(fn, tf.TensorSpec([None, 5, 5, 4], tf.float32),
                                            str(tmp_path))))
    rng = np.random.default_rng(8)
    with lite.Interpreter(str(path)) as model:
        for shift in (0.0, 3.0, 0.0):
            x = (rng.normal(size=(1, 5, 5, 4)) + shift).astype(np.float32)
            want = npref.forward(x, base + x.astype(np.float64).mean(), 1, "SAME")
            np.testing.assert_allclose(model(x), want.reshape(1, -1), rtol=1e-5, atol=1e-4)
