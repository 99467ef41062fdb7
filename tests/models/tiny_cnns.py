# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Small ordinary Keras CNNs for the adderize tests (importable as `tiny_cnns:<name>`)."""

import keras

L = keras.layers


def residual(num_classes=10, input_shape=(16, 16, 3)):
    """Functional: a stem, a residual pair (one with BN, one with a fused ReLU and
    none), a depthwise and a dilated conv, a strided 1×1 conv, a dense classifier."""
    inputs = keras.Input(input_shape)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", name="stem")(inputs)))
    y = L.Conv2D(8, 3, padding="same", use_bias=False, name="with_bn")(x)
    y = L.ReLU()(L.BatchNormalization()(y))
    y = L.Conv2D(8, 3, padding="same", activation="relu", name="fused_relu")(y)
    x = L.Add()([x, y])
    x = L.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = L.Conv2D(8, 3, padding="same", dilation_rate=2, name="dilated")(x)
    x = L.Conv2D(8, 3, padding="same", groups=2, name="grouped")(x)
    x = L.Conv2D(16, 1, strides=2, name="pointwise")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(num_classes, name="classifier")(x), name="residual")


def sequential(num_classes=10, input_shape=(16, 16, 3)):
    """Sequential: conv-relu ×3 without BN, max pooling, a dense classifier."""
    return keras.Sequential([
        keras.Input(input_shape),
        L.Conv2D(8, 3, activation="relu", name="c1"),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2"),
        L.Conv2D(16, 3, padding="valid", activation="relu", name="c3"),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dense(num_classes, name="classifier"),
    ], name="sequential")
