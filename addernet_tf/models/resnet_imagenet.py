# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""ImageNet ResNets as in AdderNet: ResNet-18 (basic blocks) and ResNet-50 (bottlenecks)."""

import keras

from addernet_tf import _validate
from addernet_tf.models import _blocks

__all__ = ["resnet18", "resnet50"]

_STAGE_FILTERS = (64, 128, 256, 512)


def _resnet_imagenet(arch, bottleneck, stage_blocks, num_classes, network, input_shape,
                     adaptive_eta, implementation, name, stride_in_1x1=True):
    """The shared ImageNet ResNet builder (see `resnet18` / `resnet50`)."""
    input_shape, implementation = _blocks.check_model_args(
        arch, num_classes, network, input_shape, adaptive_eta, implementation, name)
    builder = _blocks.LayerBuilder(network, adaptive_eta, implementation)

    inputs = keras.Input(shape=input_shape, name="images")
    x = _blocks.apply_stem(inputs, builder, 64, 7, 2, 3)
    # After a ReLU every value is ≥ 0, so zero padding equals PyTorch's -inf
    # padding of MaxPool2d(3, 2, padding=1).
    x = keras.layers.ZeroPadding2D(1, data_format="channels_last", name="stem_pool_pad")(x)
    x = keras.layers.MaxPool2D(3, 2, data_format="channels_last", name="stem_pool")(x)
    for stage, (filters, blocks) in enumerate(zip(_STAGE_FILTERS, stage_blocks)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            block_name = f"stage{stage + 1}_block{block + 1}"
            if bottleneck:
                x = _blocks.apply_bottleneck_block(x, builder, filters, strides, stride_in_1x1,
                                                   name=block_name)
            else:
                x = _blocks.apply_basic_block(x, builder, filters, strides, name=block_name)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_last", name="avg_pool")(x)
    logits = _blocks.apply_classifier(x, num_classes)
    return keras.Model(inputs, logits, name=name or f"{arch}_{network}")


@_validate.reads_old_network_names
def resnet18(num_classes=1000, network="ann", input_shape=(224, 224, 3), adaptive_eta=0.2,
             implementation="auto", name=None):
    """ResNet-18 as a CNN (`network="cnn"`) or ANN (`"ann"`).

    Stem: conv 7×7, 64, stride 2, pad 3 + BN + ReLU + max pool 3×3 stride 2
    pad 1 (multiplications / comparisons in both forms). Four stages of two
    basic blocks (3×3 → BN → ReLU → 3×3 → BN, + shortcut, ReLU) with 64, 128,
    256, 512 filters; stages 2–4 start with stride 2 and a 1×1 conv/adder + BN
    shortcut. Global average pooling, then `Dense(num_classes, use_bias=False)` + BN.

    Taps: 16 `"layer"` taps (each main-path 3×3, raw output before BN) and
    8 `"block"` taps (each block's output).

    Args:
      num_classes: logits per image.
      network: `"cnn"` (the teacher) or `"ann"` (the student; adder layers).
      input_shape: `(H, W, C)`; H and W may be None (global pooling).
      adaptive_eta, implementation: passed to every `Adder2D`.
      name: model name, default `f"resnet18_{network}"`.

    Returns:
      A functional `keras.Model`: `[N, H, W, C] -> [N, num_classes]` logits.
    """
    return _resnet_imagenet("resnet18", False, (2, 2, 2, 2), num_classes, network, input_shape,
                            adaptive_eta, implementation, name)


@_validate.reads_old_network_names
def resnet50(num_classes=1000, network="ann", input_shape=(224, 224, 3), adaptive_eta=0.2,
             implementation="auto", name=None, stride_in_1x1=True):
    """ResNet-50 as a CNN (`network="cnn"`) or ANN (`"ann"`).

    Stem as `resnet18`. Four stages of 3, 4, 6, 3 bottleneck blocks
    (1×1 → BN → ReLU → 3×3 → BN → ReLU → 1×1 (×4) → BN, + shortcut, ReLU) with
    64, 128, 256, 512 (×4 out) filters; the first block of each stage has a
    1×1 conv/adder + BN shortcut, with stride 2 in stages 2–4.

    Taps: 48 `"layer"` taps (each main-path layer, raw output before BN) and
    16 `"block"` taps (each block's output).

    Args:
      num_classes: logits per image.
      network: `"cnn"` (the teacher) or `"ann"` (the student; adder layers).
      input_shape: `(H, W, C)`; H and W may be None (global pooling).
      adaptive_eta, implementation: passed to every `Adder2D`.
      name: model name, default `f"resnet50_{network}"`.
      stride_in_1x1: True (default): the original ResNet-50 ("v1"), whose
        downsampling blocks stride in their first 1×1 layer; 3.86 G
        multiply-accumulates at 224×224, which gives the paper's 7.6 G
        additions for the ANN. False: torchvision's "v1.5", striding in the
        3×3 (4.09 G MACs).

    Returns:
      A functional `keras.Model`: `[N, H, W, C] -> [N, num_classes]` logits.
    """
    if not isinstance(stride_in_1x1, bool):
        raise ValueError(f"`stride_in_1x1` must be True or False, got {stride_in_1x1!r}")
    return _resnet_imagenet("resnet50", True, (3, 4, 6, 3), num_classes, network, input_shape,
                            adaptive_eta, implementation, name, stride_in_1x1=stride_in_1x1)
