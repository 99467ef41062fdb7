# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Adder convolution built only from TensorFlow ops that are TFLite builtins.

This is the slow, simple twin of the compiled `Addernet>AdderConv2D` op: the
test suite runs the same cases against both, and models exported to TFLite use
this form. The forward pass is a zero pad, then one strided slice per kernel
position (i, j) with SUB / ABS / SUM / ADD; no `tf.image.extract_patches`
(it converts to a Flex op that plain TFLite interpreters cannot run).

The gradients are the AdderNet surrogates, not the true derivative:

  dX = sum clamp(F - Xpad, -1, 1) * dY   (HardTanh; padded positions dropped)
  dF = sum (Xpad - F) * dY               (full precision, unscaled)
"""

import tensorflow as tf

from addernet_tf.ops import _args, geometry

__all__ = ["adder_conv2d_builtin"]


def _dim(t, axis):
    """Static size of `t` along `axis` as an int, else a scalar int32 tensor."""
    size = t.shape[axis]
    return int(size) if size is not None else tf.shape(t, out_type=tf.int32)[axis]


def _is_static(*values):
    return all(isinstance(v, int) for v in values)


def _maximum(a, b):
    return max(a, b) if _is_static(a, b) else tf.maximum(a, b)


def _runtime_checks(x, f, args):
    """Asserts for what `check_args` could not see at trace time.

    Returns the assert ops (empty when every dimension involved is static).
    """
    checks = []
    c_in, c_f = _dim(x, 3), _dim(f, 2)
    if not _is_static(c_in, c_f):
        checks.append(tf.debugging.Assert(
            tf.equal(c_in, c_f),
            ["`filters` expects input channels:", c_f, "but `input` has:", c_in]))
    if args.padding == "SAME":
        return checks  # SAME always pads to at least one kernel extent.
    pads = args.explicit_paddings
    for name, size, kernel, pad in (("height", _dim(x, 1), _dim(f, 0), pads[0] + pads[1]),
                                    ("width", _dim(x, 2), _dim(f, 1), pads[2] + pads[3])):
        if not _is_static(size, kernel):
            checks.append(tf.debugging.Assert(
                tf.less_equal(kernel, size + pad),
                [f"`filters` kernel {name}", kernel,
                 f"is larger than the padded `input` {name}", size + pad]))
    return checks


def _patch_slices(padded_h, padded_w, kernel_h, kernel_w, strides):
    """(begin, end, strides) of the input patch for each kernel position (i, j).

    Patch (i, j) is `xpad[:, i::sh, j::sw, :]` cut to `[N, OH, OW, C]`. Batch and
    channel axes use begin/end masks so their (possibly dynamic) sizes are
    never needed.
    """
    sh, sw = strides
    out_h = geometry.output_size(padded_h, kernel_h, sh)
    out_w = geometry.output_size(padded_w, kernel_w, sw)
    slices = []
    for i in range(kernel_h):
        # An empty patch must not end before it begins (a negative end would
        # count from the back), hence the max.
        end_h = _maximum(geometry.window_end(i, out_h, sh), i)
        for j in range(kernel_w):
            end_w = _maximum(geometry.window_end(j, out_w, sw), j)
            begin, end = [0, i, j, 0], [0, end_h, end_w, 0]
            if not _is_static(end_h, end_w):
                begin, end = tf.stack(begin), tf.stack(end)
            slices.append((begin, end, [1, sh, sw, 1]))
    return slices


_MASK = 0b1001  # begin/end masks covering the batch and channel axes


def _adder_conv2d_nhwc(x, f, args):
    """The adder convolution on NHWC input; see `adder_conv2d_builtin`."""
    kernel_h, kernel_w = int(f.shape[0]), int(f.shape[1])
    height, width = _dim(x, 1), _dim(x, 2)
    sh, sw = args.strides
    if args.padding == "SAME":
        top, bottom = geometry.same_paddings(height, kernel_h, sh, maximum=_maximum)
        left, right = geometry.same_paddings(width, kernel_w, sw, maximum=_maximum)
    else:
        top, bottom, left, right = args.explicit_paddings
    padded_h = height + top + bottom
    padded_w = width + left + right
    slices = _patch_slices(padded_h, padded_w, kernel_h, kernel_w, args.strides)

    @tf.custom_gradient
    def adder(x, f):
        pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
        if not _is_static(top, bottom, left, right):
            pads = tf.stack([tf.stack([tf.cast(p, tf.int32) for p in pair]) for pair in pads])
        xpad = tf.pad(x, pads)
        patches = [tf.strided_slice(xpad, b, e, s, begin_mask=_MASK, end_mask=_MASK)
                   for b, e, s in slices]

        def diff(k):
            """Patch k minus F[i, j], k = i * KW + j: [N, OH, OW, C, O]."""
            i, j = divmod(k, kernel_w)
            return tf.expand_dims(patches[k], -1) - f[i, j]

        acc = None
        if args.formulation == "max_identity":
            # |x - f| = 2 max(x, f) - x - f, summed: 2 Σmax - Σx - Σf.
            x_sum = None
            for k in range(len(patches)):
                i, j = divmod(k, kernel_w)
                term = tf.reduce_sum(tf.maximum(tf.expand_dims(patches[k], -1), f[i, j]), axis=3)
                acc = term if acc is None else acc + term
                term = tf.reduce_sum(patches[k], axis=3, keepdims=True)
                x_sum = term if x_sum is None else x_sum + term
            y = x_sum + tf.reduce_sum(f, axis=[0, 1, 2]) - acc * 2.0
        else:
            for k in range(len(patches)):
                term = tf.reduce_sum(tf.abs(diff(k)), axis=3)
                acc = term if acc is None else acc + term
            # `acc * -1.0` rather than `-acc`: NEG does not quantize to int8.
            y = acc * -1.0

        def grad(dy):
            dy = tf.expand_dims(dy, 3)  # [N, OH, OW, 1, O]
            xpad_shape = tf.shape(xpad)
            dxpad = None
            df_rows = []
            for k, (b, e, s) in enumerate(slices):
                # Recomputed rather than kept from the forward pass: the
                # [N, OH, OW, C, O] differences are the largest tensors here.
                d = diff(k)
                dpatch = tf.reduce_sum(tf.clip_by_value(d * -1.0, -1.0, 1.0) * dy, axis=4)
                scattered = tf.raw_ops.StridedSliceGrad(
                    shape=xpad_shape, begin=b, end=e, strides=s, dy=dpatch,
                    begin_mask=_MASK, end_mask=_MASK)
                dxpad = scattered if dxpad is None else dxpad + scattered
                df_rows.append(tf.reduce_sum(d * dy, axis=[0, 1, 2]))
            dx = tf.slice(dxpad, tf.stack([0, top, left, 0]) if not _is_static(top, left)
                          else [0, top, left, 0], tf.shape(x))
            df = tf.reshape(tf.stack(df_rows), tf.shape(f))
            return dx, df

        return y, grad

    return adder(x, f)


@tf.autograph.experimental.do_not_convert  # Python control flow here is on static values only
def adder_conv2d_builtin(input, filters, strides=1, padding="VALID",  # pylint: disable=redefined-builtin
                         data_format="NHWC", name=None, formulation="exact"):
    """Adder convolution from builtin ops (the twin of the compiled op).

    `Y[n, oh, ow, o] = -sum_{i, j, c} |Xpad[n, oh*sh + i, ow*sw + j, c] - F[i, j, c, o]|`,
    Xpad the zero-padded input (a padded position contributes |F|).

    Args:
      input: float32 or float64 `Tensor`, `[N, H, W, C]` (NHWC) or
        `[N, C, H, W]` (NCHW). N, H and W (and C) may be unknown at trace
        time, the rank may not.
      filters: `Tensor` of the same dtype, `[KH, KW, C, O]` (the `tf.nn.conv2d`
        layout), with static KH and KW.
      strides: int or `[stride_h, stride_w]` (or `[1, sh, sw, 1]`), positive.
      padding: `"VALID"`, `"SAME"` (TensorFlow's rule: OH = ceil(H / sh), the
        odd pad row/column at the bottom/right) or explicit
        `[[0, 0], [top, bottom], [left, right], [0, 0]]` (always in NHWC order).
      data_format: `"NHWC"` or `"NCHW"` (transposed to NHWC and back).
      name: optional name scope.
      formulation: `"exact"` or `"max_identity"`, as in `adder_conv2d`
        (MAXIMUM / SUM / ADD instead of SUB / ABS / SUM / ADD).

    Returns:
      `Tensor` `[N, OH, OW, O]` (NHWC) or `[N, O, OH, OW]` (NCHW), where
      OH = (H + pad_h - KH) // sh + 1 (ceil(H / sh) for SAME), likewise OW.
      Its gradients are the AdderNet surrogates:
      `dX = sum clamp(F - Xpad, -1, 1) * dY` (padding positions dropped) and
      `dF = sum (Xpad - F) * dY`.

    Raises:
      ValueError: an argument is bad in a way visible at trace time (the
        message names it and shows its value).
      tf.errors.InvalidArgumentError: at run time, when dimensions unknown at
        trace time do not fit (channel mismatch, kernel larger than the padded
        input).
    """
    with tf.name_scope(name or "adder_conv2d_builtin"):
        input = tf.convert_to_tensor(input, name="input")
        filters = tf.convert_to_tensor(filters, name="filters")
        args = _args.check_args(input, filters, strides, padding, data_format, formulation)
        if filters.shape.rank is None or None in filters.shape[:2]:
            raise ValueError(
                f"`filters` must have a static kernel height and width, got shape {filters.shape}")
        if input.shape.rank is None:
            # A run-time rank check would not be enough: graph optimization
            # evaluates the rank-4 slicing below before any assert runs.
            raise ValueError("`input` must be 4-D with a rank known at trace time, got "
                             f"shape {input.shape}")
        input = _args.to_nhwc(input, args.data_format)
        checks = _runtime_checks(input, filters, args)
        with tf.control_dependencies(checks):
            output = _adder_conv2d_nhwc(input, filters, args)
        return _args.from_nhwc(output, args.data_format)
