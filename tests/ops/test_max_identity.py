# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`formulation="max_identity"`: Y = -(2 Σmax(x, f) - Σx - Σf), on both backends.

Checked against the float64 exact sum of numpy_reference and the rounding bound
written there (`max_identity_bound`), never against the exact kernel's output.
"""

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as npref
from addernet_tf.layers import Adder2D

# (id, input shape, filter shape, strides, padding)
CASES = [
    ("valid", (2, 7, 8, 5), (3, 3, 5, 20), 1, "VALID"),
    ("same_s2", (2, 9, 9, 16), (3, 3, 16, 16), 2, "SAME"),
    ("explicit_rect", (1, 6, 11, 3), (2, 3, 3, 33), (1, 2), [[0, 0], [2, 1], [0, 3], [0, 0]]),
    ("pointwise_wide", (2, 5, 40, 8), (1, 1, 8, 7), 1, "VALID"),   # > 16 pixels per row
]


def _data(x_shape, f_shape, dtype, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = (offset + rng.normal(size=x_shape)).astype(dtype)
    f = (offset + rng.normal(size=f_shape)).astype(dtype)
    return x, f


@pytest.mark.parametrize("dtype,unit", [("float32", 2.0 ** -24), ("float64", 2.0 ** -53)])
@pytest.mark.parametrize("x_shape,f_shape,strides,padding", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_within_its_rounding_bound(backend, dtype, unit, x_shape, f_shape, strides, padding):
    x, f = _data(x_shape, f_shape, dtype)
    y = backend(x, f, strides, padding, formulation="max_identity").numpy()
    exact = npref.forward(x, f, strides, padding)
    bound = npref.max_identity_bound(x, f, strides, padding, unit)
    assert y.shape == exact.shape and y.dtype == np.dtype(dtype)
    error = np.abs(y - exact)
    assert (error <= bound).all(), f"worst error / bound {np.max(error / bound):.3g}"
    # The bound is tight enough to see a wrong formula: a window's |x - f| is ~1.
    assert bound.max() < 1e-3 * np.abs(exact).min()


def test_large_offsets_cost_accuracy_that_the_bound_accounts_for(backend):
    # x and f near 1000 differ by ~1: the three sums are ~1000 n, the result ~n.
    x, f = _data((1, 6, 6, 8), (3, 3, 8, 16), "float32", offset=1000.0)
    exact = npref.forward(x, f)
    y_max = backend(x, f, formulation="max_identity").numpy()
    y_exact = backend(x, f).numpy()
    bound = npref.max_identity_bound(x, f)
    assert (np.abs(y_max - exact) <= bound).all()
    # The exact formulation's own bound, γ_n Σ|x - f| (plus the subtraction's u),
    # is ~3000× smaller here: the price of the identity on off-centre data.
    n = 3 * 3 * 8
    exact_bound = (n + 1) * 2.0 ** -24 * np.abs(exact) * 1.001
    assert (np.abs(y_exact - exact) <= exact_bound).all()
    assert np.median(bound) > 1000 * np.median(exact_bound)


def test_gradients_are_the_exact_formulations(backend):
    x, f = _data((2, 6, 6, 4), (3, 3, 4, 5), "float32", seed=1)
    x, f = tf.constant(x), tf.constant(f)
    dy = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 3, 5)).astype("float32"))
    grads = []
    for formulation in ("exact", "max_identity"):
        with tf.GradientTape() as tape:
            tape.watch([x, f])
            y = backend(x, f, 2, "SAME", formulation=formulation)
        grads.append(tape.gradient(y, [x, f], output_gradients=dy))
    for exact, identity in zip(*grads):
        np.testing.assert_array_equal(identity, exact)
    np.testing.assert_allclose(grads[0][1], npref.backprop_filter(x, f, dy, 2, "SAME"),
                               rtol=1e-5, atol=1e-4)


def test_infinite_input_gives_nan_not_minus_infinity(backend):
    # Documented: inf - inf inside the identity, where the exact sum is -inf.
    x, f = _data((1, 3, 3, 2), (3, 3, 2, 2), "float32")
    x[0, 1, 1, 0] = np.inf
    assert np.isneginf(backend(x, f).numpy()).all()
    assert np.isnan(backend(x, f, formulation="max_identity").numpy()).all()


def test_nan_propagates_as_in_the_exact_sum(backend):
    x, f = _data((1, 4, 4, 2), (3, 3, 2, 3), "float32")
    x[0, 0, 0, 1] = np.nan  # read by output pixel (0, 0) only (VALID, stride 1)
    f[1, 1, 0, 2] = np.nan  # output channel 2 everywhere
    exact = np.isnan(backend(x, f).numpy())
    identity = np.isnan(backend(x, f, formulation="max_identity").numpy())
    np.testing.assert_array_equal(identity, exact)
    assert exact[0, 0, 0].all() and exact[..., 2].all() and not exact[0, 1, 1, :2].any()


def test_bad_formulation_is_named(backend):
    x, f = _data((1, 3, 3, 2), (3, 3, 2, 2), "float32")
    with pytest.raises(ValueError, match=r"`formulation` must be one of \('exact', "
                                         r"'max_identity'\), got 'max'"):
        backend(x, f, formulation="max")


def test_the_compiled_op_refuses_an_unknown_formulation_attr():
    from adder_conv_backends import compiled_op  # pylint: disable=import-outside-toplevel
    compiled_op()  # fails or skips this test where the library is missing
    from addernet_tf.ops import _loader  # pylint: disable=import-outside-toplevel
    x, f = _data((1, 3, 3, 2), (3, 3, 2, 2), "float32")
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="formulation"):
        _loader.library().addernet_adder_conv2d(x, f, strides=[1, 1], padding="VALID",
                                                formulation="fast")


def test_layer_formulation_round_trips_and_matches_exact():
    from tests.layers.layer_harness import run_layer_test  # pylint: disable=import-outside-toplevel
    y = run_layer_test(Adder2D, {"filters": 6, "kernel_size": 3, "padding": "same",
                                 "formulation": "max_identity"},
                       (2, 8, 8, 4), (2, 8, 8, 6), expected_trainable=1)
    layer = Adder2D(6, 3, padding="same")
    layer.build((2, 8, 8, 4))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    identity = Adder2D.from_config({**layer.get_config(), "formulation": "max_identity"})
    identity.build((2, 8, 8, 4))
    identity.kernel.assign(layer.kernel)
    np.testing.assert_allclose(identity(x), layer(x), rtol=1e-5, atol=1e-4)
    assert y.shape == (2, 8, 8, 6)
    with pytest.raises(ValueError, match=r"`formulation`.*'fast'"):
        Adder2D(4, 3, formulation="fast")
