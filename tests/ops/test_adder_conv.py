# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Values and gradients of the adder convolution, on both backends.

Everything is compared with the float64 NumPy reference (numpy_reference.py).
Errors are max|a - b| / max|b|.
"""

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as npref
from adder_conv_backends import builtin_op, compiled_op

KERNELS = [(1, 1), (3, 3), (5, 5), (1, 3), (3, 1), (2, 3), (3, 2), (2, 2), (1, 5), (4, 2)]
STRIDES = [1, 2, 3, (1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)]
# Channel counts below, at and across the kernels' vector widths (8 input
# lanes, 16-channel output blocks; half of each in float64).
CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 32, 33]


class Case:
    """One random adder convolution: geometry plus seeded data."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.kernel = KERNELS[rng.integers(len(KERNELS))]
        self.strides = STRIDES[rng.integers(len(STRIDES))]
        kind = ("VALID", "SAME", "EXPLICIT")[seed % 3]
        if kind == "EXPLICIT":
            t, b, l, r = (int(p) for p in rng.integers(0, 3, size=4))
            self.padding = [[0, 0], [t, b], [l, r], [0, 0]]
            pad_h, pad_w = t + b, l + r
        else:
            self.padding, pad_h, pad_w = kind, 0, 0
        min_h = max(self.kernel[0] - pad_h, 1)
        min_w = max(self.kernel[1] - pad_w, 1)
        self.x_shape = (int(rng.integers(1, 4)), int(rng.integers(min_h, min_h + 6)),
                        int(rng.integers(min_w, min_w + 6)), int(rng.choice(CHANNELS)))
        self.f_shape = self.kernel + (self.x_shape[3], int(rng.choice(CHANNELS)))
        # "close": x and f near the same offset, so |x - f| is small next to
        # |x| + |f| (catches kernels that cancel large sums, e.g. 2max(x,f)-x-f).
        self.data = "close" if seed % 4 == 3 else "normal"
        self.id = (f"{seed}-k{self.kernel[0]}x{self.kernel[1]}-s{self.strides}-"
                   f"{kind.lower()}-{self.data}").replace(" ", "")

    @property
    def kwargs(self):
        return {"strides": self.strides, "padding": self.padding}

    def arrays(self, dtype):
        """x, f, dy in `dtype` (the NumPy reference is fed the same rounded values)."""
        rng = np.random.default_rng(1000 + self.seed)
        if self.data == "close":
            x = 2.0 + 0.2 * rng.standard_normal(self.x_shape)
            f = 2.0 + 0.2 * rng.standard_normal(self.f_shape)
        else:
            x, f = rng.standard_normal(self.x_shape), rng.standard_normal(self.f_shape)
        dy = rng.standard_normal(npref.forward(x, f, **self.kwargs).shape)
        return x.astype(dtype), f.astype(dtype), dy.astype(dtype)


CASES = [Case(seed) for seed in range(120)]


def rel_error(actual, expected):
    assert actual.shape == expected.shape
    if expected.size == 0:
        return 0.0
    return np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30)


def run(op, x, f, dy, **kwargs):
    """(y, dX, dF) from one op call and one backward pass, as NumPy."""
    x, f = tf.constant(x), tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch([x, f])
        y = op(x, f, **kwargs)
    dx, df = tape.gradient(y, [x, f], output_gradients=tf.constant(dy, dtype=y.dtype))
    return y.numpy(), dx.numpy(), df.numpy()


def numpy_run(x, f, dy, **kwargs):
    return (npref.forward(x, f, **kwargs), npref.backprop_input(x, f, dy, **kwargs),
            npref.backprop_filter(x, f, dy, **kwargs))


def assert_matches_numpy(op, case, dtype, tol):
    x, f, dy = case.arrays(dtype)
    actual = run(op, x, f, dy, **case.kwargs)
    expected = numpy_run(x, f, dy, **case.kwargs)
    for what, a, e in zip(("forward", "dX", "dF"), actual, expected):
        assert a.dtype == dtype, what
        assert rel_error(a, e) <= tol, f"{what}: relative error {rel_error(a, e):.3g}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_numpy_float32(backend, case):
    assert_matches_numpy(backend, case, np.float32, 1e-5)


@pytest.mark.parametrize("case", CASES[::4], ids=[c.id for c in CASES[::4]])
def test_matches_numpy_float64(backend, case):
    assert_matches_numpy(backend, case, np.float64, 1e-12)


@pytest.mark.parametrize("case", CASES[:12], ids=[c.id for c in CASES[:12]])
def test_compiled_matches_builtin(case):
    compiled, builtin = compiled_op(), builtin_op()
    x, f, dy = case.arrays(np.float32)
    for what, a, e in zip(("forward", "dX", "dF"), run(compiled, x, f, dy, **case.kwargs),
                          run(builtin, x, f, dy, **case.kwargs)):
        assert rel_error(a, e) <= 1e-5, what


@pytest.mark.parametrize("strides", [[1, 2, 3, 1], np.array([2, 3])], ids=["nhwc4", "numpy"])
def test_strides_forms(backend, strides):
    x, f, _ = CASES[0].arrays(np.float32)
    np.testing.assert_array_equal(backend(x, f, strides=strides, padding="SAME").numpy(),
                                  backend(x, f, strides=(2, 3), padding="SAME").numpy())


PADDINGS = ["VALID", "SAME", [[0, 0], [2, 0], [1, 3], [0, 0]]]


@pytest.mark.parametrize("padding", PADDINGS, ids=["valid", "same", "explicit"])
def test_empty_batch(backend, padding):
    x = np.zeros((0, 7, 6, 3), np.float32)
    f = np.random.default_rng(0).standard_normal((3, 2, 3, 4)).astype(np.float32)
    expected_shape = npref.forward(np.zeros((1, 7, 6, 3)), f, 2, padding).shape[1:]
    y, dx, df = run(backend, x, f, np.zeros((0,) + expected_shape, np.float32),
                    strides=2, padding=padding)
    assert y.shape == (0,) + expected_shape
    assert dx.shape == x.shape
    np.testing.assert_array_equal(df, np.zeros_like(f))


@pytest.mark.parametrize("padding", PADDINGS, ids=["valid", "same", "explicit"])
@pytest.mark.parametrize("where", ["input", "filters"])
def test_nan_propagates(backend, padding, where):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5, 2)).astype(np.float32)
    f = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    (x if where == "input" else f)[1, 2, 3 if where == "input" else 1, 1] = np.nan
    y = backend(x, f, strides=1, padding=padding).numpy()
    expected = npref.forward(x, f, 1, padding)
    assert np.isnan(expected).any() and not np.isnan(expected).all()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["input", "filters"])
def test_nan_propagates_to_both_gradients(backend, where, dtype):
    # The dX clamp keeps a NaN difference NaN (with AVX-512DQ it is one vrangeps/pd,
    # elsewhere max + min in NaN-keeping operand order).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 17)).astype(dtype)
    f = rng.standard_normal((3, 3, 17, 18)).astype(dtype)
    (x if where == "input" else f)[1, 2, 3 if where == "input" else 1, 16] = np.nan
    dy = rng.standard_normal(npref.forward(x, f, 1, "SAME").shape).astype(dtype)
    _, dx, df = run(backend, x, f, dy, strides=1, padding="SAME")
    want_dx = npref.backprop_input(x, f, dy, 1, "SAME")
    want_df = npref.backprop_filter(x, f, dy, 1, "SAME")
    for what, got, want in (("dX", dx, want_dx), ("dF", df, want_df)):
        assert np.isnan(want).any() and not np.isnan(want).all(), what
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=what)


@pytest.mark.parametrize("case", CASES[:6], ids=[c.id for c in CASES[:6]])
def test_nchw_is_transposed_nhwc(backend, case):
    x, f, dy = case.arrays(np.float32)
    to_nchw, to_nhwc = (0, 3, 1, 2), (0, 2, 3, 1)
    nhwc = run(backend, x, f, dy, **case.kwargs)
    nchw_kwargs = dict(case.kwargs)  # 4-element strides/paddings follow data_format
    for key in ("strides", "padding"):
        value = nchw_kwargs.get(key)
        if isinstance(value, (list, tuple)) and len(value) == 4:
            nchw_kwargs[key] = [value[a] for a in to_nchw]
    y, dx, df = run(backend, x.transpose(to_nchw), f, dy.transpose(to_nchw),
                    data_format="NCHW", **nchw_kwargs)
    np.testing.assert_allclose(y.transpose(to_nhwc), nhwc[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx.transpose(to_nhwc), nhwc[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(df, nhwc[2], rtol=1e-6, atol=1e-6)


def test_two_stacked_ops_chain_rule(backend):
    """d loss / d (x, f1, f2) for loss = sum(w * op(a * op(x, f1) + b, f2))."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 7, 2))
    f1, f2 = rng.standard_normal((3, 3, 2, 3)), rng.standard_normal((2, 3, 3, 2))
    y1 = npref.forward(x, f1, 1, "SAME")
    a, b = 1.0 / y1.std(), -y1.mean() / y1.std()  # keeps op 2 out of HardTanh saturation
    h = a * y1 + b
    w = rng.standard_normal(npref.forward(h, f2, (2, 1), "VALID").shape)
    dh = npref.backprop_input(h, f2, w, (2, 1), "VALID")
    expected = [npref.backprop_input(x, f1, a * dh, 1, "SAME"),
                npref.backprop_filter(x, f1, a * dh, 1, "SAME"),
                npref.backprop_filter(h, f2, w, (2, 1), "VALID")]

    tensors = [tf.constant(v, tf.float32) for v in (x, f1, f2)]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        hidden = a * backend(tensors[0], tensors[1], strides=1, padding="SAME") + b
        loss = tf.reduce_sum(w.astype(np.float32) * backend(hidden, tensors[2], strides=(2, 1)))
    for grad, e in zip(tape.gradient(loss, tensors), expected):
        assert rel_error(grad.numpy(), e) <= 1e-5


@pytest.mark.parametrize("case", CASES[:6], ids=[c.id for c in CASES[:6]])
def test_function_matches_eager(backend, case):
    x, f, dy = case.arrays(np.float32)
    eager = run(backend, x, f, dy, **case.kwargs)

    @tf.function
    def step(x, f, dy):
        with tf.GradientTape() as tape:
            tape.watch([x, f])
            y = backend(x, f, **case.kwargs)
        return (y,) + tuple(tape.gradient(y, [x, f], output_gradients=dy))

    for a, e in zip(step(x, f, dy), eager):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES[:9], ids=[c.id for c in CASES[:9]])
def test_dynamic_shapes_in_function(backend, case):
    """N, H and W unknown at trace time (SAME pads computed from tensors)."""
    x, f, dy = case.arrays(np.float32)
    spec = tf.TensorSpec([None, None, None, x.shape[3]], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec(f.shape, tf.float32),
                                  tf.TensorSpec([None, None, None, f.shape[3]], tf.float32)])
    def step(x, f, dy):
        with tf.GradientTape() as tape:
            tape.watch([x, f])
            y = backend(x, f, **case.kwargs)
        return (y,) + tuple(tape.gradient(y, [x, f], output_gradients=dy))

    for a, e in zip(step(x, f, dy), numpy_run(x, f, dy, **case.kwargs)):
        assert rel_error(a.numpy(), e) <= 1e-5
