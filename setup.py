"""Builds the adder op library with g++ and TensorFlow's own compile flags.

`pip install --no-build-isolation -e .` (what `make` runs) compiles
custom_ops/cc/**/*.cc into addernet_tf/ops/_adder_ops.so against the
TensorFlow installed in the environment. Bazel builds the same sources
(custom_ops/BUILD). Set ADDERNET_TF_MARCH to override `-march=native`.
"""

import concurrent.futures
import glob
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


class BuildAdderOps(build_ext):
    """Compiles the op library with g++ rather than distutils' compiler."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        import tensorflow as tf  # the build-time TF must be the run-time TF

        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        obj_dir = os.path.join(self.build_temp, "adder_ops")
        os.makedirs(obj_dir, exist_ok=True)
        march = os.environ.get("ADDERNET_TF_MARCH", "native")
        cflags = tf.sysconfig.get_compile_flags() + [
            "-O3", f"-march={march}", "-fPIC", "-std=c++17", "-I", ROOT,
            "-Wno-deprecated-declarations", "-Wno-interference-size",
        ]

        def compile_one(src):
            obj = os.path.join(obj_dir, src.replace(os.sep, "_") + ".o")
            subprocess.run(["g++", "-c", os.path.join(ROOT, src), "-o", obj] + cflags,
                           check=True)
            return obj

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            objects = list(pool.map(compile_one, ext.sources))
        subprocess.run(["g++", "-shared", "-o", target] + objects
                       + tf.sysconfig.get_link_flags(), check=True)


setup(
    ext_modules=[Extension(LIBRARY, sources=SOURCES)],
    cmdclass={"build_ext": BuildAdderOps},
)
