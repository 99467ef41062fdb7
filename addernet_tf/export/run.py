# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A finished training run on disk: its files, its summary.json, its checked student."""

import os
from typing import NamedTuple

import keras
import numpy as np

from addernet_tf import _atomic, _validate, data
from addernet_tf.layers import Adder2D
from addernet_tf.models import get_model, model_name_problem

__all__ = ["STUDENT", "TEACHER", "SUMMARY", "RunInfo", "Run", "read_summary", "open_run",
           "read_run", "load_student", "run_normalization", "uint8_images"]

STUDENT = "student.keras"
TEACHER = "teacher.keras"
# Written last by the trainer: its presence marks a run finished.
SUMMARY = "summary.json"


class RunInfo(NamedTuple):
    """What export needs to know about a finished run.

    Attributes:
      model_dir: the run directory.
      dataset: the data set it trained on (a name in `addernet_tf.data.DATASETS`).
      image_size: the student's input height = width.
      model: the architecture (what `addernet_tf.models.get_model` builds).
      network: "ann" (an adder student) or "cnn" (a CNN, `--method=cnn`).
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
    network: str
    num_classes: int
    data_dir: str
    normalization: tuple = None


class Run(NamedTuple):
    """A finished run, opened and checked by `open_run`.

    Attributes:
      student: student.keras as saved (the compiled adder op when it is loaded).
      builtin: the same network rebuilt from the run's flags with every
        adder layer on the builtin-op twin, the trained weights copied in (what
        the exports serve).
      info: the run's `RunInfo`.
    """

    student: keras.Model
    builtin: keras.Model
    info: RunInfo


def read_summary(model_dir):
    """The run's summary.json (what `trainers.pkkd` writes last), or None if absent.

    Raises:
      ValueError: the file is torn, unreadable or not a JSON object (one line
        naming it).
    """
    path = os.path.join(os.fspath(model_dir), SUMMARY)
    if not os.path.exists(path):
        return None
    summary = _atomic.read_json(path, "the run's summary")
    if not isinstance(summary, dict):
        raise ValueError(f"the run's summary {path} is not a JSON object")
    return summary


def run_normalization(info):
    """`(mean, std)` (3 floats each) that the run's images were normalized with."""
    if info.normalization is not None:
        return info.normalization
    return data.normalization(info.dataset, info.image_size, data_dir=info.data_dir)


def _check_model_dir(model_dir):
    if not isinstance(model_dir, (str, os.PathLike)) or not os.fspath(model_dir):
        raise ValueError(f"`model_dir` must name a training run directory, got {model_dir!r}")
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise ValueError(f"`model_dir` {model_dir!r} is not a directory")
    for name in (STUDENT, SUMMARY):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ValueError(f"`model_dir` {model_dir!r} has no {name}: not a finished "
                             "trainers.pkkd run")
    return model_dir


def _read_flags(model_dir):
    path = os.path.join(model_dir, SUMMARY)
    summary = read_summary(model_dir)
    run_flags = summary.get("flags")
    missing = [key for key in ("dataset", "model", "method")
               if not isinstance(run_flags, dict) or not isinstance(run_flags.get(key), str)]
    if missing:
        raise ValueError(f"{path} has no usable \"flags\": {', '.join(missing)} missing or "
                         "not a string")
    settings = {key: run_flags[key] for key in ("dataset", "model", "method")}
    if settings["dataset"] not in data.DATASETS:
        raise ValueError(f"{path}: unknown dataset {settings['dataset']!r}")
    if model_name_problem(settings["model"]):
        raise ValueError(f"{path}: model {settings['model']!r}: "
                         f"{model_name_problem(settings['model'])}")
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
    path = os.path.join(model_dir, STUDENT)
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
    summary, saved = os.path.join(model_dir, SUMMARY), os.path.join(model_dir, STUDENT)
    shape = tuple(student.input_shape[1:])
    expected = data.dataset_info(settings["dataset"], settings["image_size"],
                                 data_dir=settings["data_dir"]).image_shape
    if shape != expected:
        said = (f"image_size={settings['image_size']}" if settings["image_size"] is not None
                else f"dataset={settings['dataset']} at its default size")
        raise ValueError(f"{summary} says {said} ({'×'.join(map(str, expected))} images) but "
                         f"{saved} takes {'×'.join(map(str, shape))} images")
    network = "cnn" if settings["method"] == "cnn" else "ann"
    adders = sum(isinstance(layer, Adder2D) for layer in student.layers)
    if network == "cnn" and adders:
        raise ValueError(f"{summary} says method={settings['method']} (a conv student) but "
                         f"{saved} has {adders} Adder2D layers")
    if network == "ann" and not adders:
        raise ValueError(f"{summary} says method={settings['method']} (an adder student) but "
                         f"{saved} has no Adder2D layer")
    info = RunInfo(model_dir=model_dir, dataset=settings["dataset"], image_size=int(shape[0]),
                   model=settings["model"], network=network,
                   num_classes=int(student.output_shape[-1]), data_dir=settings["data_dir"],
                   normalization=settings["normalization"])
    twin = get_model(info.model, num_classes=info.num_classes, network=info.network,
                     input_shape=(info.image_size, info.image_size, 3), adaptive_eta=None,
                     implementation="builtin")
    difference = _layout_difference(student, twin)
    if difference:
        raise ValueError(f"{summary} says model={info.model} but {saved} is not a "
                         f"{info.model}: {difference}")
    return info, twin


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
    info, builtin = _checked_run(model_dir, settings, student)
    builtin.set_weights(student.get_weights())
    return Run(student, builtin, info)


def read_run(model_dir):
    """The `RunInfo` of a finished run (`open_run`, checks included).

    Raises:
      ValueError: as `open_run`.
    """
    return open_run(model_dir).info


def load_student(model_dir, implementation="builtin"):
    """The trained student of a run as a Keras model.

    Args:
      model_dir: a finished `trainers.pkkd` run.
      implementation: "builtin": rebuilt from the run's flags with every
        adder layer on the builtin-op twin and the trained weights copied in
        (what `export` serves); "auto": student.keras as saved (the compiled
        op when it is loaded). "reference" is read as "builtin" (deprecated).

    Returns:
      a `keras.Model`: normalized float32 images `[N, H, W, 3]` (as
      `addernet_tf.data.load` yields them) -> logits `[N, K]`.

    Raises:
      ValueError: a bad `implementation`, or as `open_run`.
    """
    implementation = _validate.implementation(implementation)
    run = open_run(model_dir)
    return run.student if implementation == "auto" else run.builtin


def uint8_images(info, split, count, data_dir):
    """The first `count` images of a run's split, unaugmented, as uint8 pixels, and labels.

    `data.load` yields normalized floats; undoing the normalization gives the
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
