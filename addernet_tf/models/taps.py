# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Finding a model's distillation taps and exposing them as outputs."""

import keras

from addernet_tf.layers import TAP_KINDS, Tap

__all__ = ["tap_layers", "with_taps"]


def _check_kind(kind):
    if kind not in TAP_KINDS:
        raise ValueError(f"`kind` must be one of {TAP_KINDS}, got {kind!r}")


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def tap_layers(model, kind="layer"):
    """The `Tap` layers of `model` with `kind`, ordered by `Tap.index`.

    Found by type, not by name, in `model` and in any model nested in it.

    Args:
      model: a `keras.Model` (e.g. from `addernet_tf.models`, or re-loaded).
      kind: `"layer"` (raw conv/adder outputs) or `"block"` (block outputs).

    Returns:
      A list of `Tap` layers (empty when the model has none of that kind).

    Raises:
      ValueError: for a bad `kind`, or when two taps of that kind share an
        index (e.g. a model nesting both a teacher and a student: pass each).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}")
    _check_kind(kind)
    taps = [layer for layer in _walk(model) if isinstance(layer, Tap) and layer.kind == kind]
    taps.sort(key=lambda tap: tap.index)
    for previous, tap in zip(taps, taps[1:]):
        if previous.index == tap.index:
            raise ValueError(
                f"`model` {model.name!r} has two {kind!r} taps with index {tap.index} "
                f"({previous.name!r}, {tap.name!r}); pass the sub-model that owns them")
    return taps


def with_taps(model, kind="layer", name=None):
    """`model` with its taps as extra outputs, sharing its layers and weights.

    Args:
      model: a single-input, single-output functional `keras.Model` whose taps
        are its own layers (not inside a nested model).
      kind: `"layer"` or `"block"`, as in `tap_layers`.
      name: default `f"{model.name}_with_{kind}_taps"`.

    Returns:
      A functional `keras.Model` mapping `model`'s input to
      `[logits, [tap_0, ..., tap_{M-1}]]`: `model`'s output and each tap's
      tensor (e.g. `[N, H_m, W_m, C_m]`), in `tap_layers` order. Calling it
      runs the network once; training it trains `model`.

    Raises:
      ValueError: when `model` has no such taps, several outputs or inputs,
        or taps inside a nested model.
    """
    taps = tap_layers(model, kind)
    if not taps:
        raise ValueError(f"`model` {model.name!r} has no {kind!r} Tap layers")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"`model` must have one input and one output, got {len(model.inputs)} and "
            f"{len(model.outputs)}")
    own = {id(layer) for layer in model.layers}
    nested = [tap.name for tap in taps if id(tap) not in own]
    if nested:
        raise ValueError(
            f"`model` {model.name!r} holds taps {nested} inside a nested model; "
            "call with_taps on that model")
    return keras.Model(model.inputs[0], [model.outputs[0], [tap.output for tap in taps]],
                       name=name or f"{model.name}_with_{kind}_taps")
