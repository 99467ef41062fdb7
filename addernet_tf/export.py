"""Export the student of a finished training run: SavedModel, TFLite float, TFLite int8.

    python -m addernet_tf.export --model_dir=RUN --format=saved_model --out=export/student
    python -m addernet_tf.export --model_dir=RUN --format=tflite --out=student.tflite
    python -m addernet_tf.export --model_dir=RUN --format=tflite_int8 --out=student_int8.tflite

`model_dir` is a `trainers.pkkd` run: its `student.keras` and `summary.json`
(whose "flags" name the data set, image size, model and method). A run whose
summary.json does not describe its student.keras is refused (`open_run`).
Each output is written whole or not at all: built beside `--out` under a
temporary name and renamed into place.

Every format has one interface. Input: uint8 RGB images `[N, H, W, 3]`,
0..255, already at the run's image size H×W (resizing or cropping a camera
frame is the caller's job; the run's summary.json says the size). Output:
float32 class probabilities `[N, K]`. Inside, before the network, is the
normalization the run's data pipeline applied to a [0, 1] image,
`(pixels / 255 − mean) / std` per channel (`addernet_tf.data.normalization`).
The SavedModel's `serving_default` signature takes `images` and returns
`{"probabilities": ...}`.

The exported graph uses the builtin-op twin of the adder convolution
(`Adder2D(implementation="reference")`), so neither the SavedModel nor the
TFLite files need the compiled op or addernet_tf to run (plain
`tf.saved_model.load`; `ai_edge_litert`), and the TFLite files use builtin
ops only (no Flex).

int8 (full-integer post-training quantization: int8 weights and activations,
TFLite's int8 builtins) keeps that interface: the uint8 pixels are cast and
quantized inside and the int8 softmax is dequantized at the end, so a client
swaps the file without changing a line. It is calibrated on
`calibration_images` images of the run's train split (unaugmented, in the
split's fixed order, as uint8) and checked against the float student on
`eval_images` images of the test split (top-1 agreement, printed and
returned). Its graph computes each adder layer in a form that survives int8
(`_CenteredAdder`): in the plain twin, TFLite's per-tensor int8 ranges are
set by the layers' large negative means (−Σ|x − w| over KH·KW·C_in terms),
which leaves too few levels for what varies between images.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from addernet_tf import _atomic, data
from addernet_tf.layers import Adder2D, Tap
from addernet_tf.models import MODELS, get_model

__all__ = [
    "FORMATS", "RunInfo", "Run", "open_run", "run_normalization", "read_run", "load_student",
    "export_saved_model", "export_tflite", "export",
]

FORMATS = ("saved_model", "tflite", "tflite_int8")

_STUDENT = "student.keras"
_SUMMARY = "summary.json"
_SIGNATURE = "serving_default"
_INPUT_NAME = "images"
_OUTPUT_NAME = "probabilities"
# Images per interpreter call when checking an int8 model: the adder layers'
# [N, OH, OW, C, O] intermediates grow with N.
_EVAL_CHUNK = 50


class RunInfo(NamedTuple):
    """What `export` needs to know about a finished run.

    Attributes:
      model_dir: the run directory.
      dataset: the data set it trained on (a name in `addernet_tf.data.DATASETS`).
      image_size: the student's input height = width.
      model: the architecture (a key of `addernet_tf.models.MODELS`).
      conv: "adder" (an ANN student) or "conv" (a CNN, `--method=cnn`).
      num_classes: K, the student's logits per image.
      data_dir: the run's tfds data directory (None for digits / tfds' default;
        for image_folder, the folder).
      normalization: `(mean, std)` per RGB channel the run trained with, from
        its summary.json; None for runs that did not record it
        (`run_normalization` then asks `addernet_tf.data`).
    """

    model_dir: str
    dataset: str
    image_size: int
    model: str
    conv: str
    num_classes: int
    data_dir: str
    normalization: tuple = None


def run_normalization(info):
    """`(mean, std)` (3 floats each) that the run's images were normalized with."""
    if info.normalization is not None:
        return info.normalization
    return data.normalization(info.dataset, info.image_size, data_dir=info.data_dir)


# ----------------------------------------------------------------------------
# Reading a run


def _check_model_dir(model_dir):
    if not isinstance(model_dir, (str, os.PathLike)) or not os.fspath(model_dir):
        raise ValueError(f"`model_dir` must name a training run directory, got {model_dir!r}")
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise ValueError(f"`model_dir` {model_dir!r} is not a directory")
    for name in (_STUDENT, _SUMMARY):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ValueError(f"`model_dir` {model_dir!r} has no {name}: not a finished "
                             "trainers.pkkd run")
    return model_dir


def _read_flags(model_dir):
    path = os.path.join(model_dir, _SUMMARY)
    summary = _atomic.read_json(path, "the run's summary")
    run_flags = summary.get("flags") if isinstance(summary, dict) else None
    missing = [key for key in ("dataset", "model", "method")
               if not isinstance(run_flags, dict) or not isinstance(run_flags.get(key), str)]
    if missing:
        raise ValueError(f"{path} has no usable \"flags\": {', '.join(missing)} missing or "
                         "not a string")
    settings = {key: run_flags[key] for key in ("dataset", "model", "method")}
    if settings["dataset"] not in data.DATASETS:
        raise ValueError(f"{path}: unknown dataset {settings['dataset']!r}")
    if settings["model"] not in MODELS:
        raise ValueError(f"{path}: unknown model {settings['model']!r}")
    size = run_flags.get("image_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise ValueError(f"{path}: image_size must be a positive int or null, got {size!r}")
    settings["image_size"] = size
    settings["data_dir"] = run_flags.get("data_dir")
    recorded = summary.get("normalization")
    try:
        settings["normalization"] = (None if recorded is None else
                                     (tuple(map(float, recorded["mean"])),
                                      tuple(map(float, recorded["std"]))))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: \"normalization\" must hold \"mean\" and \"std\" "
                         f"lists, got {recorded!r}") from None
    return settings


def _load_keras_student(model_dir):
    path = os.path.join(model_dir, _STUDENT)
    damaged = _atomic.zip_problem(path)
    if damaged is not None:
        raise ValueError(f"{path} is not a whole Keras file (truncated or corrupt: {damaged}); "
                         "retrain the run or restore the file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file; one line says which.
        first = (str(e).splitlines() or [""])[0]
        raise ValueError(f"cannot load {path}: {type(e).__name__}: {first}") from None


def _weight_layout(model):
    """[(layer name, class, weight shapes)] of the layers that hold weights, in order."""
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
            for layer in model.layers if layer.weights]


def _layout_difference(student, twin):
    """Where `student` and `twin` differ in layer classes and weight shapes
    (names aside), as a phrase; None if they don't."""
    found, wanted = _weight_layout(student), _weight_layout(twin)
    for (name, kind, shapes), (_, twin_kind, twin_shapes) in zip(found, wanted):
        if (kind, shapes) != (twin_kind, twin_shapes):
            return f"its layer {name!r} is {kind} {shapes}, where {twin_kind} {twin_shapes} is due"
    if len(found) != len(wanted):
        return f"it has {len(found)} layers with weights, where {len(wanted)} are due"
    return None


def _checked_run(model_dir, settings, student):
    """The run's `RunInfo` and the student rebuilt from its flags, or a one-line
    ValueError naming what summary.json and student.keras disagree on."""
    summary, saved = os.path.join(model_dir, _SUMMARY), os.path.join(model_dir, _STUDENT)
    shape = tuple(student.input_shape[1:])
    expected = data.dataset_info(settings["dataset"], settings["image_size"],
                                 data_dir=settings["data_dir"]).image_shape
    if shape != expected:
        said = (f"image_size={settings['image_size']}" if settings["image_size"] is not None
                else f"dataset={settings['dataset']} at its default size")
        raise ValueError(f"{summary} says {said} ({'×'.join(map(str, expected))} images) but "
                         f"{saved} takes {'×'.join(map(str, shape))} images")
    conv = "conv" if settings["method"] == "cnn" else "adder"
    adders = sum(isinstance(layer, Adder2D) for layer in student.layers)
    if conv == "conv" and adders:
        raise ValueError(f"{summary} says method={settings['method']} (a conv student) but "
                         f"{saved} has {adders} Adder2D layers")
    if conv == "adder" and not adders:
        raise ValueError(f"{summary} says method={settings['method']} (an adder student) but "
                         f"{saved} has no Adder2D layer")
    info = RunInfo(model_dir=model_dir, dataset=settings["dataset"], image_size=int(shape[0]),
                   model=settings["model"], conv=conv,
                   num_classes=int(student.output_shape[-1]), data_dir=settings["data_dir"],
                   normalization=settings["normalization"])
    twin = get_model(info.model, num_classes=info.num_classes, conv=info.conv,
                     input_shape=(info.image_size, info.image_size, 3), adaptive_eta=None,
                     implementation="reference")
    difference = _layout_difference(student, twin)
    if difference:
        raise ValueError(f"{summary} says model={info.model} but {saved} is not a "
                         f"{info.model}: {difference}")
    return info, twin


class Run(NamedTuple):
    """A finished run, opened and checked by `open_run`.

    Attributes:
      student: student.keras as saved (the compiled adder op when it is loaded).
      reference: the same network rebuilt from the run's flags with every
        adder layer on the builtin-op twin, the trained weights copied in (what
        the exports serve).
      info: the run's `RunInfo`.
    """

    student: keras.Model
    reference: keras.Model
    info: RunInfo


def open_run(model_dir):
    """Loads a finished run's student and checks it against the run's summary.json.

    summary.json's flags must describe student.keras: its method (cnn: a
    conv student without Adder2D layers; any other: an adder student), its
    model (the same layers and weight shapes as a fresh `get_model` build)
    and its input size (the flags' image_size, or the data set's default).

    Returns:
      a `Run`: the saved student, its builtin-op rebuild and the `RunInfo`.

    Raises:
      ValueError: `model_dir` is missing, lacks student.keras or summary.json,
        one of them is torn or corrupt, or they disagree (one line saying what).
    """
    model_dir = _check_model_dir(model_dir)
    settings = _read_flags(model_dir)  # before the slow part
    student = _load_keras_student(model_dir)
    info, reference = _checked_run(model_dir, settings, student)
    reference.set_weights(student.get_weights())
    return Run(student, reference, info)


def read_run(model_dir):
    """The `RunInfo` of a finished run (`open_run`, checks included).

    Raises:
      ValueError: as `open_run`.
    """
    return open_run(model_dir).info


def load_student(model_dir, implementation="reference"):
    """The trained student of a run as a Keras model.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      implementation: "reference": rebuilt from the run's flags with every
        adder layer on the builtin-op twin and the trained weights copied in
        (what `export` serves); "auto": student.keras as saved (the compiled
        op when it is loaded).

    Returns:
      a `keras.Model`: normalized float32 images `[N, H, W, 3]` (as
      `addernet_tf.data.load` yields them) -> logits `[N, K]`.

    Raises:
      ValueError: a bad `implementation`, or as `open_run`.
    """
    if implementation not in ("auto", "reference"):
        raise ValueError(
            f"`implementation` must be 'auto' or 'reference', got {implementation!r}")
    run = open_run(model_dir)
    return run.student if implementation == "auto" else run.reference


# ----------------------------------------------------------------------------
# The serving graph


def _serving_archive(model, info):
    """A Keras `ExportArchive` with `serving_default`: uint8 images -> probabilities.

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
        return {_OUTPUT_NAME: tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(_SIGNATURE, serve, input_signature=[tf.TensorSpec(
        [None, info.image_size, info.image_size, 3], tf.uint8, name=_INPUT_NAME)])
    return archive


def _write_saved_model(model, info, out):
    """Writes the SavedModel folder `out` whole or not at all (`_atomic.atomic_dir`)."""
    with _atomic.atomic_dir(out) as tmp:
        _serving_archive(model, info).write_out(tmp, verbose=False)


# ----------------------------------------------------------------------------
# int8: adder layers in a form that quantizes


class _CenteredAdder(keras.layers.Layer):
    """An `Adder2D` whose output is shifted by a per-channel constant, built to survive int8.

    `y = −Σ_{i,j,c} max(x − (w + t), (w − t) − x) = −Σ_{i,j,c} |x − w| + center`,
    `t[o] = center[o] / (KH·KW·C_in)`, the sums over the window as in `Adder2D`.

    With `center` the following BN's moving mean negated (the BN's mean then
    becomes 0), every element and partial sum is near zero on average, so
    TFLite's per-tensor int8 ranges cover what varies between images rather
    than the layer's mean (hundreds, growing with depth, against a
    per-channel spread of tens). `max` of two SUB outputs rounds each element
    once in int8, where SUB → ABS → centering SUB round it three times.
    Measured on digits ResNet-20 students (int8 vs float top-1 agreement on
    360 test images): plain twin 34–95%, centered SUB/ABS/SUB 97%, this form
    98–99%. In float it equals the plain layer up to rounding.

    Input `[N, H, W, C_in]` with static H and W (channels last); output
    `[N, OH, OW, filters]`, as the `Adder2D` it copies.
    """

    def __init__(self, filters, kernel_size, strides, padding, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.padding = padding
        self.center = np.zeros([filters], np.float32)

    @classmethod
    def like(cls, layer):
        if layer.data_format != "channels_last":
            raise ValueError(f"int8 export supports channels_last adder layers, got "
                             f"{layer.data_format!r} in {layer.name!r}")
        return cls(layer.filters, layer.kernel_size, layer.strides, layer.padding,
                   name=layer.name)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
            trainable=False)

    def _pads(self, height, width):
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            pads = []
            for size, k, s in zip((height, width), self.kernel_size, self.strides):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        return tuple((p, p) for p in self.padding)

    def call(self, inputs):
        height, width = int(inputs.shape[1]), int(inputs.shape[2])
        (top, bottom), (left, right) = self._pads(height, width)
        x = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        out_h = (height + top + bottom - kh) // sh + 1
        out_w = (width + left + right - kw) // sw + 1
        share = tf.constant(self.center / (kh * kw * int(inputs.shape[-1])), tf.float32)
        upper, lower = self.kernel + share, self.kernel - share
        acc = None
        for i in range(kh):
            for j in range(kw):
                patch = x[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw, :, None]
                term = tf.reduce_sum(tf.maximum(patch - upper[i, j], lower[i, j] - patch), axis=3)
                acc = term if acc is None else acc + term
        return acc * -1.0  # NEG has no int8 kernel; MUL does.

    def compute_output_shape(self, input_shape):
        n, height, width, _ = input_shape
        (top, bottom), (left, right) = self._pads(height, width)
        return (n, (height + top + bottom - self.kernel_size[0]) // self.strides[0] + 1,
                (width + left + right - self.kernel_size[1]) // self.strides[1] + 1, self.filters)


# Layers between an adder and its BN that commute with subtracting a per-channel constant.
_SHIFT_EQUIVARIANT = (Tap, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _batch_norm_after(model):
    """{adder layer name: the BatchNormalization that alone reads its output}.

    The path from the adder to its BN may pass through `_SHIFT_EQUIVARIANT`
    layers (taps; VGG-small's pools), each the only reader of the one before.
    """
    readers = {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.input):
            readers.setdefault(id(tensor), []).append(layer)
    outputs = {id(tensor) for tensor in model.outputs}
    pairs = {}
    for layer in model.layers:
        current = layer if isinstance(layer, Adder2D) else None
        while current is not None:
            consumers = readers.get(id(current.output), [])
            if len(consumers) != 1 or id(current.output) in outputs:
                break
            current = consumers[0]
            if isinstance(current, keras.layers.BatchNormalization):
                pairs[layer.name] = current
                break
            if not isinstance(current, _SHIFT_EQUIVARIANT):
                break
    return pairs


def _int8_friendly(model):
    """A copy of `model` with each adder layer a `_CenteredAdder` and its BN's mean moved in.

    Adder layers not followed by a BatchNormalization keep a zero center.
    """
    def clone(layer):
        if isinstance(layer, Adder2D):
            return _CenteredAdder.like(layer)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        copy.get_layer(layer.name).set_weights(layer.get_weights())
    for name, bn in _batch_norm_after(model).items():
        mean = bn.moving_mean.numpy().astype(np.float64)
        adder = copy.get_layer(name)
        adder.center = (-mean).astype(np.float32)
        # The adder now outputs A − mean, so its BN normalizes around 0.
        copy.get_layer(bn.name).moving_mean.assign(np.zeros_like(mean, np.float32))
    return copy


# ----------------------------------------------------------------------------
# Data for calibration and checks


def _uint8_images(info, split, count, data_dir):
    """The first `count` images of a split, unaugmented, as uint8 pixels, and their labels.

    `load` yields normalized floats; undoing the normalization gives the
    [0, 1] image at the model's size, which a deployed model gets as 0..255.

    Returns:
      uint8 `[n, H, W, 3]` and int32 `[n]`, n = min(count, split size).
    """
    mean, std = (np.array(v, np.float64) for v in run_normalization(info))
    ds = data.load(info.dataset, split, batch_size=min(count, 256), image_size=info.image_size,
                   data_dir=data_dir, augment=False, shuffle=False)
    images, labels, seen = [], [], 0
    for batch_images, batch_labels in ds.as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
        seen += len(batch_labels)
        if seen >= count:
            break
    pixels = (np.concatenate(images)[:count] * std + mean) * 255.0
    return (np.clip(np.round(pixels), 0, 255).astype(np.uint8),
            np.concatenate(labels)[:count].astype(np.int32))


def _normalize(pixels, info):
    """What the serving graph computes before the network, in numpy (float32)."""
    mean, std = (np.array(v, np.float32) for v in run_normalization(info))
    return (pixels.astype(np.float32) / 255.0 - mean) / std


# ----------------------------------------------------------------------------
# Running a TFLite model in a child process

# Only numpy and the LiteRT interpreter: starts in a second, and an int8 model
# that aborts the interpreter (SIGABRT in allocate_tensors when a calibrated
# range is empty) kills this child, not the caller.
_TFLITE_RUNNER = r"""
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

model_path, images_path, out_path, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
images = np.load(images_path)
interpreter = Interpreter(model_path=model_path)
constant = [t["name"] for t in interpreter.get_tensor_details()
            if t["dtype"] == np.int8 and 0 <= t["quantization"][0] < 1e-6]
print("constant tensors:", ", ".join(constant), file=sys.stderr, flush=True)
index = interpreter.get_input_details()[0]["index"]
results = []
for start in range(0, len(images), chunk):
    batch = images[start:start + chunk]
    interpreter.resize_tensor_input(index, batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
np.save(out_path, np.concatenate(results))
"""


def _tflite_probabilities(model_path, images, workdir):
    """Runs a .tflite model on uint8 `images` in a child process; float32 `[n, K]`."""
    images_path = os.path.join(workdir, "images.npy")
    out_path = os.path.join(workdir, "probabilities.npy")
    np.save(images_path, images)
    proc = subprocess.run(
        [sys.executable, "-c", _TFLITE_RUNNER, model_path, images_path, out_path,
         str(_EVAL_CHUNK)], capture_output=True, text=True)
    if proc.returncode == 0:
        return np.load(out_path)
    if proc.returncode < 0:
        failure = f"was killed by signal {-proc.returncode}"
    else:
        failure = f"failed ({(proc.stderr.strip().splitlines() or ['no message'])[-1]})"
    constant = [line.split(":", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("constant tensors:")]
    names = sorted((name for name in (constant or [""])[0].split(", ") if name),
                   key=lambda name: name.startswith("arith.constant"))  # activations first
    hint = (f"; {len(names)} int8 tensors had a zero range in calibration (e.g. {names[0]!r}): a "
            "ReLU that never fires on the calibration images does this, so train the student "
            "longer or calibrate on more images") if names else ""
    raise RuntimeError(f"the TFLite interpreter {failure} running the int8 model{hint}")


# ----------------------------------------------------------------------------
# Exports


# What a SavedModel folder holds; one holding only these (a SavedModel, or one
# that an older export left half-written) is replaced by the next export.
_SAVED_MODEL_PARTS = frozenset({"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                                "fingerprint.pb", "keras_metadata.pb"})


def _check_out(out, format_name):
    """Fails early, before any loading, on an `out` that cannot be written."""
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


def _interface(info):
    return {"input": f"uint8 [N, {info.image_size}, {info.image_size}, 3]",
            "output": f"float32 [N, {info.num_classes}]"}


def export_saved_model(model_dir, out):
    """Writes a run's student as a SavedModel with a `serving_default` signature.

    The signature takes `images`: uint8 `[N, H, W, 3]` (0..255, RGB, at the
    run's image size) and returns `{"probabilities": float32 [N, K]}`; the
    normalization is inside and every op is a TensorFlow builtin, so
    `tf.saved_model.load(out)` works without addernet_tf.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      out: the SavedModel directory (its parent must exist and be writable;
        an existing SavedModel there, whole or half-written, is replaced). It
        is built beside `out` and swapped in: a killed export leaves the
        previous one.

    Returns:
      dict: "format", "path", "input", "output", "num_classes", "image_size".

    Raises:
      ValueError: a bad `model_dir` or `out`.
    """
    out = _check_out(out, "saved_model")
    run = open_run(model_dir)
    info = run.info
    _write_saved_model(run.reference, info, out)
    return {"format": "saved_model", "path": out, **_interface(info),
            "num_classes": info.num_classes, "image_size": info.image_size}


def _convert(model, info, workdir, representative=None):
    """TFLite flatbuffer bytes of `model` behind the serving signature, builtin ops only."""
    saved = os.path.join(workdir, "saved_model")
    _write_saved_model(model, info, saved)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[_SIGNATURE])
    if representative is None:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
    return converter.convert()


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
      "int8_accuracy" and "float_accuracy" (on those test images).

    Raises:
      ValueError: a bad argument, `model_dir` or `out`, or missing data.
      RuntimeError: the int8 model does not run in the TFLite interpreter.
    """
    format_name = "tflite_int8" if int8 else "tflite"
    out = _check_out(out, format_name)
    for name, value in (("calibration_images", calibration_images),
                        ("eval_images", eval_images)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    student, model, info = open_run(model_dir)
    result = {"format": format_name, "path": out, **_interface(info),
              "num_classes": info.num_classes, "image_size": info.image_size}
    with tempfile.TemporaryDirectory(prefix="addernet_export_") as workdir:
        if not int8:
            flatbuffer = _convert(model, info, workdir)
        else:
            data_dir = info.data_dir if data_dir is None else data_dir
            calibration, _ = _uint8_images(info, "train", calibration_images, data_dir)
            flatbuffer = _convert(_int8_friendly(model), info, workdir, calibration)
            candidate = os.path.join(workdir, "model.tflite")
            with open(candidate, "wb") as f:
                f.write(flatbuffer)
            images, labels = _uint8_images(info, "test", eval_images, data_dir)
            quantized = _tflite_probabilities(candidate, images, workdir).argmax(-1)
            reference = student.predict(_normalize(images, info), batch_size=_EVAL_CHUNK,
                                        verbose=0).argmax(-1)
            result.update(calibration_images=len(calibration), eval_images=len(images),
                          agreement=float(np.mean(quantized == reference)),
                          int8_accuracy=float(np.mean(quantized == labels)),
                          float_accuracy=float(np.mean(reference == labels)))
    _atomic.write_bytes(out, flatbuffer)
    result["bytes"] = len(flatbuffer)
    return result


def export(model_dir, format, out, **kwargs):  # pylint: disable=redefined-builtin
    """`export_saved_model` or `export_tflite` by `format` (one of `FORMATS`).

    `kwargs` go to `export_tflite` (calibration_images, eval_images,
    data_dir) for "tflite_int8". Returns that function's dict.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "saved_model":
        if kwargs:
            raise ValueError(f"saved_model takes no options, got {sorted(kwargs)}")
        return export_saved_model(model_dir, out)
    if format == "tflite" and kwargs:
        raise ValueError(f"tflite takes no options, got {sorted(kwargs)}")
    return export_tflite(model_dir, out, int8=format == "tflite_int8", **kwargs)


# ----------------------------------------------------------------------------
# Command line


def _report(result):
    size = f", {result['bytes']:,} bytes" if "bytes" in result else ""
    lines = [f"wrote {result['format']} to {result['path']}{size}: {result['input']} images "
             f"(0..255) in, {result['output']} probabilities out"]
    if "agreement" in result:
        n = result["eval_images"]
        lines.append(
            f"int8 top-1 agreement with the float student: {result['agreement']:.2%} "
            f"({round(result['agreement'] * n)}/{n} test images); accuracy int8 "
            f"{result['int8_accuracy']:.2%}, float {result['float_accuracy']:.2%}; "
            f"calibrated on {result['calibration_images']} train images")
    return "\n".join(lines)


def _main(argv):
    from absl import flags, logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines while saving
    values = flags.FLAGS
    if len(argv) > 1:
        sys.exit(f"export: unexpected arguments {argv[1:]}")
    if not values.model_dir:
        sys.exit("export: --model_dir must name a finished training run")
    if values.format not in FORMATS:
        sys.exit(f"export: --format={values.format}: must be one of {', '.join(FORMATS)}")
    if not values.out:
        sys.exit("export: --out must be given")
    kwargs = {}
    if values.format == "tflite_int8":
        kwargs = dict(calibration_images=values.calibration_images,
                      eval_images=values.eval_images, data_dir=values.data_dir)
    try:
        result = export(values.model_dir, values.format, values.out, **kwargs)
    except (ValueError, RuntimeError, OSError) as e:
        sys.exit(f"export: {(str(e).splitlines() or [type(e).__name__])[0]}")
    print(json.dumps(result, sort_keys=True) if values.json else _report(result))


def _parse_flags(argv):
    """absl's parser, but a bad flag gives one line on stderr (no usage dump)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"export: {e}")


def _run():
    # Flags exist only when this module is the program, so importing it
    # defines no `--model_dir` next to the trainer's.
    from absl import app, flags

    flags.DEFINE_string("model_dir", None, "A finished trainers.pkkd run (student.keras, "
                        "summary.json).")
    flags.DEFINE_string("format", "saved_model", f"One of {', '.join(FORMATS)}.")
    flags.DEFINE_string("out", None, "Where to write: a directory for saved_model, a .tflite "
                        "file otherwise (its parent directory must exist).")
    flags.DEFINE_integer("calibration_images", 200, "tflite_int8: train images to calibrate "
                         "on.", lower_bound=1)
    flags.DEFINE_integer("eval_images", 1000, "tflite_int8: test images on which int8 and "
                         "float are compared.", lower_bound=1)
    flags.DEFINE_string("data_dir", None, "tflite_int8: the tfds data directory, if not the "
                        "run's own.")
    flags.DEFINE_boolean("json", False, "Print the result as one JSON line (the dict `export` "
                         "returns) instead of sentences.")
    app.run(_main, flags_parser=_parse_flags)


if __name__ == "__main__":
    _run()
