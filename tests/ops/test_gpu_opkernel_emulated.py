# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The GPU OpKernels (adder_conv2d_op_gpu.cc) run inside TensorFlow, without a GPU.

custom_ops/cuda_launchers.build_emulated_opkernels() compiles that file with
the CUDA launchers on the CPU emulation and registers its OpKernels on
DEVICE_CPU under the kernel label "cuda_emulation". Ops built under that label
run the GPU OpKernels' Compute (validation, 32-bit check, output and workspace
allocation, launcher calls); the numbers must match the float64 NumPy reference
on the op suite's own cases. The op library's gradient functions are used
unchanged; the gradient ops are built under the same label.
"""

import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

import adder_conv_backends
import numpy_reference as npref
from test_adder_conv import CASES, numpy_run, rel_error

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from custom_ops import cuda_launchers  # noqa: E402  pylint: disable=wrong-import-position

LABEL = "cuda_emulation"
OPS = ["Addernet>AdderConv2D", "Addernet>AdderConv2DBackpropInput",
       "Addernet>AdderConv2DBackpropFilter"]


@pytest.fixture(scope="module")
def gpu_opkernels():
    """(adder_conv2d_compiled, path of the emulated GPU OpKernel library)."""
    op = adder_conv_backends.compiled_op()  # the ops must be registered first
    library = cuda_launchers.build_emulated_opkernels()
    tf.load_op_library(str(library))
    return op, library


def _labelled(fn):
    """fn traced as a tf.function whose adder ops use the "cuda_emulation" kernels."""
    def body(*args):
        with tf.compat.v1.get_default_graph()._kernel_label_map(  # pylint: disable=protected-access
                {name: LABEL for name in OPS}):
            return fn(*args)
    return tf.function(body)


def _run(op, x, f, dy, wrt=("x", "f"), **kwargs):
    """(y, dX or None, dF or None) through the labelled kernels, as NumPy."""
    def step(x, f, dy):
        with tf.GradientTape() as tape:
            tape.watch([x, f])
            y = op(x, f, **kwargs)
        sources = [{"x": x, "f": f}[name] for name in wrt]
        grads = dict(zip(wrt, tape.gradient(y, sources, output_gradients=dy))) if wrt else {}
        return y, grads.get("x"), grads.get("f")
    out = _labelled(step)(tf.constant(x), tf.constant(f), tf.constant(dy))
    return tuple(None if t is None else t.numpy() for t in out)


@pytest.mark.parametrize("dtype,cases,tol", [(np.float32, CASES, 1e-5),
                                             (np.float64, CASES[::4], 1e-12)],
                         ids=["float32", "float64"])
def test_matches_numpy(gpu_opkernels, dtype, cases, tol):
    op, _ = gpu_opkernels
    for case in cases:
        x, f, dy = case.arrays(dtype)
        actual = _run(op, x, f, dy, **case.kwargs)
        for what, a, e in zip(("forward", "dX", "dF"), actual, numpy_run(x, f, dy, **case.kwargs)):
            assert a.dtype == dtype, (case.id, what)
            assert rel_error(a, e) <= tol, f"{case.id} {what}: relative error {rel_error(a, e):.3g}"


@pytest.mark.parametrize("wrt", [(), ("x",), ("f",)], ids=["forward", "dX", "dF"])
def test_each_op_runs_the_gpu_opkernel(gpu_opkernels, wrt):
    """Each op launches emulated kernels: the label picked the GPU OpKernel, not the CPU one."""
    op, library = gpu_opkernels
    x, f, dy = CASES[5].arrays(np.float32)
    fn = _labelled(lambda x, f: op(x, f, **CASES[5].kwargs))
    fn(tf.constant(x), tf.constant(f))  # trace (and run) first
    before = cuda_launchers.emulated_launch_count(library)
    fn(tf.constant(x), tf.constant(f))
    forward_launches = cuda_launchers.emulated_launch_count(library) - before
    assert forward_launches >= 1

    before = cuda_launchers.emulated_launch_count(library)
    _run(op, x, f, dy, wrt=wrt, **CASES[5].kwargs)
    launches = cuda_launchers.emulated_launch_count(library) - before
    # Tracing runs nothing; the one run launches the forward and the gradient asked for.
    assert launches > forward_launches if wrt else launches == forward_launches


def test_empty_batch(gpu_opkernels):
    op, _ = gpu_opkernels
    x = np.zeros((0, 7, 6, 3), np.float32)
    f = np.random.default_rng(0).standard_normal((3, 2, 3, 4)).astype(np.float32)
    y_shape = (0,) + npref.forward(np.zeros((1, 7, 6, 3)), f, 2, "SAME").shape[1:]
    y, dx, df = _run(op, x, f, np.zeros(y_shape, np.float32), strides=2, padding="SAME")
    assert y.shape == y_shape and dx.shape == x.shape
    np.testing.assert_array_equal(df, np.zeros_like(f))


def test_run_time_shape_error_names_the_argument(gpu_opkernels):
    """Shapes unknown when traced: the OpKernel's own check raises, naming `filters`."""
    op, _ = gpu_opkernels
    spec = tf.TensorSpec([None] * 4, tf.float32)
    fn = _labelled(lambda x, f: op(x, f, strides=1, padding="SAME")).get_concrete_function(spec, spec)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`filters` expects 4 input channels"):
        fn(tf.zeros((1, 5, 5, 3)), tf.zeros((3, 3, 4, 2)))


def test_refuses_shapes_beyond_32bit_indexing(gpu_opkernels):
    """A stride near 2^31 overflows the kernels' int32 window arithmetic: refused, not wrapped."""
    op, _ = gpu_opkernels
    x = np.ones((1, 3, 3, 2), np.float32)
    f = np.ones((1, 1, 2, 2), np.float32)
    fn = _labelled(lambda x, f: op(x, f, strides=(2**31 - 1, 1), padding="VALID"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="32-bit indexing"):
        fn(tf.constant(x), tf.constant(f))
    # The CPU kernel has no such limit and gives the 1 x 3 output.
    y = op(x, f, strides=(2**31 - 1, 1), padding="VALID").numpy()
    np.testing.assert_allclose(y, npref.forward(x, f, (2**31 - 1, 1), "VALID"))


def test_refuses_more_channels_than_the_kernels_take(gpu_opkernels):
    op, _ = gpu_opkernels
    x = np.ones((1, 1, 1, 1), np.float32)
    f = np.ones((1, 1, 1, 65535 * 64 + 1), np.float32)
    fn = _labelled(lambda x, f: op(x, f, strides=1, padding="VALID"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 4194240 channels"):
        fn(tf.constant(x), tf.constant(f))
