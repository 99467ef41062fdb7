# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Quantization-aware training (tfmot) of a run's student, to an int8 TFLite model.

    python -m addernet_tf.export.qat --model_dir=RUN --out=student_qat.tflite \\
        [--epochs=2 --steps_per_epoch=50 --learning_rate=1e-4 --batch_size=32]

The same interface as `--format=tflite_int8`. tfmot needs tf_keras, so this
Keras 3 process writes the student (graph, weights, adder centers) and the
data to an .npz, `qat_child.py` trains and converts it in a tf_keras process,
and LiteRT evaluates the result in a third (docs/DESIGN.md, "Export").
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from absl import flags, logging

from addernet_tf import _atomic, cli
from addernet_tf._validate import positive_int
from addernet_tf.export import __main__ as export_cli
from addernet_tf.export import litert, serving
from addernet_tf.export.formats import check_out
from addernet_tf.export.int8 import batch_norm_after
from addernet_tf.export.run import open_run, run_normalization, uint8_images
from addernet_tf.layers import Adder2D

__all__ = ["quantize_aware_train"]

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qat_child.py")
# Keras 3 layer configs the child needs, by key.
_CONFIG_KEYS = ("filters", "kernel_size", "strides", "padding", "use_bias", "units", "axis",
                "momentum", "epsilon", "center", "scale", "max_value", "negative_slope",
                "threshold", "pool_size", "data_format")


def _history_names(node):
    """Layer names that a Keras 3 functional config's inbound node reads, in order."""
    names = []
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            names.append(node["config"]["keras_history"][0])
        else:
            for value in node.values():
                names.extend(_history_names(value))
    elif isinstance(node, (list, tuple)):
        for value in node:
            names.extend(_history_names(value))
    return names


def _layer_names(entries):
    """["a", 0, 0] or [["a", 0, 0], ...] (a functional config's inputs/outputs) -> names."""
    if entries and isinstance(entries[0], str):
        entries = [entries]
    return [entry[0] for entry in entries]


def _layer_spec(layer, entry, arrays, centers):
    """One layer as the child rebuilds it: class, inbound names and its settings."""
    kind = type(layer).__name__
    spec = {"name": layer.name, "class": kind,
            "inbound": _history_names(entry.get("inbound_nodes", []))}
    if isinstance(layer, Adder2D):
        if layer.data_format != "channels_last":
            raise ValueError(f"QAT supports channels_last adder layers, got {layer.name!r}")
        spec.update(filters=layer.filters, kernel_size=list(layer.kernel_size),
                    strides=list(layer.strides),
                    padding=layer.padding if isinstance(layer.padding, str)
                    else [int(p) for p in layer.padding])
        arrays[f"center/{layer.name}"] = centers.get(
            layer.name, np.zeros([layer.filters], np.float32))
    elif kind == "InputLayer":
        spec["shape"] = list(layer.output.shape[1:])
    else:
        layer_config = layer.get_config()
        for key in _CONFIG_KEYS:
            if key in layer_config:
                value = layer_config[key]
                spec[key] = list(value) if isinstance(value, tuple) else value
    return spec


def _describe_student(run, data_dir, calibration_images, path):
    """Writes the rebuilt student (graph, weights, centers) of an `export.Run` and
    the data to `path` (.npz, and its layer graph to `path`.json)."""
    model, info = run.builtin, run.info
    config = model.get_config()
    after = batch_norm_after(model)
    centers = {name: -bn.moving_mean.numpy().astype(np.float32) for name, bn in after.items()}
    zeroed = {bn.name for bn in after.values()}
    layers, arrays = [], {}
    by_name = {layer.name: layer for layer in model.layers}
    for entry in config["layers"]:
        layer = by_name[entry["name"]]
        spec = _layer_spec(layer, entry, arrays, centers)
        weights = layer.get_weights()
        if layer.name in zeroed:  # BN after a centered adder: its mean moved into the adder.
            names = [w.path.split("/")[-1] for w in layer.weights]
            weights[names.index("moving_mean")] = np.zeros_like(weights[names.index("moving_mean")])
        spec["weights"] = len(weights)
        for i, value in enumerate(weights):
            arrays[f"weight/{layer.name}/{i}"] = np.asarray(value, np.float32)
        layers.append(spec)

    mean, std = run_normalization(info)
    train_images, train_labels = uint8_images(info, "train", 10 ** 9, data_dir)
    # The rebuilt student's logits on a few train images: the tf_keras twin must match them.
    probe = train_images[:64]
    reference_logits = model.predict(serving.normalize(probe, info), batch_size=litert.CHUNK,
                                     verbose=0)
    arrays.update(train_images=train_images, train_labels=train_labels,
                  calibration=train_images[:calibration_images],
                  reference_logits=np.asarray(reference_logits, np.float32))
    np.savez(path, **arrays)
    meta = {"layers": layers, "outputs": _layer_names(config["output_layers"]),
            "inputs": _layer_names(config["input_layers"]),
            "mean": list(map(float, mean)), "std": list(map(float, std)),
            "image_size": info.image_size, "num_classes": info.num_classes}
    _atomic.write_json(path + ".json", meta)


def _check_settings(epochs, steps_per_epoch, batch_size, calibration_images, eval_images,
                    learning_rate):
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                        ("batch_size", batch_size), ("calibration_images", calibration_images),
                        ("eval_images", eval_images)):
        positive_int(value, name)
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}")


def quantize_aware_train(model_dir, out, epochs=2, steps_per_epoch=50, learning_rate=1e-4,
                         batch_size=32, calibration_images=200, eval_images=1000,
                         data_dir=None, seed=0):
    """Fine-tunes a run's student with QAT (tfmot, tf_keras) and writes an int8 TFLite model.

    Args:
      model_dir: a finished `trainers.pkkd` run (opened and checked by `open_run`).
      out: the .tflite file (its directory must exist and be writable);
        written whole or not at all.
      epochs, steps_per_epoch, batch_size: the QAT fine-tuning (positive ints).
      learning_rate: Adam's learning rate (positive).
      calibration_images: train images that calibrate the float input
        normalization in front of the quantized network.
      eval_images: test images on which int8 and float are compared.
      data_dir: the tfds data directory, if not the run's own.
      seed: shuffling and initialization seed.

    Returns:
      dict: "format" ("tflite_int8_qat"), "path", "bytes", "input", "output",
      "eval_images", "float_accuracy" (the float student, Keras 3),
      "qat_int8_accuracy", "agreement" (top-1 with the float student),
      "epochs", "steps_per_epoch", "learning_rate", "qat_train_loss" and
      "qat_train_accuracy" (per epoch), "qat_train_accuracy_before" (the
      fake-quantized model on 256 train images before fine-tuning),
      "rebuild_max_logit_error" (tf_keras rebuild vs student.keras).

    Raises:
      ValueError: a bad argument or run.
      RuntimeError: the QAT child or the int8 interpreter fails.
    """
    _check_settings(epochs, steps_per_epoch, batch_size, calibration_images, eval_images,
                    learning_rate)
    out = check_out(out, "tflite_int8")
    run = open_run(model_dir)
    student, info = run.student, run.info
    data_dir = info.data_dir if data_dir is None else data_dir
    with tempfile.TemporaryDirectory(prefix="addernet_qat_") as workdir:
        npz = os.path.join(workdir, "student.npz")
        _describe_student(run, data_dir, calibration_images, npz)
        candidate = os.path.join(workdir, "qat.tflite")
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, "-P", _CHILD, npz, candidate, str(epochs), str(steps_per_epoch),
             repr(float(learning_rate)), str(batch_size), str(seed)],
            capture_output=True, text=True, env=env, cwd=workdir)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the QAT process failed ({last})")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        images, labels = uint8_images(info, "test", eval_images, data_dir)
        quantized = litert.probabilities(candidate, images, workdir).argmax(-1)
        reference = student.predict(serving.normalize(images, info), batch_size=litert.CHUNK,
                                    verbose=0).argmax(-1)
        with open(candidate, "rb") as f:
            flatbuffer = f.read()
    _atomic.write_bytes(out, flatbuffer)
    return {"format": "tflite_int8_qat", "path": out, "bytes": len(flatbuffer),
            **serving.interface(info),
            "eval_images": len(images), "float_accuracy": float(np.mean(reference == labels)),
            "qat_int8_accuracy": float(np.mean(quantized == labels)),
            "agreement": float(np.mean(quantized == reference)),
            "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "learning_rate": float(learning_rate), "qat_train_loss": child["qat_train_loss"],
            "qat_train_accuracy": child["qat_train_accuracy"],
            "qat_train_accuracy_before": child["qat_train_accuracy_before"],
            "rebuild_max_logit_error": child["rebuild_max_logit_error"]}


# ----------------------------------------------------------------------------
# Command line


def define_flags():
    flags.DEFINE_string("model_dir", None, "A finished trainers.pkkd run.")
    flags.DEFINE_string("out", None, "The int8 .tflite file to write.")
    flags.DEFINE_integer("epochs", 2, "QAT fine-tuning epochs.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", 50, "Batches per QAT epoch.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate for QAT.", lower_bound=0.0)
    flags.DEFINE_integer("batch_size", 32, "QAT batch size.", lower_bound=1)
    flags.DEFINE_integer("calibration_images", 200, "Train images calibrating the input "
                         "normalization.", lower_bound=1)
    flags.DEFINE_integer("eval_images", 1000, "Test images to evaluate on.", lower_bound=1)
    flags.DEFINE_string("data_dir", None, "The tfds data directory, if not the run's own.")
    flags.DEFINE_boolean("json", False, "Print the result as one JSON line.")


rules = export_cli.required_flags


def main(values):
    logging.set_verbosity(logging.WARNING)
    result = quantize_aware_train(
        values.model_dir, values.out, epochs=values.epochs,
        steps_per_epoch=values.steps_per_epoch, learning_rate=values.learning_rate,
        batch_size=values.batch_size, calibration_images=values.calibration_images,
        eval_images=values.eval_images, data_dir=values.data_dir)
    if values.json:
        print(json.dumps(result, sort_keys=True))
        return
    n = result["eval_images"]
    print(f"wrote QAT int8 TFLite to {result['path']}, {result['bytes']:,} bytes: "
          f"{result['input']} images (0..255) in, {result['output']} probabilities out\n"
          f"accuracy on {n} test images: QAT int8 {result['qat_int8_accuracy']:.2%}, "
          f"float student {result['float_accuracy']:.2%}; top-1 agreement "
          f"{result['agreement']:.2%}")


if __name__ == "__main__":
    cli.run("qat", define_flags, main, validate=rules)
