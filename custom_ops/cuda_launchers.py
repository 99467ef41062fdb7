# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CUDA launchers of custom_ops/cc/kernels, built and called through their C ABI.

For callers without TensorFlow (the GPU machines we test on have none):
tests/gpu and benchmarks/adder_conv_gpu.py. Two ways to run the same sources:
  "cuda"      nvcc builds them for the local GPU (CuPy or PyTorch arrays).
  "emulated"  g++ builds them against custom_ops/emulation/cuda_emulation.h,
              which runs each block's threads as fibers on the CPU (NumPy arrays).
`load(backend)` gives the raw ctypes library (pointer-level functions named
addernet_adder_conv2d_{forward,backprop_input,backprop_filter}_{f32,f64});
`Launchers(backend)` wraps it for NumPy in, NumPy out.

`build_emulated_opkernels()` builds a third, TensorFlow-side variant: the GPU
OpKernels of adder_conv2d_op_gpu.cc on DEVICE_CPU under the kernel label
"cuda_emulation", calling the emulated launchers (tests/ops run them in TF).
"""

import ctypes
import hashlib
import os
import pathlib
import subprocess

import numpy as np

from custom_ops import cuda_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = ROOT / "custom_ops" / "cc" / "kernels"
SOURCES = sorted(KERNELS.glob("*.cu.cc"))
EMULATION_HEADER = ROOT / "custom_ops" / "emulation" / "cuda_emulation.h"
GPU_OPKERNELS = KERNELS / "adder_conv2d_op_gpu.cc"
EMULATION_FLAGS = ["-std=c++20", "-fPIC", "-x", "c++", "-include", str(EMULATION_HEADER),
                   "-DADDERNET_CUDA_EMULATION", "-Wall", "-Werror", "-Wno-unknown-pragmas"]
HEADERS = sorted(KERNELS.glob("*.h")) + [EMULATION_HEADER]
BUILD_DIR = ROOT / "build" / "cuda_launchers"

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def gpu_unavailable_reason():
    """None when CuPy sees a CUDA device and nvcc exists, else why not."""
    if cuda_config.nvcc() is None:
        return f"nvcc not found (NVCC={os.environ.get('NVCC', 'nvcc')!r})"
    try:
        import cupy  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        return f"CuPy is not installed ({err})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # pylint: disable=broad-except
        return f"no CUDA device ({type(err).__name__}: {err})"
    return None if count > 0 else "no CUDA device (device count 0)"


def _local_arch():
    """Compute capability of device 0 as "90", from CuPy or PyTorch."""
    try:
        import cupy  # pylint: disable=import-outside-toplevel
        return cupy.cuda.Device().compute_capability
    except ImportError:
        import torch  # pylint: disable=import-outside-toplevel
        major, minor = torch.cuda.get_device_capability()
        return f"{major}{minor}"


def _digest(*parts):
    h = hashlib.sha256()
    for path in SOURCES + HEADERS + [GPU_OPKERNELS]:
        h.update(path.read_bytes())
    for part in parts:
        h.update(repr(part).encode())
    return h.hexdigest()[:16]


def build(backend):
    """Path of the launcher library for `backend`, compiled once per source hash."""
    if backend == "emulated":
        command = ["g++", "-O2", "-shared", *EMULATION_FLAGS]
        link = ["-lpthread"]
    elif backend == "cuda":
        arch = _local_arch()
        command = [cuda_config.nvcc(), "-shared", *cuda_config.BASE_FLAGS,
                   f"-gencode=arch=compute_{arch},code=sm_{arch}"]
        link = []
    else:
        raise ValueError(f"backend must be 'cuda' or 'emulated', got {backend!r}")
    out = BUILD_DIR / backend / _digest(command) / "libadder_conv2d_gpu.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(command + ["-I", str(ROOT)] + [str(s) for s in SOURCES]
                       + ["-o", str(tmp)] + link, check=True)
        tmp.replace(out)
    return out


def build_emulated_opkernels():
    """Path of the emulated GPU OpKernel library, compiled once per source hash.

    Load the main op library first (it registers the ops), then this one with
    tf.load_op_library; ops built under the kernel label map
    {op name: "cuda_emulation"} then run adder_conv2d_op_gpu.cc's OpKernels.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf_flags = tf.sysconfig.get_compile_flags()
    link = tf.sysconfig.get_link_flags()
    out = (BUILD_DIR / "emulated_opkernels" / _digest(tf.__version__, tf_flags, EMULATION_FLAGS)
           / "libadder_conv2d_gpu_opkernels_emulated.so")
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    jobs = [["g++", "-O2", *EMULATION_FLAGS, "-I", str(ROOT), "-c", str(src)] for src in SOURCES]
    jobs.append(["g++", "-O2", "-fPIC", "-std=c++17", *tf_flags, "-I", str(ROOT),
                 "-DADDERNET_WITH_CUDA=1", "-DADDERNET_CUDA_EMULATION",
                 "-Wno-deprecated-declarations", "-Wno-interference-size", "-c", str(GPU_OPKERNELS)])
    objects = [out.parent / f"{i}.{os.getpid()}.o" for i in range(len(jobs))]
    procs = [subprocess.Popen(job + ["-o", str(obj)]) for job, obj in zip(jobs, objects)]
    failed = [job for job, proc in zip(jobs, procs) if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"compiling the emulated GPU OpKernels failed: {failed[0]}")
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    # -Bsymbolic: the launchers called here are this library's emulated ones,
    # never the CUDA launchers of a loaded main library with the same names.
    subprocess.run(["g++", "-shared", "-Wl,-Bsymbolic", "-o", str(tmp), *map(str, objects),
                    *link, "-lpthread"], check=True)
    for obj in objects:
        obj.unlink()
    tmp.replace(out)
    return out


def emulated_launch_count(library):
    """Kernel launches the CUDA emulation in `library` (a path) has run so far."""
    fn = ctypes.CDLL(str(library)).addernet_cuda_emulation_launches
    fn.restype = ctypes.c_uint64
    return fn()


def geometry(x_shape, f_shape, strides, pads):
    """The 13 AdderConvGeometry fields; pads = [top, bottom, left, right]."""
    n, h, w, c = x_shape
    kh, kw, _, o = f_shape
    sh, sw = strides
    oh = (h + pads[0] + pads[1] - kh) // sh + 1
    ow = (w + pads[2] + pads[3] - kw) // sw + 1
    return [n, h, w, c, kh, kw, o, oh, ow, sh, sw, pads[0], pads[2]]


def load(backend):
    """The launcher library as ctypes.CDLL, with argument and result types set."""
    lib = ctypes.CDLL(str(build(backend)))
    geom, ptr = ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p
    for suffix in ("f32", "f64"):
        for name, pointers in (("forward", 4), ("backprop_input", 5), ("backprop_filter", 6)):
            fn = getattr(lib, f"addernet_adder_conv2d_{name}_{suffix}")
            fn.argtypes = [geom] + [ptr] * pointers
            fn.restype = ctypes.c_int
        fn = getattr(lib, f"addernet_adder_conv2d_backprop_filter_workspace_{suffix}")
        fn.argtypes, fn.restype = [geom], ctypes.c_int64
    return lib


def geometry_arg(geom):
    """The int64[13] argument the C functions take."""
    return (ctypes.c_int64 * 13)(*geom)


# Every array a launcher sees sits between two runs of this many sentinel
# elements: a quiet NaN with a payload no arithmetic makes. A read of one makes
# the result NaN; a write to one, or to an input, makes the call raise.
GUARD = 256
_SENTINEL_BITS = {np.dtype(np.float32): (np.uint32, 0x7FC0DBAD),
                  np.dtype(np.float64): (np.uint64, 0x7FF800000000DBAD)}


class OutOfBoundsWrite(RuntimeError):
    """A launcher wrote outside its output arrays (into a guard or an input)."""


class Launchers:
    """forward / backprop_input / backprop_filter on NumPy arrays, via one backend.

    Outputs start as NaN, so an element no kernel writes shows as NaN.
    """

    def __init__(self, backend):
        self.backend = backend
        self._lib = load(backend)
        if backend == "cuda":
            import cupy  # pylint: disable=import-outside-toplevel
            self._xp = cupy
        else:
            self._xp = np

    def _guarded(self, shape, dtype, values=None):
        """(buffer, view): a contiguous view of `shape` between sentinel guards."""
        uint, bits = _SENTINEL_BITS[np.dtype(dtype)]
        size = int(np.prod(shape, dtype=np.int64))
        buffer = self._xp.full(size + 2 * GUARD, bits, uint).view(dtype)
        view = buffer[GUARD:GUARD + size].reshape(shape)
        view[...] = np.nan if values is None else self._xp.asarray(values, dtype=dtype)
        return buffer, view

    def _ptr(self, a):
        return ctypes.c_void_p(a.data.ptr if self.backend == "cuda" else a.ctypes.data)

    def _call(self, name, dtype, geom, inputs, outputs):
        """Runs launcher `name` on guarded (buffer, view) pairs; returns the outputs on the host."""
        fn = getattr(self._lib, f"addernet_adder_conv2d_{name}_{_SUFFIX[np.dtype(dtype)]}")
        uint = _SENTINEL_BITS[np.dtype(dtype)][0]
        before = [self._xp.copy(buffer.view(uint)) for buffer, _ in inputs]
        stream = ctypes.c_void_p(
            self._xp.cuda.get_current_stream().ptr if self.backend == "cuda" else None)
        status = fn(geometry_arg(geom), *[self._ptr(view) for _, view in inputs + outputs], stream)
        if status != 0:
            raise RuntimeError(f"{name} launcher returned {status}")
        if self.backend == "cuda":
            self._xp.cuda.get_current_stream().synchronize()
        for (buffer, _), old in zip(inputs, before):
            if not bool((buffer.view(uint) == old).all()):
                raise OutOfBoundsWrite(f"{name} wrote into an input or its guard")
        bits = _SENTINEL_BITS[np.dtype(dtype)][1]
        for buffer, _ in outputs:
            guards = buffer.view(uint)
            if not (bool((guards[:GUARD] == bits).all()) and bool((guards[-GUARD:] == bits).all())):
                raise OutOfBoundsWrite(f"{name} wrote past the ends of an output")
        return [self._host(view) for _, view in outputs]

    def _host(self, a):
        return self._xp.asnumpy(a) if self.backend == "cuda" else a.copy()

    def _inputs(self, dtype, *arrays):
        return [self._guarded(np.shape(a), dtype, a) for a in arrays]

    def forward(self, x, f, strides, pads, dtype=np.float32):
        geom = geometry(x.shape, f.shape, strides, pads)
        y = self._guarded((geom[0], geom[7], geom[8], geom[6]), dtype)
        return self._call("forward", dtype, geom, self._inputs(dtype, x, f), [y])[0]

    def backprop_input(self, x, f, dy, strides, pads, dtype=np.float32):
        geom = geometry(x.shape, f.shape, strides, pads)
        dx = self._guarded(x.shape, dtype)
        return self._call("backprop_input", dtype, geom, self._inputs(dtype, x, f, dy), [dx])[0]

    def backprop_filter(self, x, f, dy, strides, pads, dtype=np.float32):
        geom = geometry(x.shape, f.shape, strides, pads)
        size_fn = getattr(self._lib, "addernet_adder_conv2d_backprop_filter_workspace_"
                          + _SUFFIX[np.dtype(dtype)])
        workspace = self._guarded((max(size_fn(geometry_arg(geom)), 1),), dtype)
        df = self._guarded(f.shape, dtype)
        return self._call("backprop_filter", dtype, geom, self._inputs(dtype, x, f, dy),
                          [workspace, df])[1]
