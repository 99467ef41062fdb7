# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Keras 3 layers: the adder convolution, distillation taps, kernel-map heads."""

from addernet_tf.layers.adder2d import Adder2D, adaptive_gradient
from addernet_tf.layers.kernel_heads import (KERNEL_KINDS, KernelHead, KernelMap,
                                             kernel_heads_for_taps)
from addernet_tf.layers.tap import TAP_KINDS, Tap

__all__ = ["Adder2D", "adaptive_gradient", "Tap", "TAP_KINDS", "KernelMap", "KernelHead",
           "KERNEL_KINDS", "kernel_heads_for_taps"]
