# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Distillation losses as plug-ins of the one `Distiller`.

Every loss returns a PER-EXAMPLE vector `[N]`, so the distiller can divide the
local sum by the global batch size and stay exact under any `tf.distribute`
strategy. Feature losses are Keras layers, so their own weights (PKKD's heads)
are tracked, checkpointed and saved with the distiller.

Shapes: logits `[N, K]`, labels `[N]` (int), features `[N, H, W, C]`.
"""

import keras
import tensorflow as tf

from addernet_tf.layers import kernel_heads_for_taps
from addernet_tf.layers.kernel_heads import DIRECTIONS, channel_moments

__all__ = ["TEACHER_HEADS", "cross_entropy", "kd_loss", "FeatureLoss", "KernelFeatureLoss", "NSTLoss",
           "AttentionLoss", "SimilarityLoss", "FEATURE_LOSSES"]


TEACHER_HEADS = ("fixed", "learn")


def cross_entropy(labels, logits):
    """`H(y_gt, softmax(logits))` per example: `[N]`."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def kd_loss(student_logits, teacher_logits, temperature=1.0):
    """Hinton's `T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))` per example: `[N]`.

    Equal to Eq. 14's `H(y_s, y_t)` minus the teacher's entropy, a constant for
    the student, so the gradients are the same; the KL form is 0 at a match.
    """
    t = float(temperature)
    log_p_s = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t)
    log_p_t = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t)
    return t * t * tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)


def _per_example_mean(x):
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=-1)


_MAP_VARIANCE_FLOOR = 1e-10  # relative to the mean square


def _channel_standardized(tensors):
    """Each `[N, ..., C]` tensor standardized per channel over the global batch.

    Unlike the maps' input standardization, the statistics stay in the
    gradient (as in BatchNormalization): the result is invariant to a
    channel's scale and offset, and so is its gradient. The moments are the
    global batch's (`channel_moments`).

    Returns:
      `[(standardized, shortfall)]`: `shortfall [C]` = 1 − E[standardized²] =
      floor / (variance + floor), in the gradient: 0 for any channel that is
      not flat, 1 for a constant one.
    """
    out = []
    for t, (m, v) in zip(tensors, channel_moments(tensors)):
        # Relative to the channel's mean square: float32 rounding noise of a flat or
        # saturated map (relative 6e-8) stays below the floor, a map as flat as
        # σa = 1e4 allows on standardized inputs (variance 1e-8 of 1) above it.
        floor = tf.stop_gradient(_MAP_VARIANCE_FLOOR * (v + tf.square(m)) + 1e-30)
        out.append(((t - m) * tf.math.rsqrt(v + floor), floor / (v + floor)))
    return out


class FeatureLoss(keras.layers.Layer):
    """Base: a loss on the matched taps of student and teacher.

    `call(student_features, teacher_features)` takes two equal-length lists of
    `[N, H, W, C]` tensors and returns `(per_example [N], per_tap [M] of
    batch means)`. Teacher features arrive with `tf.stop_gradient` applied:
    no feature loss reaches the teacher's trunk.
    """

    name_prefix = "feature"

    def configure(self, student_taps, teacher_taps):
        """Creates any weights from the models' `Tap` layers (default: none)."""

    def monitored(self):
        """Scalars to log beside the loss (name → tensor), e.g. σ and ‖ρ‖."""
        return {}

    def _combine(self, per_tap_per_example):
        stacked = tf.stack(per_tap_per_example, axis=0)  # [M, N]
        return tf.reduce_sum(stacked, axis=0), tf.reduce_mean(stacked, axis=1)


class KernelFeatureLoss(FeatureLoss):
    """PKKD's `L_mid` (Eq. 13): `Σ_m MSE(ρa(g(x_a^m)), ρc(h(x_c^m)))` per example.

    With `standardize_maps` (the default) each side's head output is first
    standardized per channel over the batch (statistics in the gradient), and
    per channel `1 − E[ŝ²]` and `1 − E[t̂²]` (0 unless a map is flat) are added
    to the MSE: per channel the batch mean is `2 − 2·corr(student, teacher)`,
    0 at a match, 4 for opposite maps, and 2 for unrelated ones and for a
    constant one (whose `ŝ` is 0; without the shortfall it would score 1, and
    σa → its bound would pay). So a flat map cannot win, where the plain MSE
    (`standardize_maps=False`, Eq. 13 read literally) rewards a student that
    flattens its maps (σa → its bound) while its features are still unrelated
    to the teacher's (docs/DESIGN.md).

    Args:
      kernel: Laplace (student) / Gaussian-alike (teacher) maps; False =
        identity (Table 1's "KD" and "1×1+KD" rows).
      rho: the 1×1 convolution ρ on both sides.
      sigma_a_init: σa.
      sigma_c_init: σc.
      teacher_heads: `"fixed"` (default): the teacher-side σc and ρc stay at
        their initial values, so the targets cannot move toward the student;
        `"learn"`: they learn from L_mid too (the paper calls both σ
        learnable), which lets σc run to its bound and flatten the teacher's
        maps to a constant (seen within 4 SGD steps at lr 0.1; docs/DESIGN.md).
      unit_rho: constrain every output channel of each ρ to unit norm, so
        L_mid cannot be zeroed by shrinking ρ on both sides (collapse).
      max_exponent: see `KernelMap`.
      standardize_maps: compare per-channel standardized head outputs.
      direction: `"rising"` or `"falling"` maps (see `KernelMap`).
    """

    name_prefix = "pkkd"

    def __init__(self, kernel=True, rho=True, sigma_a_init=1.0, sigma_c_init=1.0,
                 teacher_heads="fixed", unit_rho=True, max_exponent=10.0, standardize_maps=True,
                 direction="rising", **kwargs):
        super().__init__(**kwargs)
        if teacher_heads not in TEACHER_HEADS:
            raise ValueError(f"`teacher_heads` must be one of {TEACHER_HEADS}, got "
                             f"{teacher_heads!r}")
        if not isinstance(standardize_maps, bool):
            raise ValueError(f"`standardize_maps` must be True or False, got {standardize_maps!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"`direction` must be one of {DIRECTIONS}, got {direction!r}")
        self.kernel, self.rho = bool(kernel), bool(rho)
        self.sigma_a_init, self.sigma_c_init = float(sigma_a_init), float(sigma_c_init)
        self.teacher_heads_mode = teacher_heads
        self.unit_rho = bool(unit_rho)
        self.max_exponent = float(max_exponent)
        self.standardize_maps = standardize_maps
        self.direction = direction
        self.student_heads, self.teacher_heads = [], []

    def configure(self, student_taps, teacher_taps):
        constraint = keras.constraints.UnitNorm(axis=0) if self.unit_rho else None
        common = dict(kernel=self.kernel, rho=self.rho, max_exponent=self.max_exponent,
                      rho_constraint=constraint, direction=self.direction)
        self.student_heads = kernel_heads_for_taps(student_taps, "ann",
                                                   sigma_init=self.sigma_a_init, **common)
        self.teacher_heads = kernel_heads_for_taps(teacher_taps, "cnn",
                                                   sigma_init=self.sigma_c_init, **common)
        for tap, s_head, t_head in zip(student_taps, self.student_heads, self.teacher_heads):
            shape = tuple(tap.output.shape)
            s_head.build(shape)
            t_head.build(shape)
            if self.teacher_heads_mode == "fixed":
                t_head.trainable = False

    def call(self, student_features, teacher_features):
        s_out = [head(s) for head, s in zip(self.student_heads, student_features)]
        t_out = [head(t) for head, t in zip(self.teacher_heads, teacher_features)]
        if not self.standardize_maps:
            return self._combine([_per_example_mean(tf.square(s - t))
                                  for s, t in zip(s_out, t_out)])
        terms = []
        for (s, s_short), (t, t_short) in zip(_channel_standardized(s_out),
                                              _channel_standardized(t_out)):
            # The shortfalls make E[ŝ²] and E[t̂²] count as 1: a flat map scores 2,
            # as an unrelated one, and shrinking one toward the floor gains nothing.
            terms.append(_per_example_mean(tf.square(s - t))
                         + tf.reduce_mean(s_short + t_short))
        return self._combine(terms)

    def monitored(self):
        out = {}
        for side, heads in (("sigma_a", self.student_heads), ("sigma_c", self.teacher_heads)):
            for i, head in enumerate(heads):
                if head.sigma is not None:
                    out[f"{side}_{i}"] = head.sigma
        for side, heads in (("rho_a", self.student_heads), ("rho_c", self.teacher_heads)):
            for i, head in enumerate(heads):
                if head.rho_norm is not None:
                    out[f"{side}_norm_{i}"] = head.rho_norm
        return out


class NSTLoss(FeatureLoss):
    """Neuron selectivity transfer (the paper's "MMD" row), polynomial kernel.

    Per example, each channel's spatial map is flattened and L2-normalized;
    loss = squared MMD between the student's and the teacher's sets of channel
    vectors with `k(a, b) = (aᵀb + c)^d`.
    """

    name_prefix = "mmd"

    def __init__(self, degree=2, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.degree, self.offset = int(degree), float(offset)

    def _channels(self, a):
        shape = tf.shape(a)
        a = tf.transpose(tf.reshape(tf.cast(a, tf.float32), [shape[0], -1, shape[3]]), [0, 2, 1])
        return tf.math.l2_normalize(a, axis=-1)  # [N, C, HW]

    def _k(self, a, b):
        return tf.reduce_mean((tf.matmul(a, b, transpose_b=True) + self.offset) ** self.degree,
                              axis=[1, 2])

    def call(self, student_features, teacher_features):
        terms = []
        for s, t in zip(student_features, teacher_features):
            s, t = self._channels(s), self._channels(t)
            terms.append(self._k(s, s) + self._k(t, t) - 2.0 * self._k(s, t))
        return self._combine(terms)


class AttentionLoss(FeatureLoss):
    """Attention transfer: `‖Q_s − Q_t‖₂`, `Q = normalize(Σ_c |A_c|^p)` per example."""

    name_prefix = "at"

    def __init__(self, p=2, **kwargs):
        super().__init__(**kwargs)
        self.p = float(p)

    def _attention(self, a):
        q = tf.reduce_sum(tf.abs(tf.cast(a, tf.float32)) ** self.p, axis=-1)
        return tf.math.l2_normalize(tf.reshape(q, [tf.shape(q)[0], -1]), axis=-1)

    def call(self, student_features, teacher_features):
        # sqrt of a floored sum: tf.norm's gradient is NaN at an exact match.
        terms = [tf.sqrt(tf.maximum(tf.reduce_sum(
                     tf.square(self._attention(s) - self._attention(t)), axis=-1), 1e-12))
                 for s, t in zip(student_features, teacher_features)]
        return self._combine(terms)


class SimilarityLoss(FeatureLoss):
    """Similarity-preserving KD: `‖G_s − G_t‖_F² / N²`, `G` the row-normalized batch Gram.

    A batch quantity: each example of the (local) batch carries the batch's
    value, so the distiller's sum over the global batch averages replicas.
    """

    name_prefix = "sp"

    @staticmethod
    def _gram(a):
        a = tf.reshape(tf.cast(a, tf.float32), [tf.shape(a)[0], -1])
        return tf.math.l2_normalize(tf.matmul(a, a, transpose_b=True), axis=-1)

    def call(self, student_features, teacher_features):
        terms = []
        for s, t in zip(student_features, teacher_features):
            n = tf.cast(tf.shape(s)[0], tf.float32)
            value = tf.reduce_sum(tf.square(self._gram(s) - self._gram(t))) / tf.maximum(n * n, 1.0)
            terms.append(tf.fill(tf.shape(s)[:1], value))
        return self._combine(terms)


FEATURE_LOSSES = {"pkkd": KernelFeatureLoss, "mmd": NSTLoss, "at": AttentionLoss,
                  "sp": SimilarityLoss}
