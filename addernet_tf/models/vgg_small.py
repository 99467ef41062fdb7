# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""VGG-small for CIFAR, as in AdderNet's Table 2."""

import keras

from addernet_tf import _validate
from addernet_tf.models import _blocks

__all__ = ["vgg_small"]

# (filters, followed by a 2×2 max pool) for the five conv/adder stages after the stem.
_STAGES = ((128, True), (256, False), (256, True), (512, False), (512, True))
_STEM_FILTERS = 128
# Three 2×2 pools with no padding: a smaller input leaves an empty feature map.
_MIN_SIZE = 8


@_validate.reads_old_network_names
def vgg_small(num_classes=10, network="ann", input_shape=(32, 32, 3), adaptive_eta=0.2,
              implementation="auto", name=None):
    """VGG-small as a CNN (`network="cnn"`) or ANN (`"ann"`).

    Stem: conv 3×3, 128, pad 1 + BN + ReLU (a multiplication in both forms).
    Then five 3×3, pad 1 conv/adder stages: 128 → pool, 256, 256 → pool,
    512, 512 → pool, each `layer [→ MaxPool 2×2] → BN → ReLU` (the pool sits
    before the BN). Flatten (H/8 · W/8 · 512 features), then
    `Dense(num_classes, use_bias=False)` + BN.

    Taps: a `"layer"` tap after each of the five conv/adder layers (raw
    output, before pool and BN) and a `"block"` tap after each stage's ReLU.

    Args:
      num_classes: logits per image.
      network: `"cnn"` (the teacher) or `"ann"` (the student; adder layers).
      input_shape: `(H, W, C)`, H and W known and ≥ 8 (the classifier flattens).
      adaptive_eta, implementation: passed to every `Adder2D`.
      name: model name, default `f"vgg_small_{network}"`.

    Returns:
      A functional `keras.Model`: `[N, H, W, C] -> [N, num_classes]` logits.
    """
    input_shape, implementation = _blocks.check_model_args(
        "vgg_small", num_classes, network, input_shape, adaptive_eta, implementation, name,
        min_size=_MIN_SIZE, known_size=True)
    builder = _blocks.LayerBuilder(network, adaptive_eta, implementation)

    inputs = keras.Input(shape=input_shape, name="images")
    x = _blocks.apply_stem(inputs, builder, _STEM_FILTERS, 3, 1, 1)
    for index, (filters, pool) in enumerate(_STAGES):
        stage = f"stage{index + 1}"
        x = _blocks.apply_conv(x, builder, filters, 3, 1, 1, name=f"{stage}_conv")
        if pool:
            x = keras.layers.MaxPool2D(2, 2, data_format="channels_last", name=f"{stage}_pool")(x)
        x = _blocks.relu(_blocks.batch_norm(x, f"{stage}_bn"), f"{stage}_relu")
        x = builder.block_tap(x, name=f"{stage}_tap")
    x = keras.layers.Flatten(data_format="channels_last", name="flatten")(x)
    logits = _blocks.apply_classifier(x, num_classes)
    return keras.Model(inputs, logits, name=name or f"vgg_small_{network}")
