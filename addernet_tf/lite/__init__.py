# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Adder networks in LiteRT: the `Addernet>AdderConv2D` custom op and a runner.

`Interpreter(path)` runs a `tflite_adder` or `tflite_adder_int8` file (or
any single-input .tflite) with the op registered; `flatbuffer.finalize`
turns the TFLite converter's output into such a file, after `int8.fuse_adders`
for int8 models. The op's C++ kernel and its C registration call
for apps are in custom_ops/lite/ (adder_conv2d_litert.h).
"""

from addernet_tf.lite.flatbuffer import OP_NAME, adder_ops, finalize
from addernet_tf.lite.interpreter import Interpreter, kernel_target, library_path, load_error

__all__ = ["OP_NAME", "Interpreter", "adder_ops", "finalize", "kernel_target", "library_path",
           "load_error"]
