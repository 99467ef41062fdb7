# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Builds the adder op library with g++ (and nvcc) and TensorFlow's own compile flags.

`pip install --no-build-isolation -e .` (what `make` runs) compiles
custom_ops/cc/**/*.cc into addernet_tf/ops/_adder_ops.so against the
TensorFlow installed in the environment, and custom_ops/lite/*.cc into
addernet_tf/lite/_adder_litert.so, the LiteRT custom op and runner (no
TensorFlow; LiteRT's C symbols resolve against the ai_edge_litert wheel's
libLiteRt.so, loaded first by addernet_tf.lite). Where CUDA is configured
(custom_ops/cuda_config.py: nvcc and the static CUDA runtime found, or
ADDERNET_TF_CUDA=1) the *.cu.cc launchers are compiled with nvcc and linked
in with the GPU OpKernels; ADDERNET_TF_CUDA=0 builds a CPU-only library.
Bazel builds the same sources (custom_ops/BUILD). Set ADDERNET_TF_MARCH to
override `-march=native` (custom_ops/cpu_flags.py).
"""

import concurrent.futures
import glob
import importlib.util
import os
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(
    s for s in glob.glob(os.path.join("custom_ops", "cc", "**", "*.cc"), recursive=True)
    if not s.endswith(".cu.cc")
)
LIBRARY = "addernet_tf.ops._adder_ops"
LITERT_SOURCES = sorted(glob.glob(os.path.join("custom_ops", "lite", "*.cc")))
LITERT_LIBRARY = "addernet_tf.lite._adder_litert"


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "custom_ops", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildAdderOps(build_ext):
    """Compiles the op library with g++ rather than distutils' compiler."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        if ext.name == LITERT_LIBRARY:
            self._build_litert(ext)
            return
        import tensorflow as tf  # the build-time TF must be the run-time TF

        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        obj_dir = os.path.join(self.build_temp, "adder_ops")
        os.makedirs(obj_dir, exist_ok=True)
        cflags = tf.sysconfig.get_compile_flags() + ["-O3"] + _load("cpu_flags").flags() + [
            "-fPIC", "-std=c++17", "-I", ROOT,
            "-Wno-deprecated-declarations", "-Wno-interference-size",
        ]

        cuda = _load("cuda_config")
        try:
            with_cuda = cuda.enabled()
        except cuda.CudaConfigError as err:
            raise SystemExit(f"setup.py: {err}") from None
        link = tf.sysconfig.get_link_flags()
        if with_cuda:
            cflags.append("-DADDERNET_WITH_CUDA=1")
        jobs = [(["g++", "-c", os.path.join(ROOT, src)], src, cflags) for src in ext.sources]
        if with_cuda:
            jobs += [([cuda.nvcc(), "-c", os.path.join(ROOT, src)], src, cuda.flags())
                     for src in cuda.sources()]
            # The CUDA 13 runtime goes in first and stays private: TF's framework
            # library exports its own (CUDA 12) runtime symbols, which would
            # otherwise resolve our kernels' registration and launch calls.
            link = ["-L" + cuda.libdir(), "-l:libcudart_static.a",
                    "-Wl,--exclude-libs,libcudart_static.a", "-ldl", "-lrt", "-lpthread"] + link
        print(f"setup.py: GPU kernels {'included' if with_cuda else 'not built (CPU only)'}")

        def compile_one(job):
            command, src, flags = job
            obj = os.path.join(obj_dir, src.replace(os.sep, "_") + ".o")
            subprocess.run(command + ["-o", obj] + flags, check=True)
            return obj

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            objects = list(pool.map(compile_one, jobs))
        subprocess.run(["g++", "-shared", "-o", target] + objects + link, check=True)


    def _build_litert(self, ext):
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        flags = ["-O3"] + _load("cpu_flags").flags() + [
            "-fPIC", "-std=c++17", "-shared", "-I", ROOT,
            "-I", os.path.join(ROOT, "third_party", "litert", "include")]
        subprocess.run(["g++", "-o", target] + [os.path.join(ROOT, s) for s in ext.sources]
                       + flags + ["-lpthread"], check=True)


setup(
    ext_modules=[Extension(LIBRARY, sources=SOURCES),
                 Extension(LITERT_LIBRARY, sources=LITERT_SOURCES)],
    cmdclass={"build_ext": BuildAdderOps},
)
