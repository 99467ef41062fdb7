# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`Tap`: an identity layer that marks a distillation point in a model."""

import keras

from addernet_tf._validate import is_int, positive_int

__all__ = ["Tap", "TAP_KINDS"]

TAP_KINDS = ("layer", "block")


@keras.saving.register_keras_serializable(package="addernet_tf")
class Tap(keras.layers.Layer):
    """Passes its input through unchanged; marks a tensor the distiller reads.

    The model builders put one `Tap` after each intermediate feature that
    PKKD's Eq. 13 may match, so a trainer finds them by type and index
    (`addernet_tf.models.taps`), never by layer names, and they survive
    `model.save` / `load_model`. An identity costs nothing at inference and
    disappears in TFLite conversion.

    Args:
      index: position of this tap among the model's taps of the same `kind`
        (0 = nearest the input).
      kind: `"layer"`: the raw output of an intermediate conv/adder layer
        (before its BN), the literal reading of Eq. 7–8; or `"block"`: the
        output of a residual block / stage (after its ReLU).
      fan_in: elements summed into each output of the producing layer
        (kh·kw·c_in) for `"layer"` taps, else None; for reference (an adder
        tap's values scale with it).
    """

    def __init__(self, index, kind="layer", fan_in=None, **kwargs):
        super().__init__(**kwargs)
        if not is_int(index) or index < 0:
            raise ValueError(f"`index` must be a non-negative int, got {index!r}")
        if kind not in TAP_KINDS:
            raise ValueError(f"`kind` must be one of {TAP_KINDS}, got {kind!r}")
        positive_int(fan_in, "fan_in", none_ok=True)
        self.index = int(index)
        self.kind = kind
        self.fan_in = None if fan_in is None else int(fan_in)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(index=self.index, kind=self.kind, fan_in=self.fan_in)
        return config
