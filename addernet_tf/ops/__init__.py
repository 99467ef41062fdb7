# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The adder convolution op: compiled kernels and their builtin-op twin."""

from addernet_tf.ops.adder_conv2d import active_backend, adder_conv2d
from addernet_tf.ops.adder_conv2d_builtin import adder_conv2d_builtin
from addernet_tf.ops._loader import kernel_target

__all__ = ["adder_conv2d", "adder_conv2d_builtin", "active_backend", "kernel_target"]
