# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The export formats: a run's student as a SavedModel or TFLite (float, int8, adder custom op)."""

import os
import tempfile

import numpy as np

from addernet_tf import _atomic, _validate, lite
from addernet_tf._validate import positive_int
from addernet_tf.export import litert, serving
from addernet_tf.export.int8 import adder_layers, floor_activation_scales, int8_friendly
from addernet_tf.export.run import open_run, uint8_images
from addernet_tf.layers import Adder2D
from addernet_tf.lite import int8 as lite_int8
from addernet_tf.ops import _loader

__all__ = ["FORMATS", "OPS", "check_out", "export_saved_model", "export_tflite",
           "export_tflite_adder", "export_tflite_adder_int8", "export"]

FORMATS = ("saved_model", "tflite", "tflite_int8", "tflite_adder", "tflite_adder_int8")
# How a SavedModel computes the adder layers: TensorFlow's builtin ops (portable,
# the default) or the compiled `Addernet>AdderConv2D` (needs the op library).
OPS = ("builtin", "compiled")
# Largest |probability difference| a tflite_adder file may show against the float
# student before the export refuses it (measured: 1e-6 exact, 5e-6 max identity).
ADDER_PARITY_LIMIT = 1e-3

# What a SavedModel folder holds; one holding only these (a SavedModel, or one
# that an older export left half-written) is replaced by the next export.
_SAVED_MODEL_PARTS = frozenset({"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                                "fingerprint.pb", "keras_metadata.pb"})


def check_out(out, format_name):
    """`out` as an absolute path, checked before any loading.

    Raises:
      ValueError: `out` cannot be written as `format_name` (a directory for
        saved_model, a .tflite file otherwise) in an existing, writable directory.
    """
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"`out` must be a path, got {out!r}")
    out = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(out)
    if not os.path.exists(parent):
        raise ValueError(f"`out` {out!r}: its directory {parent!r} does not exist")
    if format_name == "saved_model":
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"`out` {out!r} is a file; a SavedModel is a directory")
        if os.path.isdir(out) and not set(os.listdir(out)) <= _SAVED_MODEL_PARTS:
            raise ValueError(f"`out` {out!r} is a non-empty directory that holds no SavedModel")
    else:
        if not out.endswith(".tflite"):
            raise ValueError(f"`out` {out!r} must end in .tflite")
        if os.path.isdir(out):
            raise ValueError(f"`out` {out!r} is a directory")
    _atomic.check_writable(parent, f"`out` {out!r}: its directory")
    return out


def _described(format_name, out, info):
    return {"format": format_name, "path": out, **serving.interface(info),
            "num_classes": info.num_classes, "image_size": info.image_size}


def export_saved_model(model_dir, out, op="builtin", formulation="exact"):
    """Writes a run's student as a SavedModel with a `serving_default` signature.

    The signature takes `images`: uint8 `[N, H, W, 3]` (0..255, RGB, at the
    run's image size) and returns `{"probabilities": float32 [N, K]}`, the
    normalization inside. With `op="builtin"` every op is a TensorFlow
    builtin, so `tf.saved_model.load(out)` works without addernet_tf. With
    `op="compiled"` the graph keeps `Addernet>AdderConv2D`, the compiled
    kernel (within 2x of conv on a CPU where the twin is far slower); the
    process that loads it must first load the op library:
    `tf.load_op_library(".../addernet_tf/ops/_adder_ops.so")` (or
    `import addernet_tf`), and TF Serving needs the same library linked in.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      out: the SavedModel directory (its parent must exist and be writable;
        an existing SavedModel there, whole or half-written, is replaced). It
        is built beside `out` and swapped in: a killed export leaves the
        previous one.
      op: one of `OPS`.
      formulation: with `op="compiled"`, how the adder layers sum a window:
        `"exact"` or `"max_identity"` (faster on CPUs, rounded differently;
        see `addernet_tf.ops.adder_conv2d`). The builtin graph is always exact.

    Returns:
      dict: "format", "path", "input", "output", "num_classes", "image_size",
      "op", "formulation".

    Raises:
      ValueError: a bad `model_dir`, `out`, `op` or `formulation`, or
        `op="compiled"` where the op library is not loaded.
    """
    if op not in OPS:
        raise ValueError(f"`op` must be one of {', '.join(OPS)}, got {op!r}")
    _validate.choice(formulation, "formulation", _validate.FORMULATIONS)
    if formulation != "exact" and op != "compiled":
        raise ValueError(f"`formulation` {formulation!r} needs op='compiled' (the builtin "
                         "graph gains nothing from it), got op={op!r}")
    out = check_out(out, "saved_model")
    if op == "compiled" and _loader.library() is None:
        raise ValueError(f"op='compiled' needs the compiled adder op, which is not loaded "
                         f"({_loader.load_error()})")
    run = open_run(model_dir)
    model = run.student if op == "compiled" else run.builtin
    _set_formulation(model, formulation)
    serving.write_saved_model(model, run.info, out)
    return {**_described("saved_model", out, run.info), "op": op, "formulation": formulation}


def _set_formulation(model, formulation):
    for layer in model._flatten_layers():  # pylint: disable=protected-access
        if isinstance(layer, Adder2D):
            layer.formulation = formulation


def export_tflite(model_dir, out, int8=False, calibration_images=200, eval_images=1000,
                  data_dir=None):
    """Writes a run's student as a TFLite model (builtin ops only), float or int8.

    Both take uint8 images `[N, H, W, 3]` (0..255, at the run's image size;
    the batch dimension is resizable) and return float32 probabilities
    `[N, K]`, normalization inside. The int8 model is fully quantized (int8
    weights and activations between a QUANTIZE after the input cast and a
    DEQUANTIZE at the output), calibrated on `calibration_images` train
    images and checked against the float student on `eval_images` test
    images, in a child process; it is written only if the interpreter runs it.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      out: the .tflite file (its directory must exist and be writable); written
        whole or not at all.
      int8: full-integer quantization instead of float32.
      calibration_images, eval_images: positive ints (int8 only; each capped
        at its split's size).
      data_dir: the tfds data directory, if not the run's own (int8 only).

    Returns:
      dict: "format", "path", "bytes", "input", "output", "num_classes",
      "image_size"; for int8 also "calibration_images", "eval_images" (used),
      "agreement" (top-1 agreement with the float student, in [0, 1]),
      "widened_ranges" (int8 activations whose calibrated range was empty,
      given the minimal one: `int8.floor_activation_scales`),
      "int8_accuracy" and "float_accuracy" (on those test images).

    Raises:
      ValueError: a bad argument, `model_dir` or `out`, or missing data.
      RuntimeError: the int8 model does not run in the TFLite interpreter.
    """
    return _write_tflite("tflite_int8" if int8 else "tflite", model_dir, out,
                         calibration_images, eval_images, data_dir)


def _write_tflite(format_name, model_dir, out, calibration_images, eval_images, data_dir):
    """`export_tflite` and `export_tflite_adder_int8`: "tflite", "tflite_int8" or
    "tflite_adder_int8" written to `out` (checked first), and its dict."""
    out = check_out(out, format_name)
    for name, value in (("calibration_images", calibration_images),
                        ("eval_images", eval_images)):
        positive_int(value, name)
    if format_name == "tflite_adder_int8" and lite.load_error() is not None:
        raise ValueError(f"tflite_adder_int8 needs the LiteRT adder runner: {lite.load_error()}")
    run = open_run(model_dir)
    result = _described(format_name, out, run.info)
    with tempfile.TemporaryDirectory(prefix="addernet_export_") as workdir:
        if format_name == "tflite":
            flatbuffer = serving.to_tflite(run.builtin, run.info, workdir)
        else:
            flatbuffer, measured = _int8_model(run, workdir, calibration_images, eval_images,
                                               data_dir, adder_op=format_name != "tflite_int8")
            result.update(measured)
    _atomic.write_bytes(out, flatbuffer)
    result["bytes"] = len(flatbuffer)
    return result


def _int8_model(run, workdir, calibration_images, eval_images, data_dir, adder_op):
    """A calibrated full-integer .tflite of the run's student and how it agrees with the float one.

    With `adder_op` each adder layer is the int8 custom op (`lite.int8`),
    run by `addernet_tf.lite.Interpreter`; otherwise builtin ops.
    """
    data_dir = run.info.data_dir if data_dir is None else data_dir
    calibration, _ = uint8_images(run.info, "train", calibration_images, data_dir)
    # For the custom op each adder's BN (and ReLU) goes into its requantization.
    friendly = int8_friendly(run.builtin, fold_batch_norm=adder_op)
    flatbuffer, raised = floor_activation_scales(
        serving.to_tflite(friendly, run.info, workdir, calibration))
    if adder_op:
        flatbuffer = lite.finalize(lite_int8.fuse_adders(flatbuffer, adder_layers(friendly)))
    candidate = os.path.join(workdir, "model.tflite")
    with open(candidate, "wb") as f:
        f.write(flatbuffer)
    images, labels = uint8_images(run.info, "test", eval_images, data_dir)
    quantized = litert.probabilities(candidate, images, workdir,
                                     runner="adder" if adder_op else "interpreter").argmax(-1)
    reference = run.student.predict(serving.normalize(images, run.info),
                                    batch_size=litert.CHUNK, verbose=0).argmax(-1)
    return flatbuffer, dict(calibration_images=len(calibration), eval_images=len(images),
                            widened_ranges=raised,
                            agreement=float(np.mean(quantized == reference)),
                            int8_accuracy=float(np.mean(quantized == labels)),
                            float_accuracy=float(np.mean(reference == labels)))


def export_tflite_adder(model_dir, out, formulation="exact", eval_images=200, data_dir=None):
    """Writes a run's student as a TFLite model whose adder layers are a custom op.

    Each adder layer becomes `Addernet>AdderConv2D` (custom_ops/lite: the
    compiled CPU kernel, at its speed), the rest builtin ops; the interface
    is `export_tflite`'s. It runs where the op is registered: in Python
    `addernet_tf.lite.Interpreter(out)`, in an app `AddernetLiteRtRegister`
    (custom_ops/lite/adder_conv2d_litert.h). The file is checked in a child
    process against the float student on `eval_images` test images before
    it is written.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      out: the .tflite file (its directory must exist and be writable);
        written whole or not at all.
      formulation: "exact" or "max_identity" (see `addernet_tf.ops.adder_conv2d`).
      eval_images: a positive int (capped at the test split's size).
      data_dir: the tfds data directory, if not the run's own.

    Returns:
      dict: "format", "path", "bytes", "input", "output", "num_classes",
      "image_size", "formulation", "eval_images" (used), "max_abs_diff"
      (largest |probability difference| to the float student), "agreement"
      (top-1 agreement with it, in [0, 1]).

    Raises:
      ValueError: a bad argument, `model_dir` or `out`, missing data, or the
        compiled op or the LiteRT runner not available.
      RuntimeError: LiteRT cannot run the converted model, or its
        probabilities differ from the student's by more than
        `ADDER_PARITY_LIMIT` (nothing is written then).
    """
    out = check_out(out, "tflite_adder")
    _validate.choice(formulation, "formulation", _validate.FORMULATIONS)
    positive_int(eval_images, "eval_images")
    if _loader.library() is None:
        raise ValueError(f"tflite_adder needs the compiled adder op, which is not loaded "
                         f"({_loader.load_error()})")
    if lite.load_error() is not None:
        raise ValueError(f"tflite_adder needs the LiteRT adder runner: {lite.load_error()}")
    run = open_run(model_dir)
    _set_formulation(run.student, formulation)
    result = {**_described("tflite_adder", out, run.info), "formulation": formulation}
    with tempfile.TemporaryDirectory(prefix="addernet_export_") as workdir:
        flatbuffer = lite.finalize(serving.to_tflite(run.student, run.info, workdir,
                                                     custom_ops=True))
        candidate = os.path.join(workdir, "model.tflite")
        with open(candidate, "wb") as f:
            f.write(flatbuffer)
        data_dir = run.info.data_dir if data_dir is None else data_dir
        images, _ = uint8_images(run.info, "test", eval_images, data_dir)
        got = litert.probabilities(candidate, images, workdir, runner="adder")
        logits = run.student.predict(serving.normalize(images, run.info),
                                     batch_size=litert.CHUNK, verbose=0).astype(np.float64)
        want = np.exp(logits - logits.max(-1, keepdims=True))
        want /= want.sum(-1, keepdims=True)
        result.update(eval_images=len(images), max_abs_diff=float(np.abs(got - want).max()),
                      agreement=float(np.mean(got.argmax(-1) == want.argmax(-1))))
        if not result["max_abs_diff"] <= ADDER_PARITY_LIMIT:
            raise RuntimeError(f"the tflite_adder file's probabilities differ from the student's "
                               f"by up to {result['max_abs_diff']:.3g} (limit "
                               f"{ADDER_PARITY_LIMIT:g}); {out} not written")
    _atomic.write_bytes(out, flatbuffer)
    result["bytes"] = len(flatbuffer)
    return result


def export_tflite_adder_int8(model_dir, out, calibration_images=200, eval_images=1000,
                             data_dir=None):
    """Writes a run's student as a full-integer TFLite model with the int8 adder custom op.

    `export_tflite(int8=True)`'s model (same calibration, same interface),
    with each adder layer's builtin ops replaced by one int8
    `Addernet>AdderConv2D` (`addernet_tf.lite.int8`: sums of |x − w| on
    bytes, psadbw on x86). It runs where the op is registered, as
    `tflite_adder` files do, and is checked there against the float student.

    Args and Returns: as `export_tflite(int8=True)`; "format" is
      "tflite_adder_int8".

    Raises:
      ValueError: a bad argument, `model_dir` or `out`, missing data, the
        LiteRT runner not available, or a model whose adder layers cannot be
        fused (an adder scope the converter merged with its neighbours).
      RuntimeError: LiteRT cannot run the model.
    """
    return _write_tflite("tflite_adder_int8", model_dir, out, calibration_images, eval_images,
                         data_dir)


def export(model_dir, format, out, **kwargs):  # pylint: disable=redefined-builtin
    """`export_saved_model` or `export_tflite` by `format` (one of `FORMATS`).

    `kwargs` go to `export_saved_model` (op, formulation) for "saved_model",
    to `export_tflite` (calibration_images, eval_images, data_dir) for
    "tflite_int8", to `export_tflite_adder` (formulation, eval_images,
    data_dir) for "tflite_adder" and to `export_tflite_adder_int8`
    (calibration_images, eval_images, data_dir) for "tflite_adder_int8".
    Returns that function's dict.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "saved_model":
        if set(kwargs) - {"op", "formulation"}:
            raise ValueError(f"saved_model takes only `op` and `formulation`, got "
                             f"{sorted(kwargs)}")
        return export_saved_model(model_dir, out, **kwargs)
    if format == "tflite_adder":
        return export_tflite_adder(model_dir, out, **kwargs)
    if format == "tflite_adder_int8":
        return export_tflite_adder_int8(model_dir, out, **kwargs)
    if format == "tflite" and kwargs:
        raise ValueError(f"tflite takes no options, got {sorted(kwargs)}")
    return export_tflite(model_dir, out, int8=format == "tflite_int8", **kwargs)
