# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Layers, blocks and argument checks shared by every model family.

`LayerBuilder` is the one place where a CNN teacher and its ANN student differ:
each non-stem convolution is a `Conv2D` in the first and an `Adder2D` in the
second, with the same kernel shape. It also numbers the distillation taps.
The `apply_*` functions compose it into blocks; the family modules
(`resnet_cifar`, `vgg_small`, `resnet_imagenet`) compose blocks into networks.

Every tensor is channels-last `[N, H, W, C]`, whatever
`keras.config.image_data_format()` says.
"""


import keras

from addernet_tf import _validate
from addernet_tf.layers import Adder2D, Tap

__all__ = [
    "BN_MOMENTUM", "BN_EPSILON", "LayerBuilder",
    "check_model_args", "batch_norm", "relu", "apply_conv", "apply_stem",
    "apply_basic_block", "apply_bottleneck_block", "apply_classifier",
]

# PyTorch's BatchNorm2d defaults: its momentum 0.1 weighs the new batch, Keras's
# momentum weighs the running average, hence 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

_DATA_FORMAT = "channels_last"


def check_model_args(arch, num_classes, network, input_shape, adaptive_eta, implementation, name,
                     min_size=1, known_size=False):
    """Validates the arguments every model builder takes.

    Args:
      arch: the builder's name, for messages.
      num_classes, network, input_shape, adaptive_eta, implementation, name: as
        the builders take them.
      min_size: smallest height and width the network accepts.
      known_size: whether height and width must be ints (False allows None,
        for networks that end in a global pooling).

    Returns:
      `(input_shape, implementation)`: the shape as a tuple `(H, W, C)`, and the
      implementation in its current spelling (an old one warns here, once, not
      again in every layer).

    Raises:
      ValueError: naming the bad argument and its value.
    """
    _validate.positive_int(num_classes, "num_classes")
    _validate.network(network)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be a (height, width, channels) tuple, got {input_shape!r}")
    height, width, channels = input_shape
    if not _validate.is_int(channels) or channels <= 0:
        raise ValueError(
            f"`input_shape` must have a positive int channel count (channels last), "
            f"got {input_shape!r}")
    for size in (height, width):
        if size is None and not known_size:
            continue
        if not _validate.is_int(size) or size <= 0:
            allowed = "positive ints" if known_size else "positive ints or None"
            raise ValueError(
                f"`input_shape` height and width must be {allowed} for {arch}, got {input_shape!r}")
        if size < min_size:
            raise ValueError(
                f"`input_shape` {tuple(input_shape)!r} is too small for {arch}: height and width "
                f"must be at least {min_size}")
    _validate.adaptive_eta(adaptive_eta)
    implementation = _validate.implementation(implementation)
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"`name` must be a non-empty string or None, got {name!r}")
    return tuple(int(s) if s is not None else None for s in input_shape), implementation


class LayerBuilder:
    """Makes the layers of one network, in its CNN (`"cnn"`) or ANN (`"ann"`) form.

    Taps are numbered in the order they are made; the builders make layers in
    forward order, so index 0 is nearest the input.

    Args:
      network: `"cnn"` or `"ann"`.
      adaptive_eta, implementation: passed to every `Adder2D` (unused by `"cnn"`).
    """

    def __init__(self, network, adaptive_eta=0.2, implementation="auto"):
        self.network = network
        self.adaptive_eta = adaptive_eta
        self.implementation = implementation
        self.layer_taps = 0
        self.block_taps = 0

    def multiply_conv(self, x, filters, kernel_size, strides=1, padding=0, name=None):
        """A `Conv2D` in both forms (the stem), PyTorch padding, no bias.

        `[N, H, W, C] -> [N, OH, OW, filters]`, `OH = (H + 2p − k) // s + 1`.
        """
        if padding:
            x = keras.layers.ZeroPadding2D(padding, data_format=_DATA_FORMAT, name=f"{name}_pad")(x)
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="valid", use_bias=False,
            kernel_initializer="he_normal", data_format=_DATA_FORMAT, name=name)(x)

    def conv2d(self, x, filters, kernel_size, strides=1, padding=0, name=None):
        """A `Conv2D` (CNN) or an `Adder2D` (ANN): same shapes, same weights count.

        `[N, H, W, C] -> [N, OH, OW, filters]`, `OH = (H + 2p − k) // s + 1`.
        """
        if self.network == "cnn":
            return self.multiply_conv(x, filters, kernel_size, strides, padding, name)
        return Adder2D(
            filters, kernel_size, strides=strides, padding=padding,
            adaptive_eta=self.adaptive_eta, data_format=_DATA_FORMAT,
            implementation=self.implementation, name=name)(x)

    def layer_tap(self, x, fan_in, name):
        """Marks a conv/adder layer's raw output as the next `"layer"` tap."""
        x = Tap(self.layer_taps, kind="layer", fan_in=fan_in, name=name)(x)
        self.layer_taps += 1
        return x

    def block_tap(self, x, name):
        """Marks a block's output as the next `"block"` tap."""
        x = Tap(self.block_taps, kind="block", name=name)(x)
        self.block_taps += 1
        return x


def batch_norm(x, name, dtype=None):
    """`BatchNormalization` over the last axis with PyTorch's defaults."""
    return keras.layers.BatchNormalization(
        axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype, name=name)(x)


def relu(x, name):
    return keras.layers.ReLU(name=name)(x)


def apply_conv(x, builder, filters, kernel_size, strides=1, padding=0, name=None, tap=True):
    """A main-path conv/adder layer followed by its `"layer"` tap (before any BN).

    `[N, H, W, C] -> [N, OH, OW, filters]`.
    """
    fan_in = kernel_size * kernel_size * x.shape[-1]
    y = builder.conv2d(x, filters, kernel_size, strides, padding, name=name)
    if tap:
        y = builder.layer_tap(y, fan_in, name=f"{name}_tap")
    return y


def apply_stem(x, builder, filters, kernel_size, strides=1, padding=0, name="stem"):
    """Multiplication conv → BN → ReLU, in both forms, untapped.

    `[N, H, W, C] -> [N, OH, OW, filters]`.
    """
    x = builder.multiply_conv(x, filters, kernel_size, strides, padding, name=f"{name}_conv")
    x = batch_norm(x, f"{name}_bn")
    return relu(x, f"{name}_relu")


def _apply_shortcut(x, builder, filters, strides, name):
    """Identity, or a 1×1 conv/adder with `strides` + BN when the shape changes (untapped)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    x = builder.conv2d(x, filters, 1, strides, 0, name=f"{name}_shortcut_conv")
    return batch_norm(x, f"{name}_shortcut_bn")


def _apply_residual_out(y, shortcut, builder, name):
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    y = relu(y, f"{name}_out")
    return builder.block_tap(y, name=f"{name}_tap")


def apply_basic_block(x, builder, filters, strides=1, name=None):
    """ResNet basic block: 3×3 → BN → ReLU → 3×3 → BN, + shortcut, ReLU.

    The stride sits in the first 3×3. Two `"layer"` taps, one `"block"` tap.
    `[N, H, W, C] -> [N, OH, OW, filters]`, `OH = (H − 1) // strides + 1`.
    """
    y = apply_conv(x, builder, filters, 3, strides, 1, name=f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn1"), f"{name}_relu1")
    y = apply_conv(y, builder, filters, 3, 1, 1, name=f"{name}_conv2")
    y = batch_norm(y, f"{name}_bn2")
    shortcut = _apply_shortcut(x, builder, filters, strides, name)
    return _apply_residual_out(y, shortcut, builder, name)


def apply_bottleneck_block(x, builder, filters, strides=1, stride_in_1x1=True, name=None,
                           expansion=4):
    """ResNet bottleneck block, `expansion` × `filters` channels out.

    1×1 → BN → ReLU → 3×3 → BN → ReLU → 1×1 (×expansion) → BN, + shortcut, ReLU.

    `stride_in_1x1=True` is the original ResNet (v1: the first 1×1 strides);
    False strides the 3×3 (torchvision's "v1.5"). Three `"layer"` taps, one
    `"block"` tap. `[N, H, W, C] -> [N, OH, OW, filters·expansion]`.
    """
    stride_1x1, stride_3x3 = (strides, 1) if stride_in_1x1 else (1, strides)
    y = apply_conv(x, builder, filters, 1, stride_1x1, 0, name=f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn1"), f"{name}_relu1")
    y = apply_conv(y, builder, filters, 3, stride_3x3, 1, name=f"{name}_conv2")
    y = relu(batch_norm(y, f"{name}_bn2"), f"{name}_relu2")
    y = apply_conv(y, builder, filters * expansion, 1, 1, 0, name=f"{name}_conv3")
    y = batch_norm(y, f"{name}_bn3")
    shortcut = _apply_shortcut(x, builder, filters * expansion, strides, name)
    return _apply_residual_out(y, shortcut, builder, name)


def apply_classifier(x, num_classes, name="fc"):
    """`Dense(num_classes, use_bias=False)` + BN: the official 1×1-conv + BN fc.

    `[N, F] -> [N, num_classes]` logits. The BN runs in float32 so logits are
    float32 under a mixed-precision policy.
    """
    x = keras.layers.Dense(num_classes, use_bias=False, kernel_initializer="he_normal",
                           name=name)(x)
    return batch_norm(x, f"{name}_bn", dtype="float32")
