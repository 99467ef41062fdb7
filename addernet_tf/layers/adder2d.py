# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`Adder2D`: the Keras 3 layer over the adder convolution op."""

import math

import keras
import tensorflow as tf

from addernet_tf import _validate
from addernet_tf.ops import adder_conv2d, adder_conv2d_builtin, geometry

__all__ = ["Adder2D", "adaptive_gradient"]


def adaptive_gradient(kernel, eta):
    """Identity on `kernel` whose gradient is AdderNet's adaptive one.

    The gradient `g` arriving at the returned tensor leaves as
    `eta · sqrt(k) · g / max(‖g‖₂, 1e-12)` (k = `kernel`'s number of
    elements; the floor, AdderNet's, keeps a zero gradient zero). Under a multi-replica `tf.distribute` strategy the
    norm is that of the global gradient (one all-reduce), and each replica
    returns its 1/replicas share, so after the optimizer's sum all-reduce every
    replica applies exactly what a single device would.
    """
    scale = float(eta) * math.sqrt(kernel.shape.num_elements())

    @tf.custom_gradient
    def _identity(k):
        def grad(g):
            replicas = 1
            ctx = tf.distribute.get_replica_context()
            if ctx is not None and ctx.num_replicas_in_sync > 1:
                replicas = ctx.num_replicas_in_sync
                g = ctx.all_reduce(tf.distribute.ReduceOp.SUM, g)
            # ‖g‖ as m·‖g/m‖ so that huge gradients do not overflow the squares.
            m = tf.reduce_max(tf.abs(g))
            safe_m = tf.where(m > 0, m, tf.ones_like(m))
            norm = safe_m * tf.norm(g / safe_m)
            return g * (scale / replicas) / tf.maximum(norm, 1e-12)

        return tf.identity(k), grad

    return _identity(kernel)


@keras.saving.register_keras_serializable(package="addernet_tf")
class Adder2D(keras.layers.Layer):
    """2-D adder convolution: `y = -Σ_{i,j,c} |x − w|` over each window (no bias).

    The multiplication-free counterpart of `keras.layers.Conv2D(use_bias=False)`,
    with the same kernel shape `[KH, KW, C_in, filters]`, so a CNN and its ANN
    have identical parameter counts.

    Args:
      filters: number of output channels (> 0).
      kernel_size: int or `(kh, kw)`.
      strides: int or `(sh, sw)`.
      padding: `"valid"`, `"same"` (TensorFlow's rule), or an int / `(ph, pw)`
        of symmetric zero padding as in PyTorch (`padding=1` on a 3×3, stride-2
        layer pads one row/column on every side). A padded position adds `|w|`.
      adaptive_eta: AdderNet's adaptive learning rate. When set, the gradient
        that reaches `kernel` (through any `tf.GradientTape`, so any optimizer
        sees it) is `adaptive_eta · sqrt(k) · dW / ‖dW‖₂`, k = kernel elements;
        `None` leaves the op's full-precision `dW = Σ (x − w)·dy` unscaled.
        It is scale-invariant, so don't combine it with loss scaling
        (`mixed_float16`'s `LossScaleOptimizer`).
      data_format: `"channels_last"` (default) or `"channels_first"`.
      kernel_initializer: default `RandomNormal(0, 1)`, as in AdderNet.
      kernel_regularizer, kernel_constraint: as in `Conv2D`.
      implementation: `"auto"` (the compiled op when it is loaded, else the
        builtin-op twin) or `"builtin"` (always the twin: builtin ops only,
        for TFLite export). `"reference"`, the spelling before 0.2, is read as
        `"builtin"` with a DeprecationWarning (older `.keras` files hold it).
      formulation: `"exact"` (default) or `"max_identity"`, the forward sum
        as `2·Σmax(x, w) − Σx − Σw`: faster on CPUs, rounded differently (see
        `addernet_tf.ops.adder_conv2d`); meant for inference, gradients alike.

    Input shape: `[N, H, W, C_in]` (channels_last) or `[N, C_in, H, W]`.
    Output shape: `[N, OH, OW, filters]` (or `[N, filters, OH, OW]`), float32
    (float64 inputs under a float64 policy); under a float16/bfloat16 policy
    the layer computes in float32 and casts the result back.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 adaptive_eta=0.2, data_format=None,
                 kernel_initializer=None, kernel_regularizer=None,
                 kernel_constraint=None, implementation="auto", formulation="exact", **kwargs):
        super().__init__(**kwargs)
        _validate.positive_int(filters, "filters")
        self.filters = int(filters)
        self.kernel_size = _validate.int_pair(kernel_size, "kernel_size")
        if min(self.kernel_size) <= 0:
            raise ValueError(f"`kernel_size` must be positive, got {kernel_size!r}")
        self.strides = _validate.int_pair(strides, "strides")
        if min(self.strides) <= 0:
            raise ValueError(f"`strides` must be positive, got {strides!r}")
        if isinstance(padding, str):
            if padding.lower() not in ("valid", "same"):
                raise ValueError(
                    f'`padding` must be "valid", "same" or a non-negative int / pair, got {padding!r}')
            self.padding = padding.lower()
        else:
            try:
                pair = _validate.int_pair(padding, "padding")
            except ValueError:
                pair = None
            if pair is None or min(pair) < 0:
                raise ValueError(
                    f'`padding` must be "valid", "same" or a non-negative int / pair, got {padding!r}')
            self.padding = pair
        self.adaptive_eta = _validate.adaptive_eta(adaptive_eta)
        data_format = keras.config.image_data_format() if data_format is None else data_format
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f'`data_format` must be "channels_last" or "channels_first", got {data_format!r}')
        self.data_format = data_format
        self.implementation = _validate.implementation(implementation)
        self.formulation = _validate.choice(formulation, "formulation", _validate.FORMULATIONS)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(0.0, 1.0))
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                f"`Adder2D` needs a known number of input channels, got input shape {input_shape}")
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis: channels})
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint, trainable=True)

    def _op_padding(self):
        if isinstance(self.padding, str):
            return self.padding.upper()
        ph, pw = self.padding
        spatial = [[ph, ph], [pw, pw]]
        return ([[0, 0]] + spatial + [[0, 0]] if self.data_format == "channels_last"
                else [[0, 0], [0, 0]] + spatial)

    def call(self, inputs):
        out_dtype = inputs.dtype
        compute = tf.float64 if out_dtype == tf.float64 else tf.float32
        x = tf.cast(inputs, compute)
        kernel = tf.cast(self.kernel, compute)
        if self.adaptive_eta is not None:
            kernel = adaptive_gradient(kernel, self.adaptive_eta)
        op = adder_conv2d if self.implementation == "auto" else adder_conv2d_builtin
        y = op(x, kernel, strides=self.strides, padding=self._op_padding(),
               data_format="NHWC" if self.data_format == "channels_last" else "NCHW",
               formulation=self.formulation)
        return tf.cast(y, out_dtype)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            n, h, w, _ = input_shape
        else:
            n, _, h, w = input_shape
        sizes = []
        for size, k, s, axis in zip((h, w), self.kernel_size, self.strides, (0, 1)):
            if size is None:
                sizes.append(None)
                continue
            if self.padding == "same":
                pads = geometry.same_paddings(size, k, s)
            else:
                pads = (0, 0) if self.padding == "valid" else (self.padding[axis],) * 2
            sizes.append(geometry.output_size(size + sum(pads), k, s))
        if self.data_format == "channels_last":
            return (n, *sizes, self.filters)
        return (n, self.filters, *sizes)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            adaptive_eta=self.adaptive_eta,
            data_format=self.data_format,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            kernel_constraint=keras.constraints.serialize(self.kernel_constraint),
            implementation=self.implementation,
            formulation=self.formulation,
        )
        return config
