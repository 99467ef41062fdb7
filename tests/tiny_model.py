# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A small Keras CNN for tests whose subject is not the network (saves, resumes, CLIs).

The trainer takes it by name, `--model=tests.tiny_model:cnn` (run from the
repository root), and adderizes it: the stem and the classifier stay
multiplications, the two middle convolutions become adder layers, each with a
"layer" tap. A tiny run of it traces and saves ~4× faster than ResNet-20.
"""

import keras

SPEC = "tests.tiny_model:cnn"


def cnn(num_classes=10, input_shape=(8, 8, 3)):
    """`[N, H, W, 3]` images → `[N, num_classes]` logits; three 3×3 convs, no biases."""
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = inputs
    for name, filters, strides in (("stem", 8, 1), ("middle", 8, 1), ("down", 16, 2)):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                          name=name)(x)
        x = layers.ReLU()(layers.BatchNormalization(name=f"{name}_bn")(x))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="classifier")(x), name="tiny")
