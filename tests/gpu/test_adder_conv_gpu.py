# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CUDA launchers against the float64 NumPy reference (tests/ops/numpy_reference.py).

Every case runs on both backends of custom_ops/cuda_launchers.py: "cuda" (skipped, with the
reason, where there is no GPU) and "emulated" (the same kernel sources run
block by block on host threads, so CI checks their indexing and tiling).
"""

import pathlib
import sys
import zlib

import numpy as np
import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT / "tests" / "ops"), str(_ROOT)]
import numpy_reference as ref  # noqa: E402  pylint: disable=wrong-import-position
from custom_ops import cuda_launchers  # noqa: E402  pylint: disable=wrong-import-position

RANDOM_CASES = 120


@pytest.fixture(scope="module", params=["emulated", "cuda"])
def launchers(request):
    if request.param == "cuda":
        reason = cuda_launchers.gpu_unavailable_reason()
        if reason is not None:
            pytest.skip(f"CUDA kernels not run: {reason}")
    return cuda_launchers.Launchers(request.param)


def _random_case(seed):
    """(x shape, filter shape, strides, padding) drawn from small but awkward ranges."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(1, 13, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
    c = int(rng.choice([1, 2, 3, 7, 16, 17, 31, 40]))
    o = int(rng.choice([1, 5, 16, 17, 32, 33, 64, 70]))
    kind = rng.choice(["VALID", "SAME", "EXPLICIT"])
    if kind == "SAME":
        padding = "SAME"
    else:
        pads = [int(v) for v in rng.integers(0, 4, size=4)] if kind == "EXPLICIT" else [0] * 4
        pads[1] += max(0, kh - (h + pads[0] + pads[1]))  # the window must fit
        pads[3] += max(0, kw - (w + pads[2] + pads[3]))
        padding = [[0, 0], pads[:2], pads[2:], [0, 0]]
    return (n, h, w, c), (kh, kw, c, o), strides, padding


# Chosen to hit every tiling (output columns <= 16, <= 32, <= 64, and the
# 128 x 128 tile that needs >= 264 blocks), partial tiles, windows that see
# only padding and input positions that no window covers, and input-gradient
# stride phases that no kernel offset meets or that hold a single position.
EDGE_CASES = {
    "1x1_stride2": ((2, 7, 9, 5), (1, 1, 5, 3), (2, 2), "VALID"),
    "window_is_input": ((2, 5, 4, 3), (5, 4, 3, 6), (1, 1), "VALID"),
    "stride_over_kernel": ((1, 11, 10, 4), (2, 2, 4, 9), (3, 3), "VALID"),
    "padding_only_windows": ((1, 3, 3, 2), (2, 2, 2, 4), (1, 1), [[0, 0], [4, 3], [3, 5], [0, 0]]),
    "single_channel": ((3, 6, 6, 1), (3, 3, 1, 1), (1, 1), "SAME"),
    "channels_129": ((1, 5, 5, 129), (3, 3, 129, 129), (1, 2), "SAME"),
    "resnet20_first_stage": ((2, 8, 8, 16), (3, 3, 16, 16), (1, 1), [[0, 0], [1, 1], [1, 1], [0, 0]]),
    "resnet20_downsample": ((2, 8, 8, 16), (3, 3, 16, 32), (2, 2), [[0, 0], [1, 1], [1, 1], [0, 0]]),
    "stride_beyond_input": ((2, 3, 2, 3), (1, 1, 3, 4), (5, 4), "VALID"),
    "stride_phases_uneven_pads": ((1, 9, 8, 5), (3, 2, 5, 7), (2, 3), [[0, 0], [2, 0], [1, 3], [0, 0]]),
    "forward_large_tile": ((1, 65, 65, 2), (3, 3, 2, 1024), (1, 1), "SAME"),
    "input_grad_large_tile": ((4, 65, 65, 256), (1, 1, 256, 4), (1, 1), "VALID"),
    "filter_grad_large_tile": ((1, 3, 3, 470), (3, 3, 470, 1024), (1, 1), "VALID"),
}

CASES = dict(EDGE_CASES, **{f"random{i}": _random_case(i) for i in range(RANDOM_CASES)})


def _check(got, want, magnitude, dtype, what):
    """|got - want| within a few ulps of the magnitude of the summed terms."""
    assert got.shape == want.shape, what
    assert np.all(np.isfinite(got)), f"{what}: non-finite (unwritten?) elements"
    tol = (3e-5 if dtype == np.float32 else 1e-12) * (magnitude + 1.0)
    bad = np.abs(got - want) > tol
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} elements off, worst "
                           f"{np.abs(got - want).max():.3g} (got {got[bad][:3]}, want {want[bad][:3]})")


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_float64_reference(launchers, name):
    x_shape, f_shape, strides, padding = CASES[name]
    dtype = np.float64 if name.startswith("random") and int(name[6:]) % 4 == 0 else np.float32
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    # Values on a grid of 1/8 keep X - F often exactly 0 or +-1: the kinks of |.| and clamp.
    x = np.round(rng.normal(size=x_shape) * 8) / 8
    f = np.round(rng.normal(size=f_shape) * 8) / 8
    x, f = x.astype(dtype).astype(np.float64), f.astype(dtype).astype(np.float64)
    pads = ref.paddings(x_shape[1], x_shape[2], f_shape[:2], strides, padding)
    what = f"{launchers.backend} {name} x{x_shape} f{f_shape} s{strides} pads{pads} {np.dtype(dtype).name}"

    want_y = ref.forward(x, f, strides, padding)
    _check(launchers.forward(x, f, strides, pads, dtype), want_y, np.abs(want_y), dtype,
           "forward " + what)

    dy = rng.normal(size=want_y.shape).astype(dtype).astype(np.float64)
    want_dx = ref.backprop_input(x, f, dy, strides, padding)
    dx_magnitude = ref.backprop_input(np.zeros_like(x), np.full_like(f, 2.0), np.abs(dy), strides, padding)
    _check(launchers.backprop_input(x, f, dy, strides, pads, dtype), want_dx, dx_magnitude, dtype,
           "backprop_input " + what)

    want_df = ref.backprop_filter(x, f, dy, strides, padding)
    df_magnitude = ref.backprop_filter(np.abs(x), -np.abs(f), np.abs(dy), strides, padding)
    _check(launchers.backprop_filter(x, f, dy, strides, pads, dtype), want_df, df_magnitude, dtype,
           "backprop_filter " + what)


def test_shape_count():
    assert len(CASES) >= 100


def test_gradients_are_deterministic(launchers):
    """No atomics: the same call gives the same bits (split reductions run in a fixed order)."""
    rng = np.random.default_rng(7)
    x, f = rng.normal(size=(4, 16, 16, 16)), rng.normal(size=(3, 3, 16, 32))
    dy = rng.normal(size=(4, 16, 16, 32))
    runs = [(launchers.backprop_input(x, f, dy, (1, 1), [1, 1, 1, 1]),
             launchers.backprop_filter(x, f, dy, (1, 1), [1, 1, 1, 1])) for _ in range(2)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_empty_batch(launchers):
    """N = 0: no output, and the filter gradient is exactly zero."""
    x, f = np.zeros((0, 5, 5, 3)), np.ones((3, 3, 3, 4))
    assert launchers.forward(x, f, (1, 1), [1, 1, 1, 1]).shape == (0, 5, 5, 4)
    df = launchers.backprop_filter(x, f, np.zeros((0, 5, 5, 4)), (1, 1), [1, 1, 1, 1])
    np.testing.assert_array_equal(df, np.zeros_like(f))


def test_refuses_shapes_beyond_32bit_indexing(launchers):
    """Launchers return -1 (touching no memory) when an index would overflow int32."""
    lib = cuda_launchers.load(launchers.backend)
    big = cuda_launchers.geometry((1 << 16, 256, 256, 1), (1, 1, 1, 1), (1, 1), [0, 0, 0, 0])
    status = lib.addernet_adder_conv2d_forward_f32(
        cuda_launchers.geometry_arg(big), None, None, None, None)
    assert status == -1


@pytest.mark.parametrize("where", ["out_channels", "in_channels"])
def test_refuses_more_channels_than_the_grid_holds(launchers, where):
    """Column tiles run along grid.y: more than 65535 * 64 channels is refused (-1)."""
    lib = cuda_launchers.load(launchers.backend)
    channels = 65535 * 64 + 1
    x_shape, f_shape = ((1, 1, 1, 1), (1, 1, 1, channels)) if where == "out_channels" else \
        ((1, 1, 1, channels), (1, 1, channels, 1))
    geom = cuda_launchers.geometry_arg(cuda_launchers.geometry(x_shape, f_shape, (1, 1), [0] * 4))
    assert lib.addernet_adder_conv2d_forward_f32(geom, None, None, None, None) == -1
    assert lib.addernet_adder_conv2d_backprop_input_f32(geom, None, None, None, None, None) == -1


def test_guards_catch_a_write_past_an_output(launchers):
    """The sentinel guards around every array: an output 3 elements short is overrun."""
    x, f = np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1))
    geom = cuda_launchers.geometry(x.shape, f.shape, (1, 1), [0] * 4)  # 4 outputs
    short = launchers._guarded((1,), np.float32)  # pylint: disable=protected-access
    inputs = launchers._inputs(np.float32, x, f)  # pylint: disable=protected-access
    with pytest.raises(cuda_launchers.OutOfBoundsWrite, match="past the ends"):
        launchers._call("forward", np.float32, geom, inputs, [short])  # pylint: disable=protected-access
