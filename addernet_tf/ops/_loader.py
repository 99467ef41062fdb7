# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Loads the compiled op library once.

The library is `_adder_ops.so` beside this file (built by `pip install -e .`
or `make`), or the file named by the env var `ADDERNET_TF_LIBRARY` (how the
Bazel-built library is tested). `ADDERNET_TF_BACKEND=builtin` skips loading
(`reference`, its spelling before 0.2, still does).
"""

import ctypes
import os
import warnings

import tensorflow as tf

_LIBRARY_PATH = os.environ.get("ADDERNET_TF_LIBRARY") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "_adder_ops.so")

_library = None
_load_error = None


# ADDERNET_TF_BACKEND values that mean "the builtin-op twin only"; "reference"
# is the deprecated spelling (scripts and CI configs set it).
_BUILTIN_SPELLINGS = ("builtin", "reference")


def forced_builtin():
    """Whether ADDERNET_TF_BACKEND asks for the builtin-op twin only."""
    return os.environ.get("ADDERNET_TF_BACKEND", "").lower() in _BUILTIN_SPELLINGS


def _load():
    global _library, _load_error
    if forced_builtin():
        _load_error = f"ADDERNET_TF_BACKEND={os.environ['ADDERNET_TF_BACKEND']}"
        return
    try:
        _library = tf.load_op_library(_LIBRARY_PATH)
    except (tf.errors.NotFoundError, OSError) as e:
        _load_error = f"{_LIBRARY_PATH}: {e}"


_load()


def library():
    """The loaded op module, or None."""
    return _library


def kernel_target():
    """What the loaded library's CPU kernels were compiled for, e.g. "avx2 (32-byte
    vectors, 16 registers)", or None without the library (or in one built before
    it said)."""
    if _library is None:
        return None
    try:  # the library is loaded already: this only looks the symbol up
        target = ctypes.CDLL(_LIBRARY_PATH).AddernetCpuKernelTarget
    except (OSError, AttributeError):
        return None
    target.restype = ctypes.c_char_p
    return target().decode()


def load_error():
    """Why the library is not loaded (a string), or None."""
    return _load_error


_warned = False


def warn_fallback_once():
    global _warned
    if not _warned and not (_load_error or "").startswith("ADDERNET_TF_BACKEND"):
        warnings.warn(
            "addernet_tf: compiled adder op library not loaded "
            f"({_load_error}); using the slow builtin-op twin. "
            "Run `make` (or `pip install --no-build-isolation -e .`) to build it.",
            RuntimeWarning, stacklevel=3)
    _warned = True
