# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""CIFAR ResNets (depth 6n + 2) as in AdderNet: ResNet-20, -32, -56."""

import keras

from addernet_tf import _validate
from addernet_tf._validate import is_int
from addernet_tf.models import _blocks

__all__ = ["resnet_cifar", "resnet20", "resnet32", "resnet56"]

_STAGE_FILTERS = (16, 32, 64)


@_validate.reads_old_network_names
def resnet_cifar(depth, num_classes=10, network="ann", input_shape=(32, 32, 3), adaptive_eta=0.2,
                 implementation="auto", name=None):
    """A CIFAR ResNet of depth 6n + 2, as a CNN (`network="cnn"`) or ANN (`"ann"`).

    Stem: conv 3×3, 16, pad 1 + BN + ReLU (a multiplication in both forms).
    Three stages of n basic blocks with 16, 32, 64 filters; the first block of
    stages 2 and 3 has stride 2 and a 1×1 conv/adder + BN shortcut. Global
    average pooling, then `Dense(num_classes, use_bias=False)` + BN.

    Taps: a `"layer"` tap after each of the 6n main-path 3×3 layers (their raw
    output, before BN) and a `"block"` tap after each of the 3n blocks.

    Args:
      depth: 6n + 2 with n ≥ 1 (20, 32, 56, 110, ...).
      num_classes: logits per image.
      network: `"cnn"` (the teacher) or `"ann"` (the student; adder layers).
      input_shape: `(H, W, C)`; H and W may be None (global pooling).
      adaptive_eta, implementation: passed to every `Adder2D`.
      name: model name, default `f"resnet{depth}_{network}"`.

    Returns:
      A functional `keras.Model`: `[N, H, W, C] -> [N, num_classes]` logits.
    """
    if not is_int(depth) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 with n >= 1 (20, 32, 56, ...), got {depth!r}")
    arch = f"resnet{depth}"
    input_shape, implementation = _blocks.check_model_args(
        arch, num_classes, network, input_shape, adaptive_eta, implementation, name)
    blocks_per_stage = (depth - 2) // 6
    builder = _blocks.LayerBuilder(network, adaptive_eta, implementation)

    inputs = keras.Input(shape=input_shape, name="images")
    x = _blocks.apply_stem(inputs, builder, 16, 3, 1, 1)
    for stage, filters in enumerate(_STAGE_FILTERS):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _blocks.apply_basic_block(x, builder, filters, strides,
                                          name=f"stage{stage + 1}_block{block + 1}")
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_last", name="avg_pool")(x)
    logits = _blocks.apply_classifier(x, num_classes)
    return keras.Model(inputs, logits, name=name or f"{arch}_{network}")


@_validate.reads_old_network_names
def resnet20(num_classes=10, network="ann", input_shape=(32, 32, 3), adaptive_eta=0.2,
             implementation="auto", name=None):
    """ResNet-20 (n = 3): 18 tapped 3×3 layers, 9 blocks. See `resnet_cifar`."""
    return resnet_cifar(20, num_classes, network, input_shape, adaptive_eta, implementation, name)


@_validate.reads_old_network_names
def resnet32(num_classes=10, network="ann", input_shape=(32, 32, 3), adaptive_eta=0.2,
             implementation="auto", name=None):
    """ResNet-32 (n = 5): 30 tapped 3×3 layers, 15 blocks. See `resnet_cifar`."""
    return resnet_cifar(32, num_classes, network, input_shape, adaptive_eta, implementation, name)


@_validate.reads_old_network_names
def resnet56(num_classes=10, network="ann", input_shape=(32, 32, 3), adaptive_eta=0.2,
             implementation="auto", name=None):
    """ResNet-56 (n = 9): 54 tapped 3×3 layers, 27 blocks. See `resnet_cifar`."""
    return resnet_cifar(56, num_classes, network, input_shape, adaptive_eta, implementation, name)
