# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Bad arguments: the error names the argument (in backticks) and shows the value."""

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as npref

ERRORS = (ValueError, tf.errors.InvalidArgumentError)


def tensor(shape, dtype=tf.float32):
    return tf.ones(shape, dtype)


X, F = (1, 6, 6, 2), (3, 3, 2, 4)

# (id, input, filters, keyword arguments, regex the message must match)
BAD_CALLS = [
    ("input_rank", tensor((6, 6, 2)), tensor(F), {}, r"`input`.*\(6, 6, 2\)"),
    ("filters_rank", tensor(X), tensor((3, 3, 2)), {}, r"`filters`.*\(3, 3, 2\)"),
    ("channel_mismatch", tensor(X), tensor((3, 3, 5, 4)), {}, r"`filters`.*5.*`input`.*2"),
    ("int_input", tensor(X, tf.int32), tensor(F, tf.int32), {}, r"`input`.*int32"),
    ("int_filters", tensor(X), tensor(F, tf.int64), {}, r"`filters`.*int64"),
    ("half_input", tensor(X, tf.float16), tensor(F, tf.float16), {}, r"`input`.*float16"),
    ("mixed_dtypes", tensor(X), tensor(F, tf.float64), {}, r"`input`.*`filters`.*float32.*float64"),
    ("stride_zero", tensor(X), tensor(F), {"strides": 0}, r"`strides`.*\b0\b"),
    ("stride_negative", tensor(X), tensor(F), {"strides": (1, -2)}, r"`strides`.*\(1, -2\)"),
    ("stride_triple", tensor(X), tensor(F), {"strides": (1, 2, 3)}, r"`strides`.*\(1, 2, 3\)"),
    ("stride_float", tensor(X), tensor(F), {"strides": 1.5}, r"`strides`.*1\.5"),
    ("padding_name", tensor(X), tensor(F), {"padding": "FULL"}, r"`padding`.*FULL"),
    ("padding_negative", tensor(X), tensor(F),
     {"padding": [[0, 0], [1, -1], [0, 0], [0, 0]]}, r"`padding`.*-1"),
    ("padding_batch", tensor(X), tensor(F),
     {"padding": [[1, 0], [0, 0], [0, 0], [0, 0]]}, r"`padding`.*\[\[1, 0\]"),
    ("padding_channel", tensor(X), tensor(F),
     {"padding": [[0, 0], [0, 0], [0, 0], [0, 2]]}, r"`padding`.*\[0, 2\]"),
    ("padding_shape", tensor(X), tensor(F), {"padding": [[1, 1], [1, 1]]}, r"`padding`"),
    ("data_format", tensor(X), tensor(F), {"data_format": "NWHC"}, r"`data_format`.*NWHC"),
    ("kernel_too_tall", tensor(X), tensor((7, 3, 2, 4)), {}, r"`filters`.*height.*7.*6"),
    ("kernel_too_wide_explicit", tensor(X), tensor((3, 9, 2, 4)),
     {"padding": [[0, 0], [0, 0], [1, 1], [0, 0]]}, r"`filters`.*width.*9.*8"),
    ("kernel_too_large_nchw", tensor((1, 2, 3, 3)), tensor((4, 4, 2, 1)),
     {"data_format": "NCHW"}, r"`filters`.*4.*3"),
    ("padding_nhwc_order_for_nchw", tensor((1, 2, 6, 6)), tensor(F),
     {"data_format": "NCHW", "padding": [[0, 0], [1, 1], [1, 1], [0, 0]]},
     r"`padding`.*NCHW.*\[\[0, 0\], \[1, 1\], \[1, 1\], \[0, 0\]\]"),
    ("strides_nhwc_order_for_nchw", tensor((1, 2, 6, 6)), tensor(F),
     {"data_format": "NCHW", "strides": [1, 2, 2, 1]}, r"`strides`.*\[1, 1, sh, sw\].*\[1, 2, 2, 1\]"),
]


@pytest.mark.parametrize("x, f, kwargs, pattern", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
@pytest.mark.parametrize("mode", ["eager", "function"])
def test_bad_arguments(backend, mode, x, f, kwargs, pattern):
    call = lambda x, f: backend(x, f, **kwargs)  # pylint: disable=unnecessary-lambda-assignment
    with pytest.raises(ERRORS, match=pattern):
        (call if mode == "eager" else tf.function(call))(x, f)


def random(shape, seed):
    """Distinct values from a normal distribution (so a wrong window or sign shows)."""
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_same_padding_accepts_kernel_larger_than_input(backend):
    x, f = random((1, 2, 3, 1), 0), random((5, 5, 1, 1), 1)
    y = backend(tf.constant(x), tf.constant(f), strides=2, padding="SAME")
    assert y.shape == (1, 1, 2, 1)
    # Most of each 5×5 window is zero padding: |0 − f| terms count there too.
    np.testing.assert_allclose(y.numpy(), npref.forward(x, f, 2, "SAME"), rtol=1e-5, atol=1e-5)



def number(n):
    """Regex for the integer n on its own (not part of a longer number)."""
    return rf"(?<!\d){n}(?!\d)"


# Shapes only known at run time: (id, input signature, input, filters, kwargs, regex)
DYNAMIC_BAD_CALLS = [
    ("kernel_too_tall", [None, None, None, 1], tensor((1, 3, 4, 1)), tensor((5, 3, 1, 2)), {},
     rf"`filters?`.*{number(5)}.*`input`.*{number(3)}"),
    ("kernel_too_wide_explicit", [None, None, None, 1], tensor((2, 6, 4, 1)),
     tensor((3, 7, 1, 2)), {"padding": [[0, 0], [0, 0], [2, 0], [0, 0]]},
     rf"`filters?`.*{number(7)}.*`input`.*{number(6)}"),
    ("channel_mismatch", [None, None, None, None], tensor((1, 6, 6, 3)), tensor((3, 3, 2, 2)),
     {}, rf"`(filters?|input)`.*{number('[23]')}.*{number('[23]')}"),
    # One input channel would silently broadcast against two filter channels.
    ("channel_broadcastable", [None, None, None, None], tensor((1, 6, 6, 1)),
     tensor((3, 3, 2, 2)), {}, rf"`(filters?|input)`.*{number('[12]')}.*{number('[12]')}"),
]


@pytest.mark.parametrize("spec, x, f, kwargs, pattern", [c[1:] for c in DYNAMIC_BAD_CALLS],
                         ids=[c[0] for c in DYNAMIC_BAD_CALLS])
def test_bad_shapes_at_run_time(backend, spec, x, f, kwargs, pattern):
    call = tf.function(lambda x: backend(x, f, **kwargs),
                       input_signature=[tf.TensorSpec(spec, tf.float32)])
    call.get_concrete_function()  # traces without complaint: the shapes are unknown
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        call(x)


@pytest.mark.parametrize("x_shape, f_shape, kwargs", [
    ((2, 5, 3, 1), (5, 3, 1, 2), {}),  # the kernel exactly as large as the input
    ((2, 6, 4, 1), (3, 7, 1, 2), {"padding": [[0, 0], [0, 0], [2, 1], [0, 0]]}),
    ((3, 6, 7, 2), (3, 3, 2, 3), {"strides": 2, "padding": "SAME"}),  # pads rows (0, 1)
], ids=["kernel_fills_input", "explicit_padding", "same_strided"])
def test_dynamic_shape_still_runs_when_it_fits(backend, x_shape, f_shape, kwargs):
    """The run-time checks must not fire on good input, and the answer must be right."""
    x, f = random(x_shape, 2), random(f_shape, 3)
    call = tf.function(lambda x: backend(x, tf.constant(f), **kwargs),
                       input_signature=[tf.TensorSpec([None, None, None, None], tf.float32)])
    y = call(tf.constant(x)).numpy()
    expected = npref.forward(x, f, kwargs.get("strides", 1), kwargs.get("padding", "VALID"))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
