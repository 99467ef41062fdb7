# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""int8 graph surgery: adder layers in a form that quantizes (docs/DESIGN.md, "int8 export")."""

import keras
import numpy as np

from addernet_tf.layers import Adder2D, Tap
from addernet_tf.lite.int8 import SCOPE
from addernet_tf.ops import geometry

__all__ = ["CenteredAdder", "batch_norm_after", "int8_friendly", "adder_layers",
           "MIN_ACTIVATION_SCALE", "floor_activation_scales"]

MIN_ACTIVATION_SCALE = 1e-6
"""int8 step (real units) below which an activation's calibrated range counts as empty."""


class CenteredAdder(keras.layers.Layer):
    """An `Adder2D` whose output is shifted by a per-channel constant, built to survive int8.

    Computes `geometry.centered_adder`: `−Σ|x − w| + center`. With `center` the
    following BN's moving mean negated (that BN's mean then 0), TFLite's
    per-tensor int8 ranges cover what varies between images rather than the
    layer's large mean. In float it equals the plain layer up to rounding.

    Input `[N, H, W, C_in]` with static H and W (channels last); output
    `[N, OH, OW, filters]`, as the `Adder2D` it copies.
    """

    def __init__(self, filters, kernel_size, strides, padding, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = index
        self.filters = filters
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.padding = padding
        self.center = np.zeros([filters], np.float32)

    @classmethod
    def like(cls, layer, index=0):
        if layer.data_format != "channels_last":
            raise ValueError(f"int8 export supports channels_last adder layers, got "
                             f"{layer.data_format!r} in {layer.name!r}")
        return cls(layer.filters, layer.kernel_size, layer.strides, layer.padding, index,
                   name=layer.name)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
            trainable=False)

    def call(self, inputs):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        with tf.name_scope(SCOPE.format(self.index)):
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

    Adder layers not followed by a BatchNormalization keep a zero center. The
    k-th adder layer (depth first, as `_flatten_layers` lists them) becomes
    the `CenteredAdder` of index k.
    """
    adders = [layer.name for layer in model._flatten_layers()  # pylint: disable=protected-access
              if isinstance(layer, Adder2D)]

    def clone(layer):
        if isinstance(layer, Adder2D):
            return CenteredAdder.like(layer, adders.index(layer.name))
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


def adder_layers(friendly):
    """What `lite.int8.fuse_adders` needs of each `CenteredAdder` of `friendly`, by index."""
    flat = friendly._flatten_layers()  # pylint: disable=protected-access
    layers = sorted((layer for layer in flat if isinstance(layer, CenteredAdder)),
                    key=lambda layer: layer.index)
    return [{"kernel": layer.kernel.numpy(), "center": layer.center, "strides": layer.strides,
             "paddings": geometry.layer_paddings(layer.padding, tuple(layer.input.shape[1:3]),
                                                 layer.kernel_size, layer.strides)}
            for layer in layers]


def floor_activation_scales(flatbuffer, floor=MIN_ACTIVATION_SCALE):
    """A .tflite model with every int8 activation's scale raised to at least `floor`.

    A tensor that calibration saw constant (a ReLU that never fired, a layer
    of a barely trained network) gets a scale of 0 or nearly so, and the
    interpreter then fails or aborts preparing the ops around it: their
    requantization multipliers `s_in·s_w/s_out` leave int32 range. With the
    floor, such a tensor holds [zero point ± 127·floor], so it still
    represents its calibrated value (a dead ReLU's 0) exactly, and the ops
    prepare. Constant tensors (weights) are left alone: a zero or tiny
    weight scale only zeroes a multiplier.

    Args:
      flatbuffer: the model's bytes.
      floor: the smallest activation scale (> 0).

    Returns:
      `(bytes, names)`: the model, and the names of the tensors raised (the
      same bytes when there are none).
    """
    from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=import-outside-toplevel

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    int8 = 9  # tflite.TensorType.INT8
    raised = []
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            q, data = tensor.quantization, model.buffers[tensor.buffer].data
            if (tensor.type != int8 or q is None or q.scale is None or len(q.scale) == 0
                    or (data is not None and len(data) > 0)):
                continue
            scale = np.asarray(q.scale, np.float32)
            if scale.min() < floor:
                q.scale = np.maximum(scale, np.float32(floor))
                name = tensor.name
                raised.append(name.decode() if isinstance(name, bytes) else str(name))
    if not raised:
        return bytes(flatbuffer), []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), raised
