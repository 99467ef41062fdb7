# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Runs .tflite files in LiteRT with the adder op registered (custom_ops/lite, via ctypes)."""

import ctypes
import importlib.util
import os
import threading

import numpy as np

__all__ = ["Interpreter", "library_path", "load_error", "kernel_target"]

_HERE = os.path.dirname(os.path.abspath(__file__))
# ADDERNET_TF_LITERT_LIBRARY picks another build (Bazel's, an AVX2-only one).
_LIBRARY = os.environ.get("ADDERNET_TF_LITERT_LIBRARY") or os.path.join(_HERE, "_adder_litert.so")
# LiteRtElementType codes (litert/c/litert_model_types.h) the runner takes.
_DTYPES = {1: np.dtype(np.float32), 2: np.dtype(np.int32), 3: np.dtype(np.uint8),
           9: np.dtype(np.int8)}
_MAX_RANK = 8
_ERROR_SIZE = 512

_lock = threading.Lock()
_state = {"library": None, "error": None}


def library_path():
    """The runner library's path (built with the op library by `pip install` / setup.py,
    or `$ADDERNET_TF_LITERT_LIBRARY`)."""
    return _LIBRARY


def _litert_path():
    spec = importlib.util.find_spec("ai_edge_litert")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("the ai_edge_litert package is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "libLiteRt.so")
    if not os.path.exists(path):
        raise OSError(f"{path} does not exist")
    return path


def _library():
    with _lock:
        if _state["library"] is None and _state["error"] is None:
            try:
                if not os.path.exists(_LIBRARY):
                    raise OSError(f"{_LIBRARY} is not built (run `make build`)")
                ctypes.CDLL(_litert_path(), mode=ctypes.RTLD_GLOBAL)
                lib = ctypes.CDLL(_LIBRARY)
            except OSError as err:
                _state["error"] = str(err)
            else:
                p, i, i32p, c = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int32), \
                    ctypes.c_char_p
                lib.AddernetLiteRunnerOpen.restype = p
                lib.AddernetLiteRunnerOpen.argtypes = [c, i, c, ctypes.c_size_t]
                lib.AddernetLiteRunnerClose.argtypes = [p]
                lib.AddernetLiteRunnerDescribe.argtypes = [p, i, ctypes.POINTER(i), i32p,
                                                           ctypes.POINTER(i)]
                lib.AddernetLiteRunnerResize.argtypes = [p, i32p, i, c, ctypes.c_size_t]
                lib.AddernetLiteRunnerRun.argtypes = [p, p, ctypes.c_size_t, p, ctypes.c_size_t,
                                                      c, ctypes.c_size_t]
                lib.AddernetLiteRunnerKernelTarget.restype = c
                lib.AddernetLiteRtInt8KernelTarget.restype = c
                _state["library"] = lib
    return _state["library"]


def load_error():
    """Why the runner cannot load, in one line; None when it loads."""
    return None if _library() is not None else _state["error"]


def kernel_target(int8=False):
    """What the adder kernels of the LiteRT op were compiled for (float32, or `int8`)."""
    lib = _library()
    if lib is None:
        raise RuntimeError(f"the LiteRT adder runner is not available: {_state['error']}")
    target = lib.AddernetLiteRtInt8KernelTarget if int8 else lib.AddernetLiteRunnerKernelTarget
    return target().decode()


class Interpreter:
    """A .tflite model in LiteRT's CompiledModel (CPU), `Addernet>AdderConv2D` registered.

    Runs `tflite_adder` and `tflite_adder_int8` files (`python -m
    addernet_tf.export --format=tflite_adder`) and builtin-only ones alike.
    The model must have one input and one output (float32, int32, int8 or uint8); the input's
    first dimension (the batch) may change between calls. Calls are
    serialized; one Interpreter per thread runs in parallel.

    Args:
      model_path: the .tflite file.
      num_threads: threads for the adder kernels and for LiteRT's builtin
        ops (an int >= 1).

    Example:
      with Interpreter("student.tflite", num_threads=2) as model:
          probabilities = model(images)   # uint8 [N, H, W, 3] -> float32 [N, K]
    """

    def __init__(self, model_path, num_threads=1):
        if not isinstance(model_path, (str, os.PathLike)) or not os.path.isfile(model_path):
            raise ValueError(f"`model_path` must be an existing .tflite file, got {model_path!r}")
        if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) \
                or num_threads < 1:
            raise ValueError(f"`num_threads` must be an int >= 1, got {num_threads!r}")
        lib = _library()
        if lib is None:
            raise RuntimeError(f"the LiteRT adder runner is not available: {_state['error']}")
        self._lib = lib
        self._call_lock = threading.Lock()
        error = ctypes.create_string_buffer(_ERROR_SIZE)
        self._handle = lib.AddernetLiteRunnerOpen(os.fsencode(model_path), int(num_threads),
                                                  error, _ERROR_SIZE)
        if not self._handle:
            raise ValueError(f"`model_path` {os.fspath(model_path)!r}: "
                             f"{error.value.decode(errors='replace')}")
        self.num_threads = int(num_threads)
        self.input_dtype, self.input_shape = self._describe(0)
        self.output_dtype, self.output_shape = self._describe(1)

    def _describe(self, output):
        code, rank = ctypes.c_int(), ctypes.c_int()
        dims = (ctypes.c_int32 * _MAX_RANK)()
        self._lib.AddernetLiteRunnerDescribe(self._handle, output, ctypes.byref(code), dims,
                                             ctypes.byref(rank))
        return _DTYPES[code.value], tuple(int(d) for d in dims[:rank.value])

    def __call__(self, inputs):
        """The model's output for `inputs` (`input_dtype`, shape `input_shape`
        with any batch size >= 1), as a new numpy array.

        Raises:
          ValueError: `inputs` has the wrong dtype or shape.
          RuntimeError: LiteRT failed to run the model.
        """
        if self._handle is None:
            raise RuntimeError("the Interpreter is closed")
        inputs = np.asarray(inputs)
        if inputs.dtype != self.input_dtype:
            raise ValueError(f"`inputs` must be {self.input_dtype}, got {inputs.dtype}")
        if inputs.ndim != len(self.input_shape) or inputs.shape[1:] != self.input_shape[1:] \
                or inputs.shape[0] < 1:
            dims = ", ".join(map(str, self.input_shape[1:]))
            raise ValueError(f"`inputs` must have shape [N, {dims}] with N >= 1, got "
                             f"{list(inputs.shape)}")
        inputs = np.ascontiguousarray(inputs)
        error = ctypes.create_string_buffer(_ERROR_SIZE)
        with self._call_lock:
            dims = (ctypes.c_int32 * _MAX_RANK)(*inputs.shape)
            if self._lib.AddernetLiteRunnerResize(self._handle, dims, inputs.ndim, error,
                                                  _ERROR_SIZE) != 0:
                raise RuntimeError(f"LiteRT: {error.value.decode(errors='replace')}")
            _, shape = self._describe(1)
            output = np.empty(shape, self.output_dtype)
            if self._lib.AddernetLiteRunnerRun(self._handle, inputs.ctypes.data, inputs.nbytes,
                                               output.ctypes.data, output.nbytes, error,
                                               _ERROR_SIZE) != 0:
                raise RuntimeError(f"LiteRT: {error.value.decode(errors='replace')}")
        return output

    def close(self):
        """Frees the compiled model; later calls raise RuntimeError."""
        if getattr(self, "_handle", None):
            self._lib.AddernetLiteRunnerClose(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
