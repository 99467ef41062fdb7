# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The target flags of the CPU kernels, for setup.py and custom_ops/bazel_build.sh.

`-march=$ADDERNET_TF_MARCH` (default `native`), plus `-mno-avx512fp16` where
that target enables AVX512-FP16 (Sapphire Rapids and later): the Eigen headers
TensorFlow ships do not compile with it on ("expected initializer before '<'"
in PacketMathFP16.h), and the kernels use no half precision.

CLI: `python custom_ops/cpu_flags.py` prints the flags, space-separated.
"""

import os
import subprocess
import sys


def march():
    """The `-march` value: `$ADDERNET_TF_MARCH`, else `native`."""
    return os.environ.get("ADDERNET_TF_MARCH") or "native"


def flags(target=None, compiler="g++"):
    """`["-march=<target>", ...]` for `compiler` (`target` None: `march()`)."""
    target = target or march()
    macros = subprocess.run([compiler, f"-march={target}", "-dM", "-E", "-x", "c++", os.devnull],
                            capture_output=True, text=True, check=False).stdout
    extra = ["-mno-avx512fp16"] if "__AVX512FP16__" in macros else []
    return [f"-march={target}"] + extra


if __name__ == "__main__":
    print(" ".join(flags(*sys.argv[1:2])))
