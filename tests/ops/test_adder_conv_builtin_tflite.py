# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The builtin-op twin converts to TFLite with builtin ops only (no Flex)."""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import numpy_reference as npref
from addernet_tf.ops.adder_conv2d_builtin import adder_conv2d_builtin


@pytest.mark.parametrize("padding", ["SAME", [[0, 0], [1, 2], [0, 1], [0, 0]]],
                         ids=["same", "explicit"])
def test_converts_to_builtin_tflite(padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 7, 3)).astype(np.float32)
    f = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    fn = tf.function(lambda x: adder_conv2d_builtin(x, f, strides=(2, 1), padding=padding),
                     input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = npref.forward(x, f, (2, 1), padding)
    assert np.max(np.abs(y - expected)) <= 1e-5 * np.max(np.abs(expected))
