# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Float64 NumPy adder convolution, written straight from the formulas.

Deliberately independent of the TensorFlow code: it pads explicitly and walks
the output positions (oh, ow), taking a whole [KH, KW, C] window at a time.
All arrays NHWC; filters [KH, KW, C, O].
"""

import numpy as np


def paddings(height, width, kernel_shape, strides, padding):
    """[top, bottom, left, right] for "VALID", "SAME" or [[0,0],[t,b],[l,r],[0,0]]."""
    if isinstance(padding, str) and padding == "VALID":
        return [0, 0, 0, 0]
    if isinstance(padding, str) and padding == "SAME":
        pads = []
        for size, k, s in zip((height, width), kernel_shape, strides):
            out = int(np.ceil(size / s))
            total = max((out - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return pads
    return [padding[1][0], padding[1][1], padding[2][0], padding[2][1]]


def _setup(x, f, strides, padding):
    x = np.asarray(x, np.float64)
    f = np.asarray(f, np.float64)
    sh, sw = (strides, strides) if np.isscalar(strides) else strides
    kh, kw = f.shape[:2]
    top, bottom, left, right = paddings(x.shape[1], x.shape[2], (kh, kw), (sh, sw), padding)
    xpad = np.zeros((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]))
    xpad[:, top:top + x.shape[1], left:left + x.shape[2], :] = x
    out_h = (xpad.shape[1] - kh) // sh + 1
    out_w = (xpad.shape[2] - kw) // sw + 1
    windows = [(oh, ow, (slice(None), slice(oh * sh, oh * sh + kh), slice(ow * sw, ow * sw + kw)))
               for oh in range(out_h) for ow in range(out_w)]
    return x, f, xpad, (top, left), (out_h, out_w), windows


def forward(x, f, strides=1, padding="VALID"):
    """Y [N, OH, OW, O] = -sum_{i,j,c} |Xpad window - F|."""
    x, f, xpad, _, (out_h, out_w), windows = _setup(x, f, strides, padding)
    y = np.zeros((x.shape[0], out_h, out_w, f.shape[3]))
    for oh, ow, win in windows:
        diff = xpad[win][..., None] - f[None]  # [N, KH, KW, C, O]
        y[:, oh, ow, :] = -np.abs(diff).sum(axis=(1, 2, 3))
    return y


def backprop_input(x, f, dy, strides=1, padding="VALID"):
    """dX [N, H, W, C] = sum clamp(F - Xpad, -1, 1) * dY, padded positions dropped."""
    x, f, xpad, (top, left), _, windows = _setup(x, f, strides, padding)
    dy = np.asarray(dy, np.float64)
    dxpad = np.zeros_like(xpad)
    for oh, ow, win in windows:
        hard_tanh = np.clip(f[None] - xpad[win][..., None], -1.0, 1.0)  # [N, KH, KW, C, O]
        dxpad[win] += (hard_tanh * dy[:, oh, ow, None, None, None, :]).sum(axis=-1)
    return dxpad[:, top:top + x.shape[1], left:left + x.shape[2], :]


def backprop_filter(x, f, dy, strides=1, padding="VALID"):
    """dF [KH, KW, C, O] = sum_{n, oh, ow} (Xpad - F) * dY."""
    x, f, xpad, _, _, windows = _setup(x, f, strides, padding)
    dy = np.asarray(dy, np.float64)
    df = np.zeros_like(f)
    for oh, ow, win in windows:
        diff = xpad[win][..., None] - f[None]
        df += (diff * dy[:, oh, ow, None, None, None, :]).sum(axis=0)
    return df


def max_identity_bound(x, f, strides=1, padding="VALID", unit_roundoff=2.0 ** -24):
    """Bound on |error| of Y computed as 2 Σmax(x, f) - Σx - Σf in floating point.

    Each of the three sums has n = KH*KW*C terms (padded positions as x = 0), in
    any order: |error| <= γ_(n-1) Σ|terms| each, then three roundings combine
    them: |error| <= γ_(n+3) Σ_window (2|max(x, f)| + |x| + |f|), with
    γ_k = k u / (1 - k u) (Higham, Accuracy and Stability, §4.2). [N, OH, OW, O].
    """
    x, f, xpad, _, (out_h, out_w), windows = _setup(x, f, strides, padding)
    n = f.shape[0] * f.shape[1] * f.shape[2]
    gamma = (n + 3) * unit_roundoff / (1 - (n + 3) * unit_roundoff)
    bound = np.zeros((x.shape[0], out_h, out_w, f.shape[3]))
    for oh, ow, win in windows:
        window = xpad[win][..., None]  # [N, KH, KW, C, 1]
        terms = 2 * np.abs(np.maximum(window, f[None])) + np.abs(window) + np.abs(f[None])
        bound[:, oh, ow, :] = gamma * terms.sum(axis=(1, 2, 3))
    return bound
