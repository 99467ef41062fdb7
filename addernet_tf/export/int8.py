# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""int8 graph surgery: adder layers in a form that quantizes (docs/DESIGN.md, "int8 export")."""

import keras
import numpy as np

from addernet_tf.layers import Adder2D, Tap
from addernet_tf.ops import geometry

__all__ = ["CenteredAdder", "batch_norm_after", "int8_friendly"]


class CenteredAdder(keras.layers.Layer):
    """An `Adder2D` whose output is shifted by a per-channel constant, built to survive int8.

    Computes `geometry.centered_adder`: `−Σ|x − w| + center`. With `center` the
    following BN's moving mean negated (that BN's mean then 0), TFLite's
    per-tensor int8 ranges cover what varies between images rather than the
    layer's large mean. In float it equals the plain layer up to rounding.

    Input `[N, H, W, C_in]` with static H and W (channels last); output
    `[N, OH, OW, filters]`, as the `Adder2D` it copies.
    """

    def __init__(self, filters, kernel_size, strides, padding, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.padding = padding
        self.center = np.zeros([filters], np.float32)

    @classmethod
    def like(cls, layer):
        if layer.data_format != "channels_last":
            raise ValueError(f"int8 export supports channels_last adder layers, got "
                             f"{layer.data_format!r} in {layer.name!r}")
        return cls(layer.filters, layer.kernel_size, layer.strides, layer.padding,
                   name=layer.name)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
            trainable=False)

    def call(self, inputs):
        return geometry.centered_adder(inputs, self.kernel, self.center, self.kernel_size,
                                       self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        return geometry.output_shape(input_shape, self.filters, self.kernel_size, self.strides,
                                     self.padding)


# Layers between an adder and its BN that commute with subtracting a per-channel constant.
_SHIFT_EQUIVARIANT = (Tap, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def batch_norm_after(model):
    """{adder layer name: the BatchNormalization that alone reads its output}.

    The path from the adder to its BN may pass through `_SHIFT_EQUIVARIANT`
    layers (taps; VGG-small's pools), each the only reader of the one before.
    """
    readers = {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.input):
            readers.setdefault(id(tensor), []).append(layer)
    outputs = {id(tensor) for tensor in model.outputs}
    pairs = {}
    for layer in model.layers:
        current = layer if isinstance(layer, Adder2D) else None
        while current is not None:
            consumers = readers.get(id(current.output), [])
            if len(consumers) != 1 or id(current.output) in outputs:
                break
            current = consumers[0]
            if isinstance(current, keras.layers.BatchNormalization):
                pairs[layer.name] = current
                break
            if not isinstance(current, _SHIFT_EQUIVARIANT):
                break
    return pairs


def int8_friendly(model):
    """A copy of `model` with each adder layer a `CenteredAdder` and its BN's mean moved in.

    Adder layers not followed by a BatchNormalization keep a zero center.
    """
    def clone(layer):
        if isinstance(layer, Adder2D):
            return CenteredAdder.like(layer)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        copy.get_layer(layer.name).set_weights(layer.get_weights())
    for name, bn in batch_norm_after(model).items():
        mean = bn.moving_mean.numpy().astype(np.float64)
        adder = copy.get_layer(name)
        adder.center = (-mean).astype(np.float32)
        # The adder now outputs A − mean, so its BN normalizes around 0.
        copy.get_layer(bn.name).moving_mean.assign(np.zeros_like(mean, np.float32))
    return copy
