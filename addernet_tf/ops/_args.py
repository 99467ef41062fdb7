# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Argument checks shared by the custom adder op and its builtin twin.

Both backends accept exactly the same arguments and reject the same bad ones
with the same messages, so they are checked once, here.
"""

import numpy as np
import tensorflow as tf

from addernet_tf._validate import FORMULATIONS, choice, is_int

SUPPORTED_DTYPES = (tf.float32, tf.float64)


class AdderConvArgs:
    """Normalized arguments of one adder convolution.

    Attributes:
      strides: `[stride_h, stride_w]`, positive ints.
      padding: `"VALID"`, `"SAME"` or `"EXPLICIT"`.
      explicit_paddings: `[top, bottom, left, right]` (zeros unless EXPLICIT).
      data_format: `"NHWC"` or `"NCHW"`.
      formulation: `"exact"` or `"max_identity"` (`_validate.FORMULATIONS`).
    """

    def __init__(self, strides, padding, explicit_paddings, data_format, formulation="exact"):
        self.strides = strides
        self.padding = padding
        self.explicit_paddings = explicit_paddings
        self.data_format = data_format
        self.formulation = formulation


# Positions of (height, width) in 4-element strides / explicit padding, as in
# tf.nn.conv2d: they follow `data_format`.
_SPATIAL_AXES = {"NHWC": (1, 2), "NCHW": (2, 3)}
_LAYOUT_HINT = {"NHWC": ("[1, sh, sw, 1]", "[[0, 0], [top, bottom], [left, right], [0, 0]]"),
                "NCHW": ("[1, 1, sh, sw]", "[[0, 0], [0, 0], [top, bottom], [left, right]]")}


def _normalize_strides(strides, data_format):
    if isinstance(strides, np.ndarray) and strides.ndim <= 1 and np.issubdtype(
            strides.dtype, np.integer):
        strides = strides.tolist()
    if is_int(strides):
        values = [int(strides), int(strides)]
    elif isinstance(strides, (list, tuple)) and len(strides) in (2, 4) and all(
            is_int(s) for s in strides):
        values = [int(s) for s in strides]
        if len(values) == 4:
            h, w = _SPATIAL_AXES[data_format]
            if any(values[a] != 1 for a in range(4) if a not in (h, w)):
                raise ValueError(
                    f"`strides` of length 4 must be {_LAYOUT_HINT[data_format][0]} "
                    f"({data_format}), got {list(strides)}"
                )
            values = [values[h], values[w]]
    else:
        raise ValueError(
            f"`strides` must be an int or a pair of ints, got {strides!r}"
        )
    if any(s <= 0 for s in values):
        raise ValueError(f"`strides` must be positive, got {strides!r}")
    return values


def _normalize_padding(padding, data_format):
    layout = _LAYOUT_HINT[data_format][1]
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("VALID", "SAME"):
            raise ValueError(
                f'`padding` must be "VALID", "SAME" or {layout} ({data_format}), '
                f"got {padding!r}"
            )
        return mode, [0, 0, 0, 0]
    try:
        pairs = [[int(v) for v in pair] for pair in padding]
        ok = len(pairs) == 4 and all(len(p) == 2 for p in pairs)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f'`padding` must be "VALID", "SAME" or {layout} ({data_format}), '
            f"got {padding!r}"
        )
    h, w = _SPATIAL_AXES[data_format]
    if any(pairs[a] != [0, 0] for a in range(4) if a not in (h, w)):
        raise ValueError(
            f"`padding` may only pad the spatial dimensions (batch and channel pads "
            f"must be [0, 0]: {layout} for {data_format}), got {padding!r}"
        )
    flat = pairs[h] + pairs[w]
    if any(p < 0 for p in flat):
        raise ValueError(f"`padding` must be non-negative, got {padding!r}")
    return "EXPLICIT", flat


def check_args(input, filters, strides, padding, data_format, formulation="exact"):
    """Validates the static parts of an adder convolution call.

    Args:
      input: `Tensor`, `[N, H, W, C]` (NHWC) or `[N, C, H, W]` (NCHW).
      filters: `Tensor`, `[KH, KW, C, O]`.
      strides, padding, data_format, formulation: as in `adder_conv2d`.

    Returns:
      `AdderConvArgs`.

    Raises:
      ValueError: naming the argument and the bad value. Checks that need a
        dimension which is unknown at trace time are left to the op's kernel.
    """
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f'`data_format` must be "NHWC" or "NCHW", got {data_format!r}')
    stride_hw = _normalize_strides(strides, data_format)
    mode, explicit = _normalize_padding(padding, data_format)
    choice(formulation, "formulation", FORMULATIONS)

    for arg, t in (("input", input), ("filters", filters)):
        if t.dtype not in SUPPORTED_DTYPES:
            raise ValueError(
                f"`{arg}` must be float32 or float64, got {t.dtype.name}"
            )
    if input.dtype != filters.dtype:
        raise ValueError(
            f"`input` and `filters` must have the same dtype, got "
            f"{input.dtype.name} and {filters.dtype.name}"
        )
    in_rank = input.shape.rank
    f_rank = filters.shape.rank
    if in_rank is not None and in_rank != 4:
        raise ValueError(f"`input` must be 4-D, got shape {input.shape}")
    if f_rank is not None and f_rank != 4:
        raise ValueError(f"`filters` must be 4-D [KH, KW, C, O], got shape {filters.shape}")
    if in_rank == 4 and f_rank == 4:
        c_axis = 3 if data_format == "NHWC" else 1
        c_in, c_f = input.shape[c_axis], filters.shape[2]
        if c_in is not None and c_f is not None and c_in != c_f:
            raise ValueError(
                f"`filters` expects {c_f} input channels but `input` has {c_in} "
                f"(input shape {input.shape}, filters shape {filters.shape})"
            )
        h, w = (input.shape[1], input.shape[2]) if data_format == "NHWC" else (
            input.shape[2], input.shape[3])
        kh, kw = filters.shape[0], filters.shape[1]
        for name, size, k, pad in (("height", h, kh, explicit[0] + explicit[1]),
                                   ("width", w, kw, explicit[2] + explicit[3])):
            if k is not None and k <= 0:
                raise ValueError(f"`filters` must have a positive kernel {name}, got shape {filters.shape}")
            if size is None or k is None:
                continue
            if mode != "SAME" and size + pad < k:
                raise ValueError(
                    f"`filters` kernel {name} {k} is larger than the padded input "
                    f"{name} {size + pad} (input shape {input.shape}, padding {padding!r})"
                )
    return AdderConvArgs(stride_hw, mode, explicit, data_format, formulation)


def to_nhwc(x, data_format):
    """`x` in NHWC: both backends compute in NHWC and transpose NCHW around it."""
    return x if data_format == "NHWC" else tf.transpose(x, [0, 2, 3, 1])


def from_nhwc(x, data_format):
    """Inverse of `to_nhwc`."""
    return x if data_format == "NHWC" else tf.transpose(x, [0, 3, 1, 2])
