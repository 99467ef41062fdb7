# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Argument checks shared by the Python API: each error names the argument and shows the value."""

import functools
import inspect
import math
import numbers
import warnings

__all__ = ["IMPLEMENTATIONS", "OLD_IMPLEMENTATIONS", "FORMULATIONS", "NETWORKS", "OLD_NETWORKS",
           "is_int", "positive_int", "positive_number", "int_pair", "choice", "adaptive_eta",
           "implementation", "network", "reads_old_network_names"]

# How an adder layer computes: "auto", the compiled op where it is loaded;
# "builtin", the builtin-op twin.
IMPLEMENTATIONS = ("auto", "builtin")
# Spellings that saved files still hold, read as their successors.
OLD_IMPLEMENTATIONS = {"reference": "builtin"}

# How the adder forward pass sums a window: "exact", sum |x - f|; "max_identity",
# 2 sum max(x, f) - sum x - sum f (faster on CPUs, rounded differently).
FORMULATIONS = ("exact", "max_identity")

# Which network of a teacher/student pair: the CNN (multiplications) or the ANN
# (adder layers), as `--method`, the kernel heads and the model builders say.
NETWORKS = ("cnn", "ann")
# The model builders' spellings before 0.2 (`conv="conv"` / `conv="adder"`).
OLD_NETWORKS = {"conv": "cnn", "adder": "ann"}


def is_int(value):
    """An integer that is not a bool (numpy integers included)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, arg, none_ok=False):
    """`value` as an int (None passes with `none_ok`); ValueError unless an int > 0."""
    if none_ok and value is None:
        return None
    if is_int(value) and value > 0:
        return int(value)
    raise ValueError(f"`{arg}` must be a positive int{' or None' if none_ok else ''}, "
                     f"got {value!r}")


def _positive_finite(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def positive_number(value, arg):
    """`value` as a float; ValueError unless it is a finite real number > 0."""
    if _positive_finite(value):
        return float(value)
    raise ValueError(f"`{arg}` must be a positive finite number, got {value!r}")


def int_pair(value, arg):
    """An int or a pair of ints as `(a, b)`; ValueError otherwise (signs unchecked)."""
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"`{arg}` must be an int or a pair of ints, got {value!r}")


def choice(value, arg, choices):
    """`value` if it is one of `choices`; ValueError naming them otherwise."""
    if value not in choices:
        raise ValueError(f"`{arg}` must be one of {tuple(choices)}, got {value!r}")
    return value


def adaptive_eta(value):
    """AdderNet's η as a float, or None (off); ValueError unless positive and finite."""
    if value is not None and not _positive_finite(value):
        raise ValueError(f"`adaptive_eta` must be a positive number or None, got {value!r}")
    return None if value is None else float(value)


def implementation(value):
    """One of `IMPLEMENTATIONS`; an old spelling becomes its successor, with a
    DeprecationWarning."""
    if isinstance(value, str) and value in OLD_IMPLEMENTATIONS:
        new = OLD_IMPLEMENTATIONS[value]
        warnings.warn(f"implementation={value!r} is deprecated: use {new!r}",
                      DeprecationWarning, stacklevel=3)
        return new
    return choice(value, "implementation", IMPLEMENTATIONS)


def network(value):
    """One of `NETWORKS`."""
    return choice(value, "network", NETWORKS)


def reads_old_network_names(builder):
    """Lets a model builder read its spellings before 0.2, with a DeprecationWarning:
    the keyword `conv=` for `network=`, and the values "conv"/"adder" for "cnn"/"ann"."""
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def wrapper(*args, **kwargs):
        if "conv" in kwargs:
            if "network" in kwargs:
                raise TypeError(f"{builder.__name__}() got `network` and `conv`, its old name")
            old = kwargs.pop("conv")
            kwargs["network"] = OLD_NETWORKS.get(old, old) if isinstance(old, str) else old
            warnings.warn("`conv=` is deprecated: use `network=` (\"cnn\" or \"ann\")",
                          DeprecationWarning, stacklevel=2)
        bound = signature.bind(*args, **kwargs)
        old = bound.arguments.get("network")
        if isinstance(old, str) and old in OLD_NETWORKS:
            bound.arguments["network"] = OLD_NETWORKS[old]
            warnings.warn(f"network={old!r} is deprecated: use {OLD_NETWORKS[old]!r}",
                          DeprecationWarning, stacklevel=2)
        return builder(*bound.args, **bound.kwargs)

    return wrapper
