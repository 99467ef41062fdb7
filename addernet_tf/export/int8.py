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

    With `int8_friendly(fold_batch_norm=True)` it also holds the BN after it
    (`scale`, `shift`: `y = scale·(−Σ|x − w| + center) + shift`) and, when
    `relu`, the ReLU after that, all in its name scope, so that
    `lite.int8.fuse_adders` folds them into the int8 op's requantization.

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
        self.scale = self.shift = None  # a folded BN's per-channel affine map
        self.relu = False

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
            y = geometry.centered_adder(inputs, self.kernel, self.center, self.kernel_size,
                                        self.strides, self.padding)
            if self.scale is not None:
                y = y * tf.constant(self.scale) + tf.constant(self.shift)
            return tf.nn.relu(y) if self.relu else y

    def compute_output_shape(self, input_shape):
        return geometry.output_shape(input_shape, self.filters, self.kernel_size, self.strides,
                                     self.padding)


class FoldedAway(keras.layers.Layer):
    """Where a BN or ReLU folded into a `CenteredAdder` was: passes its input through.

    Takes (and ignores) whatever the replaced layer was called with (`mask`,
    `training`), as `keras.models.clone_model` replays those calls.
    """

    def call(self, inputs, **kwargs):  # pylint: disable=unused-argument
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


# Layers between an adder and its BN that commute with subtracting a per-channel constant.
_SHIFT_EQUIVARIANT = (Tap, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _only_reader(model):
    """reader(layer): the one layer that reads `layer`'s output, or None (none, several,
    or the output is the model's)."""
    readers = {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.input):
            readers.setdefault(id(tensor), []).append(layer)
    outputs = {id(tensor) for tensor in model.outputs}

    def reader(layer):
        consumers = readers.get(id(layer.output), [])
        if len(consumers) != 1 or id(layer.output) in outputs:
            return None
        return consumers[0]
    return reader


def batch_norm_after(model, between=_SHIFT_EQUIVARIANT):
    """{adder layer name: the BatchNormalization that alone reads its output}.

    The path from the adder to its BN may pass through `between` layers
    (taps; VGG-small's pools), each the only reader of the one before.
    """
    reader = _only_reader(model)
    pairs = {}
    for layer in model.layers:
        current = layer if isinstance(layer, Adder2D) else None
        while current is not None:
            current = reader(current)
            if isinstance(current, keras.layers.BatchNormalization):
                pairs[layer.name] = current
                break
            if not isinstance(current, between):
                break
    return pairs


def _is_plain_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return (config.get("max_value") is None and not config.get("negative_slope")
                and not config.get("threshold"))
    return isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.relu


def int8_friendly(model, fold_batch_norm=False):
    """A copy of `model` with each adder layer a `CenteredAdder` and its BN's mean moved in.

    Adder layers not followed by a BatchNormalization keep a zero center. The
    k-th adder layer (depth first, as `_flatten_layers` lists them) becomes
    the `CenteredAdder` of index k.

    With `fold_batch_norm`, a BN that follows an adder layer through taps
    alone (no pools: a max pool does not commute with a negative scale) is
    moved into the `CenteredAdder` (`scale`, `shift`), and so is a plain
    ReLU that alone reads that BN; the layers left behind become
    `FoldedAway` pass-throughs of the same names. For the int8 custom op,
    whose requantization then applies them (`lite.int8.quantize_adder`).
    """
    adders = [layer.name for layer in model._flatten_layers()  # pylint: disable=protected-access
              if isinstance(layer, Adder2D)]
    folded, relus = {}, {}
    if fold_batch_norm:
        reader = _only_reader(model)
        folded = batch_norm_after(model, between=(Tap,))
        for name, bn in folded.items():
            after = reader(bn)
            if after is not None and _is_plain_relu(after):
                relus[name] = after
    gone = {bn.name for bn in folded.values()} | {relu.name for relu in relus.values()}

    def clone(layer):
        if isinstance(layer, Adder2D):
            return CenteredAdder.like(layer, adders.index(layer.name))
        if layer.name in gone:
            return FoldedAway(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name not in gone:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
    for name, bn in batch_norm_after(model).items():
        mean = bn.moving_mean.numpy().astype(np.float64)
        adder = copy.get_layer(name)
        adder.center = (-mean).astype(np.float32)
        if name in folded:
            # y = γ (A − mean) / sqrt(var + ε) + β = scale (A + center) + shift.
            variance = bn.moving_variance.numpy().astype(np.float64)
            gamma = bn.gamma.numpy().astype(np.float64) if bn.scale else 1.0
            beta = bn.beta.numpy().astype(np.float64) if bn.center else 0.0
            scale = gamma / np.sqrt(variance + bn.epsilon) * np.ones_like(mean)
            adder.scale = scale.astype(np.float32)
            adder.shift = (beta * np.ones_like(mean)).astype(np.float32)
            adder.relu = name in relus
        else:
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
                                                 layer.kernel_size, layer.strides),
             "scale": layer.scale, "shift": layer.shift, "relu": layer.relu}
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
