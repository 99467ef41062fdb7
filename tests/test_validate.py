# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""One positive-int check (`addernet_tf._validate.positive_int`) behind every public argument."""

import numpy as np
import pytest

from addernet_tf import data
from addernet_tf.layers import Adder2D
from addernet_tf._validate import positive_int
from addernet_tf.export import formats, qat
from addernet_tf.layers.kernel_heads import KernelHead
from addernet_tf.layers.tap import Tap
from addernet_tf.models import resnet20
from addernet_tf.trainers.bn_recalibration import BatchNormRecalibration


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_accepts_positive_ints_and_returns_ints(value):
    assert positive_int(value, "n") == int(value) and type(positive_int(value, "n")) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, True, "3", None, np.float32(4)])
def test_refuses_the_rest_naming_the_argument_and_value(value):
    with pytest.raises(ValueError) as e:
        positive_int(value, "things")
    assert str(e.value) == f"`things` must be a positive int, got {value!r}"


def test_none_passes_only_when_allowed():
    assert positive_int(None, "n", none_ok=True) is None
    with pytest.raises(ValueError, match=r"^`n` must be a positive int or None, got 0$"):
        positive_int(0, "n", none_ok=True)


@pytest.mark.parametrize("build,message", [
    (lambda: Adder2D(0, 3), "`filters` must be a positive int, got 0"),
    (lambda: KernelHead(rho_filters=-1), "`rho_filters` must be a positive int or None, got -1"),
    (lambda: Tap(0, fan_in=1.5), "`fan_in` must be a positive int or None, got 1.5"),
    (lambda: resnet20(num_classes=0), "`num_classes` must be a positive int, got 0"),
    (lambda: data.load("digits", batch_size=0), "`batch_size` must be a positive int or None"),
    (lambda: data.load("digits", image_size=True), "`image_size` must be a positive int or None"),
    (lambda: BatchNormRecalibration([], None, 0), "`num_batches` must be a positive int, got 0"),
    (lambda: formats.export_tflite("unused", "x.tflite", calibration_images=0),
     "`calibration_images` must be a positive int, got 0"),
    (lambda: qat.quantize_aware_train("unused", "x.tflite", epochs=0),
     "`epochs` must be a positive int, got 0"),
], ids=["Adder2D", "KernelHead", "Tap", "resnet20", "batch_size", "image_size",
        "BatchNormRecalibration", "export_tflite", "quantize_aware_train"])
def test_every_public_argument_uses_it(build, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        build()
