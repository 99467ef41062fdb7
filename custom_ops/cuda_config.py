# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""How this machine builds the CUDA kernels, for setup.py, `make cuda-check` and Bazel.

Environment:
  ADDERNET_TF_CUDA        auto (default): build the GPU kernels when nvcc and the
                          static CUDA runtime are found; 1: require them; 0: CPU only.
  ADDERNET_TF_CUDA_ARCHS  real architectures to compile for, default "80;90"
                          (A100, H100); PTX for the last one is added so newer GPUs
                          JIT-compile it.
  NVCC                    the compiler (default: nvcc on PATH).
  CUDA_HOME               the toolkit (default: where nvcc says it lives).

CLI: `python custom_ops/cuda_config.py FIELD` prints one of enabled, nvcc,
libdir, flags, sources (space-separated) and exits 1 with a one-line reason
when ADDERNET_TF_CUDA=1 cannot be met.
"""

import functools
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_FLAGS = ["-x", "cu", "-std=c++17", "-O3", "-Xcompiler", "-fPIC", "-I", ROOT]


class CudaConfigError(ValueError):
    """ADDERNET_TF_CUDA* holds a bad value, or =1 and the toolkit is missing."""


def mode():
    value = os.environ.get("ADDERNET_TF_CUDA", "auto").strip().lower() or "auto"
    if value not in ("auto", "0", "1"):
        raise CudaConfigError(f"ADDERNET_TF_CUDA must be auto, 0 or 1, got {value!r}")
    return value


def sources():
    """Every CUDA source (*.cu.cc) of the op library, repository-relative, sorted."""
    pattern = os.path.join(ROOT, "custom_ops", "cc", "**", "*.cu.cc")
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(pattern, recursive=True))


def nvcc():
    """Path of nvcc, or None."""
    return shutil.which(os.environ.get("NVCC", "nvcc"))


def archs():
    raw = os.environ.get("ADDERNET_TF_CUDA_ARCHS", "80;90")
    values = [a.strip() for a in re.split(r"[;, ]+", raw) if a.strip()]
    if not values or not all(re.fullmatch(r"\d{2,3}a?", a) for a in values):
        raise CudaConfigError(f"ADDERNET_TF_CUDA_ARCHS must list compute capabilities like "
                              f"'80;90', got {raw!r}")
    return values


def flags():
    """nvcc flags: language, optimization and one -gencode per architecture (+ PTX)."""
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs()]
    last = archs()[-1].rstrip("a")
    gencode.append(f"-gencode=arch=compute_{last},code=compute_{last}")
    return BASE_FLAGS + gencode


@functools.lru_cache(maxsize=None)
def libdir():
    """Folder holding libcudart_static.a, or None (asks nvcc once per process)."""
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(os.environ["CUDA_HOME"])
    compiler = nvcc()
    if compiler:
        # nvcc may be a wrapper script; its dry run names the real toolkit.
        dry = subprocess.run([compiler, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, check=False)
        match = re.search(r"^#\$ TOP=(.*)$", dry.stdout + dry.stderr, re.MULTILINE)
        if match:
            candidates.append(match.group(1).strip())
        candidates.append(os.path.join(os.path.dirname(os.path.realpath(compiler)), ".."))
    for home in candidates:
        for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"),
                    os.path.join("targets", "sbsa-linux", "lib")):
            folder = os.path.normpath(os.path.join(home, sub))
            if os.path.isfile(os.path.join(folder, "libcudart_static.a")):
                return folder
    return None


def enabled():
    """Whether to build the GPU kernels; raises CudaConfigError when =1 can't be met."""
    if mode() == "0":
        return False
    missing = None
    if nvcc() is None:
        missing = f"nvcc not found (NVCC={os.environ.get('NVCC', 'nvcc')!r})"
    elif libdir() is None:
        missing = "libcudart_static.a not found (set CUDA_HOME)"
    if missing and mode() == "1":
        raise CudaConfigError(f"ADDERNET_TF_CUDA=1 but {missing}")
    if missing is None:
        archs()  # a bad ADDERNET_TF_CUDA_ARCHS fails the build, not the run
    return missing is None


def main(argv):
    fields = {
        "enabled": lambda: "1" if enabled() else "0",
        "nvcc": lambda: nvcc() or "",
        "libdir": lambda: libdir() or "",
        "flags": lambda: " ".join(flags()),
        "sources": lambda: " ".join(sources()),
    }
    if len(argv) != 2 or argv[1] not in fields:
        print(f"usage: {argv[0]} {{{','.join(fields)}}}", file=sys.stderr)
        return 2
    try:
        print(fields[argv[1]]())
    except CudaConfigError as err:
        print(f"cuda_config: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
