# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Where an adder convolution's windows fall: padding, output sizes, the window loop.

Keras-free, and TensorFlow only inside `centered_adder`: the op's checks, its
builtin-op twin, `Adder2D`, int8 export and the tf_keras QAT child (which loads
this file by path, never importing addernet_tf) all use it.
"""

__all__ = ["same_paddings", "layer_paddings", "output_size", "output_shape", "window_end",
           "window_sum", "centered_adder"]


def same_paddings(size, kernel, stride, maximum=max):
    """TensorFlow's SAME rule for one axis: (before, after), the odd one after.

    The output then has ceil(size / stride) positions. `size` may be an int32
    tensor when `maximum` is `tf.maximum`.
    """
    out = (size + stride - 1) // stride
    total = maximum((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def layer_paddings(padding, sizes, kernel_size, strides):
    """`((top, bottom), (left, right))` of a layer-style `padding`.

    Args:
      padding: "valid", "same" (TensorFlow's rule) or `(ph, pw)`, symmetric
        zero padding as in PyTorch.
      sizes: `(H, W)` of the input, ints.
      kernel_size, strides: `(KH, KW)`, `(sh, sw)`.
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple(same_paddings(size, k, s) for size, k, s in zip(sizes, kernel_size, strides))
    return tuple((p, p) for p in padding)


def output_size(padded, kernel, stride):
    """Output positions along one axis of `padded` = size + both pads."""
    return (padded - kernel) // stride + 1


def output_shape(input_shape, filters, kernel_size, strides, padding):
    """`(N, OH, OW, filters)` of a layer-style adder on `(N, H, W, C)` (ints; N any)."""
    n, height, width, _ = input_shape
    pads = layer_paddings(padding, (height, width), kernel_size, strides)
    return (n, *(output_size(size + sum(pad), k, s) for size, pad, k, s in zip(
        (height, width), pads, kernel_size, strides)), filters)


def window_end(offset, out, stride):
    """Exclusive end of the rows kernel offset `offset` reads: `out` rows, `stride` apart."""
    return offset + (out - 1) * stride + 1


def window_sum(xpad, kernel_size, strides, out_hw, term):
    """`Σ_{i, j} term(patch_ij, i, j)` over the kernel offsets `(i, j)`.

    `patch_ij = xpad[:, i::sh, j::sw, :]` cut to `[N, OH, OW, C]`: the input
    each output position pairs with the kernel tap `(i, j)`.

    Args:
      xpad: the zero-padded input, `[N, Hp, Wp, C]` (anything sliceable so).
      kernel_size, strides: `(KH, KW)`, `(sh, sw)`.
      out_hw: `(OH, OW)`.
      term: `(patch, i, j) -> summand`.
    """
    (kh, kw), (sh, sw), (out_h, out_w) = kernel_size, strides, out_hw
    acc = None
    for i in range(kh):
        for j in range(kw):
            patch = xpad[:, i:window_end(i, out_h, sh):sh, j:window_end(j, out_w, sw):sw, :]
            summand = term(patch, i, j)
            acc = summand if acc is None else acc + summand
    return acc


def centered_adder(inputs, kernel, center, kernel_size, strides, padding):
    """The adder convolution in the form that survives int8, shifted by `center`.

    `y = −Σ_{i,j,c} max(x − (w + t), (w − t) − x) = −Σ_{i,j,c} |x − w| + center`,
    `t[o] = center[o] / (KH·KW·C)`.

    Args:
      inputs: float32 `[N, H, W, C]`, static H, W and C.
      kernel: `[KH, KW, C, O]`.
      center: `O` floats (numpy).
      kernel_size, strides, padding: as in `layer_paddings`.

    Returns:
      float32 `[N, OH, OW, O]`, built from TFLite builtins only (PAD, strided
      slices, SUB, MAXIMUM, SUM, ADD, MUL).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    height, width, channels = (int(d) for d in inputs.shape[1:])
    (top, bottom), (left, right) = layer_paddings(padding, (height, width), kernel_size, strides)
    xpad = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
    out_hw = (output_size(height + top + bottom, kernel_size[0], strides[0]),
              output_size(width + left + right, kernel_size[1], strides[1]))
    share = tf.constant(center / (kernel_size[0] * kernel_size[1] * channels), tf.float32)
    upper, lower = kernel + share, kernel - share

    def term(patch, i, j):
        patch = patch[..., None]
        return tf.reduce_sum(tf.maximum(patch - upper[i, j], lower[i, j] - patch), axis=3)

    return window_sum(xpad, kernel_size, strides, out_hw, term) * -1.0  # NEG has no int8 kernel
