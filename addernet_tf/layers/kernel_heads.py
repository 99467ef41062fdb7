# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""PKKD's kernel-map heads (Eq. 7, 8, 11, 12): σ-kernel, then a linear map ρ.

A head turns one tapped feature map of the teacher CNN or of the student ANN
into the tensor that Eq. 13's MSE compares. Heads live beside the networks,
never inside them: a trained ANN runs exactly as the vanilla ANN.
"""

import math

import keras
import tensorflow as tf

from addernet_tf import _validate
from addernet_tf._validate import positive_int, positive_number

__all__ = ["KernelMap", "KernelHead", "KERNEL_KINDS", "DIRECTIONS", "SIGMA_BOUNDS",
           "channel_moments", "kernel_heads_for_taps"]

KERNEL_KINDS = ("gaussian", "laplace", "identity")
DIRECTIONS = ("rising", "falling")

# Inputs are clipped to ±_FEATURE_LIMIT and σ to [_SIGMA_MIN, _SIGMA_MAX]: with
# these, the exponent and every partial derivative stay finite in float32
# (|z| ≤ 1e15 · 1e8 / 2), so ±inf or 1e38 features give finite maps and grads.
_FEATURE_LIMIT = 1e15
_SIGMA_MIN, _SIGMA_MAX = 1e-4, 1e4
SIGMA_BOUNDS = (_SIGMA_MIN, _SIGMA_MAX)
"""σ is clipped to this range when read; `sigma_init` must lie in it."""
_STD_FLOOR = 1e-6


def channel_moments(tensors):
    """Per-channel mean and variance of `[N, ..., C]` tensors over the global batch.

    Over every axis but the last; under a multi-replica strategy over every
    replica's examples (two all-reduces for all tensors, whose gradient is an
    all-reduce: the moments stay in the gradient unless the inputs are
    `tf.stop_gradient`-ed), as one device would compute them on the whole
    batch. Two passes (the mean, then squared deviations), so the variance
    never cancels.

    Returns:
      `[(mean [C], variance [C])]`, one pair per tensor.
    """
    ctx = tf.distribute.get_replica_context()
    axes = [list(range(len(t.shape) - 1)) for t in tensors]
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return [tf.nn.moments(t, a) for t, a in zip(tensors, axes)]
    counts = [tf.cast(tf.reduce_prod(tf.shape(t)[:-1]), t.dtype) for t in tensors]
    counts = [tf.maximum(c, 1.0) for c in ctx.all_reduce(tf.distribute.ReduceOp.SUM, counts)]
    sums = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                          [tf.reduce_sum(t, a) for t, a in zip(tensors, axes)])
    means = [s / c for s, c in zip(sums, counts)]
    squares = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [
        tf.reduce_sum(tf.square(t - m), a) for t, m, a in zip(tensors, means, axes)])
    return [(m, q / c) for m, q, c in zip(means, squares, counts)]


@keras.saving.register_keras_serializable(package="addernet_tf")
class KernelMap(keras.layers.Layer):
    """Elementwise kernel map of a conv/adder layer's output, learnable σ.

    kinds (y = the layer's raw output, standardized per channel, see below),
    with the default `direction="rising"`:
      - `"gaussian"` (CNN, Eq. 7, y = x∗f): `h = exp(y / (2σ²))`;
      - `"laplace"` (ANN, Eq. 8, y = x⊙f = −‖x − f‖₁): `g = exp(y / σ)
        = exp(−‖x − f‖₁ / σ)`, the standard Laplace kernel;
      - `"identity"`: `y` itself, no σ (the "no kernel" ablation).

    Both maps rise with their layer's output, so equal outputs give equal maps
    when `σa = 2σc²`, and an MSE between them pulls the student toward its
    teacher. `direction="falling"` negates both exponents (the signs as
    printed in Eq. 7 and 8 read with Eq. 2's `x⊙f`); docs/DESIGN.md says why
    rising is the default: it is the reading under which Eq. 8 is the Laplace
    kernel and Eq. 7's series (Theorem 1) has positive terms, and it
    compresses the long low tail of adder outputs instead of exponentiating it.

    `standardize=True` first maps each channel to `(y − μ_c) / s_c` with the
    batch's per-channel mean and standard deviation, held constant in the
    gradient. A BN follows every tapped layer, so the raw outputs' scale is
    arbitrary and drifts in training (a fixed σ over raw conv outputs blew
    up the loss 1000-fold within 6 steps); standardized, the map is Eq. 7/8 with
    bandwidth σ·s_c, times a per-channel constant `exp(±μ_c/…)` that a linear
    ρ absorbs, and σ ~ 1 is meaningful at every layer. The heads only run in
    training, so batch statistics are always at hand; under a multi-replica
    strategy they are the global batch's (one all-reduce).

    σ is kept positive by learning log σ (clipped to `SIGMA_BOUNDS` when read).
    Numerically safe: with z the exponent above, the map returns
    `exp(m − softplus(m − z)) = 1 / (exp(−z) + exp(−m))`, m = `max_exponent`:
    equal to `exp(z)` to a relative `exp(z − m)`, never above `exp(m)`;
    inputs are clipped to ±1e15. Values and gradients are finite for any
    finite or infinite input (NaN stays NaN).

    Args:
      kind: one of `KERNEL_KINDS`.
      sigma_init: initial σ (> 0).
      standardize: per-channel batch standardization before the map.
      max_exponent: m above (> 0).
      direction: one of `DIRECTIONS`.

    Shape: `[..., C]`; output has the input's shape and dtype.
    """

    def __init__(self, kind="gaussian", sigma_init=1.0, standardize=True, max_exponent=10.0,
                 direction="rising", **kwargs):
        super().__init__(**kwargs)
        if kind not in KERNEL_KINDS:
            raise ValueError(f"`kind` must be one of {KERNEL_KINDS}, got {kind!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"`direction` must be one of {DIRECTIONS}, got {direction!r}")
        self.kind = kind
        self.direction = direction
        self.sigma_init = positive_number(sigma_init, "sigma_init")
        if not _SIGMA_MIN <= self.sigma_init <= _SIGMA_MAX:
            raise ValueError(
                f"`sigma_init` must be in [{_SIGMA_MIN:g}, {_SIGMA_MAX:g}], got {sigma_init!r}")
        if not isinstance(standardize, bool):
            raise ValueError(f"`standardize` must be True or False, got {standardize!r}")
        self.standardize = standardize
        self.max_exponent = positive_number(max_exponent, "max_exponent")
        self.log_sigma = None

    def build(self, input_shape):
        if self.kind != "identity":
            self.log_sigma = self.add_weight(
                name="log_sigma", shape=(),
                initializer=keras.initializers.Constant(math.log(self.sigma_init)),
                trainable=True)

    @property
    def sigma(self):
        """Current σ as a scalar tensor (None for the identity map)."""
        if self.log_sigma is None:
            return None
        return tf.exp(tf.clip_by_value(tf.cast(self.log_sigma, tf.float32),
                                       math.log(_SIGMA_MIN), math.log(_SIGMA_MAX)))

    def _standardized(self, y):
        (mean, variance), = channel_moments([tf.stop_gradient(y)])
        return (y - mean) / tf.maximum(tf.sqrt(variance), _STD_FLOOR)

    def call(self, inputs):
        if self.kind == "identity":
            return self._standardized(inputs) if self.standardize else inputs
        dtype = inputs.dtype
        y = tf.clip_by_value(inputs, -_FEATURE_LIMIT, _FEATURE_LIMIT)
        if self.standardize:
            y = self._standardized(y)
        log_sigma = tf.clip_by_value(tf.cast(self.log_sigma, dtype),
                                     math.log(_SIGMA_MIN), math.log(_SIGMA_MAX))
        sign = 1.0 if self.direction == "rising" else -1.0
        if self.kind == "gaussian":
            z = y * (0.5 * sign) * tf.exp(-2.0 * log_sigma)
        else:
            z = y * sign * tf.exp(-log_sigma)
        m = tf.constant(self.max_exponent, dtype)
        return tf.exp(m - tf.nn.softplus(m - z))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, sigma_init=self.sigma_init, standardize=self.standardize,
                      max_exponent=self.max_exponent, direction=self.direction)
        return config


@keras.saving.register_keras_serializable(package="addernet_tf")
class KernelHead(keras.layers.Layer):
    """Eq. 11/12: `y^m = ρ(map(feature^m))`, ρ an optional 1×1 convolution.

    Args:
      kind, sigma_init, standardize, max_exponent, direction: the `KernelMap`.
      rho: apply ρ, a bias-free 1×1 convolution over channels (channels last)
        to `rho_filters` channels (default: the input's); False gives the
        "no 1×1" rows of Table 1.
      rho_initializer: default `"identity"`, so ρ starts as a no-op.
      rho_constraint: e.g. `keras.constraints.UnitNorm(axis=0)` to keep every
        output channel of ρ at norm 1 (a guard against ρ → 0 collapse).

    Input shape: `[N, H, W, C]`. Output: `[N, H, W, rho_filters or C]`.
    """

    def __init__(self, kind="gaussian", sigma_init=1.0, standardize=True, max_exponent=10.0,
                 rho=True, rho_filters=None, rho_initializer="identity", rho_constraint=None,
                 direction="rising", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rho, bool):
            raise ValueError(f"`rho` must be True or False, got {rho!r}")
        positive_int(rho_filters, "rho_filters", none_ok=True)
        self.map = KernelMap(kind, sigma_init, standardize, max_exponent, direction, name="map")
        self.rho = rho
        self.rho_filters = rho_filters
        self.rho_initializer = keras.initializers.get(rho_initializer)
        self.rho_constraint = keras.constraints.get(rho_constraint)
        self.rho_layer = None

    def build(self, input_shape):
        self.map.build(input_shape)
        if self.rho:
            self.rho_layer = keras.layers.Dense(
                self.rho_filters or input_shape[-1], use_bias=False,
                kernel_initializer=self.rho_initializer,
                kernel_constraint=self.rho_constraint, name="rho")
            self.rho_layer.build(input_shape)

    @property
    def sigma(self):
        return self.map.sigma

    @property
    def rho_norm(self):
        """‖ρ‖_F as a scalar tensor, or None without ρ (watch it for collapse)."""
        if self.rho_layer is None:
            return None
        return tf.norm(tf.convert_to_tensor(self.rho_layer.kernel))

    def call(self, inputs):
        y = self.map(inputs)
        return self.rho_layer(y) if self.rho_layer is not None else y

    def compute_output_shape(self, input_shape):
        if not self.rho:
            return input_shape
        return (*input_shape[:-1], self.rho_filters or input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.map.kind, sigma_init=self.map.sigma_init,
                      standardize=self.map.standardize, max_exponent=self.map.max_exponent,
                      direction=self.map.direction, rho=self.rho, rho_filters=self.rho_filters,
                      rho_initializer=keras.initializers.serialize(self.rho_initializer),
                      rho_constraint=keras.constraints.serialize(self.rho_constraint))
        return config


def kernel_heads_for_taps(taps, network, kernel=True, rho=True, sigma_init=1.0,
                          standardize=True, max_exponent=10.0, rho_constraint=None,
                          name_prefix=None, direction="rising"):
    """One `KernelHead` per tap of a teacher CNN or a student ANN.

    Args:
      taps: the model's `Tap` layers in order (`addernet_tf.models.tap_layers`).
      network: `"cnn"` (Gaussian-alike map) or `"ann"` (Laplace map).
      kernel: False gives identity maps (the "no kernel" ablation).
      rho: whether each head has its 1×1 convolution ρ.
      sigma_init: σc for `"cnn"`, σa for `"ann"`.
      standardize, max_exponent: see `KernelMap`.
      rho_constraint: see `KernelHead`.
      direction: see `KernelMap`.
      name_prefix: head names are `f"{name_prefix}_{index}"` (default
        `f"{network}_head"`).

    Returns:
      A list of unbuilt `KernelHead`s, aligned with `taps`.
    """
    _validate.network(network)
    prefix = name_prefix or f"{network}_head"
    heads = []
    for tap in taps:
        kind = "identity" if not kernel else "gaussian" if network == "cnn" else "laplace"
        heads.append(KernelHead(kind, sigma_init, standardize, max_exponent, rho=rho,
                                rho_constraint=rho_constraint, direction=direction,
                                name=f"{prefix}_{tap.index}"))
    return heads
