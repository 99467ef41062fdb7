# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Models named `keras:<application>` or `module:function`, built as a CNN and `adderize`d."""

import importlib

import keras

from addernet_tf import _validate
from addernet_tf.models.adderize import adderize

__all__ = ["is_external", "external_problem", "external_model"]


def is_external(name):
    """Whether `name` names a model outside `MODELS` (it holds a colon)."""
    return isinstance(name, str) and ":" in name


def _builder(name):
    source, _, attr = name.partition(":")
    if not source or not attr:
        raise ValueError("expected 'keras:<application>' or 'module:function'")
    if source == "keras":
        builder = getattr(keras.applications, attr, None)
        if not callable(builder):
            raise ValueError(f"keras.applications has no {attr!r}")
        return builder, True
    try:
        module = importlib.import_module(source)
    except ImportError as e:
        raise ValueError(f"cannot import {source!r} ({e})") from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ValueError(f"module {source!r} has no function {attr!r}")
    return builder, False


def external_problem(name):
    """Why `name` does not resolve to a builder (one line), or None."""
    try:
        _builder(name)
    except ValueError as e:
        return str(e)
    return None


@_validate.reads_old_network_names
def external_model(spec, num_classes=10, network="ann", input_shape=(32, 32, 3),
                   adaptive_eta=0.2, implementation="auto", **kwargs):
    """Builds the CNN `spec` names and returns `adderize(cnn, network=network, ...)`.

    Args:
      spec: `"keras:<application>"`, e.g. `"keras:ResNet50V2"`: built with
        `weights=None` (nothing is downloaded), `classes=num_classes` and
        logits out (`classifier_activation=None`); or `"module:function"`:
        `function(num_classes=..., input_shape=...)` must return a functional
        or Sequential CNN whose output is logits `[N, num_classes]`.
      num_classes, input_shape: of the network (input `[N, H, W, C]`).
      network: `"ann"` (the student) or `"cnn"` (the matching tapped teacher).
      adaptive_eta, implementation: for the `Adder2D` layers.
      **kwargs: passed to `adderize` (`keep`, `name`, ...).

    Returns:
      A functional `keras.Model`, images → logits, with `"layer"` taps.

    Raises:
      ValueError: `spec` names nothing that builds, or its CNN is not a
        functional/Sequential model with logits out (one line).
    """
    try:
        builder, application = _builder(spec)
    except ValueError as e:
        raise ValueError(f"{spec!r}: {e}") from None
    if application:
        cnn = builder(weights=None, input_shape=tuple(input_shape), classes=num_classes,
                      classifier_activation=None)
    else:
        cnn = builder(num_classes=num_classes, input_shape=tuple(input_shape))
    if not isinstance(cnn, keras.Model):
        raise ValueError(f"{spec!r} returned {type(cnn).__name__}, not a keras.Model")
    shape = tuple(cnn.outputs[0].shape) if cnn.outputs else None
    if shape is None or shape[1:] != (num_classes,):
        raise ValueError(f"{spec!r} outputs {shape}, not logits [N, {num_classes}]")
    return adderize(cnn, network=network, adaptive_eta=adaptive_eta, implementation=implementation,
                    **kwargs)
