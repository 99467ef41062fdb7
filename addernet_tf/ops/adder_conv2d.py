# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The adder convolution on the compiled kernels, with AdderNet gradients.

`adder_conv2d` runs `Addernet>AdderConv2D` when the op library is loaded and
falls back to the builtin-op twin (`adder_conv2d_builtin`) otherwise, with
one warning. The gradient ops are registered here, so importing this module
is enough to differentiate through, or re-load a SavedModel holding, the op.
"""

import tensorflow as tf

from addernet_tf.ops import _args, _loader
from addernet_tf.ops.adder_conv2d_builtin import adder_conv2d_builtin

__all__ = ["adder_conv2d", "adder_conv2d_compiled", "active_backend"]


def active_backend():
    """`"compiled"` when the op library is loaded, else `"builtin"` (the twin)."""
    return "compiled" if _loader.library() is not None else "builtin"


def _attrs(args):
    return dict(strides=args.strides, padding=args.padding,
                explicit_paddings=args.explicit_paddings if args.padding == "EXPLICIT" else [])


def adder_conv2d_compiled(input, filters, strides=1, padding="VALID",
                          data_format="NHWC", name=None, formulation="exact"):
    """`adder_conv2d` on the compiled kernels; raises if they are not loaded."""
    lib = _loader.library()
    if lib is None:
        raise RuntimeError(
            f"addernet_tf op library not loaded: {_loader.load_error()}")
    with tf.name_scope(name or "adder_conv2d"):
        input = tf.convert_to_tensor(input, name="input")
        filters = tf.convert_to_tensor(filters, name="filters")
        args = _args.check_args(input, filters, strides, padding, data_format, formulation)
        y = lib.addernet_adder_conv2d(_args.to_nhwc(input, data_format), filters,
                                      formulation=args.formulation, **_attrs(args))
        return _args.from_nhwc(y, data_format)


def adder_conv2d(input, filters, strides=1, padding="VALID",
                 data_format="NHWC", name=None, formulation="exact"):
    """Adder convolution: `Y = -Σ_{i,j,c} |X − F|` over each window.

    Args:
      input: float32/float64 `[N, H, W, C]` (or `[N, C, H, W]` for NCHW).
      filters: `[KH, KW, C, O]`, same dtype (the layout of `tf.nn.conv2d`).
      strides: int or `(stride_h, stride_w)`.
      padding: `"VALID"`, `"SAME"` (TensorFlow's rule: the extra row/column
        goes at the bottom/right) or `[[0, 0], [top, bottom], [left, right],
        [0, 0]]`. A zero-padded position contributes `|F|`.
      data_format: `"NHWC"` or `"NCHW"` (transposed around the NHWC kernel).
      name: optional name scope.
      formulation: `"exact"` sums `|X − F|`; `"max_identity"` computes the same
        value as `2·Σmax(X, F) − ΣX − ΣF`: two operations per pair instead of
        three on CPUs, its rounding error bounded by ~(n + 3)·2⁻²⁴·(2Σ|max| +
        Σ|X| + Σ|F|) in float32 (n = KH·KW·C) rather than by the result's own
        size, and NaN where the exact sum is infinite. For inference; the
        gradients are the same. The GPU kernels compute the exact sum either way.

    Returns:
      `[N, OH, OW, O]` (or `[N, O, OH, OW]`), the negated L1 distances.
      Gradients are AdderNet's: `dX = Σ clamp(F − X, −1, 1)·dY` and
      `dF = Σ (X − F)·dY`.

    Raises:
      ValueError: a bad argument, named, with its value (checked statically).
      tf.errors.InvalidArgumentError: the same, found at run time.
    """
    if _loader.library() is None:
        _loader.warn_fallback_once()
        return adder_conv2d_builtin(input, filters, strides, padding, data_format, name,
                                    formulation)
    return adder_conv2d_compiled(input, filters, strides, padding, data_format, name, formulation)


def _grad_attrs(op):
    return dict(strides=op.get_attr("strides"), padding=op.get_attr("padding"),
                explicit_paddings=op.get_attr("explicit_paddings"))


if _loader.library() is not None:

    @tf.RegisterGradient("Addernet>AdderConv2D")
    def _adder_conv2d_grad(op, grad):
        lib = _loader.library()
        x, f = op.inputs
        attrs = _grad_attrs(op)
        return (lib.addernet_adder_conv2d_backprop_input(x, f, grad, **attrs),
                lib.addernet_adder_conv2d_backprop_filter(x, f, grad, **attrs))
