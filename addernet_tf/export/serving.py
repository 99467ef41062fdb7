# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The serving graph: uint8 images in, probabilities out, the run's normalization inside."""

import os

import keras
import numpy as np
import tensorflow as tf

from addernet_tf import _atomic
from addernet_tf.export.run import run_normalization

__all__ = ["SIGNATURE", "INPUT_NAME", "OUTPUT_NAME", "serving_archive", "write_saved_model",
           "to_tflite", "interface", "normalize"]

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def serving_archive(model, info):
    """A Keras `ExportArchive`, `serving_default`: uint8 `[N, H, W, 3]` -> probabilities `[N, K]`.

    Keras' archive (not a bare `tf.Module`) tracks Keras 3 variables so that
    the TFLite converter freezes them into constants.
    """
    mean, std = run_normalization(info)
    # One multiply-add per channel: (pixels / 255 - mean) / std.
    scale = tf.constant([1.0 / (255.0 * s) for s in std], tf.float32)
    shift = tf.constant([-m / s for m, s in zip(mean, std)], tf.float32)

    def serve(images):
        normalized = tf.cast(images, tf.float32) * scale + shift
        logits = model(normalized, training=False)
        return {OUTPUT_NAME: tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[tf.TensorSpec(
        [None, info.image_size, info.image_size, 3], tf.uint8, name=INPUT_NAME)])
    return archive


def write_saved_model(model, info, out):
    """Writes the SavedModel folder `out` whole or not at all (`_atomic.atomic_dir`)."""
    with _atomic.atomic_dir(out) as tmp:
        serving_archive(model, info).write_out(tmp, verbose=False)


def to_tflite(model, info, workdir, representative=None, custom_ops=False):
    """TFLite flatbuffer bytes of `model` behind the serving signature.

    Args:
      representative: uint8 calibration images `[n, H, W, 3]` for full-integer
        int8 quantization; None: float32.
      custom_ops: keep ops TFLite lacks (the compiled `Addernet>AdderConv2D`)
        as custom ops; otherwise builtin ops only.
    """
    saved = os.path.join(workdir, "saved_model")
    write_saved_model(model, info, saved)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
    if representative is None:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = custom_ops
    else:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
    return converter.convert()


def interface(info):
    """The serving interface, in words: {"input": ..., "output": ...}."""
    return {"input": f"uint8 [N, {info.image_size}, {info.image_size}, 3]",
            "output": f"float32 [N, {info.num_classes}]"}


def normalize(pixels, info):
    """What the serving graph computes before the network, in numpy (float32)."""
    mean, std = (np.array(v, np.float32) for v in run_normalization(info))
    return (pixels.astype(np.float32) / 255.0 - mean) / std
