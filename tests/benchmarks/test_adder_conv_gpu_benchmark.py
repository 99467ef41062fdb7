# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""benchmarks/adder_conv_gpu.py where it cannot run: a clear one-line reason, no traceback.

Its timings need a GPU with PyTorch and nvcc (see the module docstring); the
kernels it times are checked in tests/gpu.
"""

import importlib.util
import subprocess
import sys

import pytest


def _run(*args):
    return subprocess.run([sys.executable, "-m", "benchmarks.adder_conv_gpu", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="PyTorch is installed here: the missing-PyTorch path can't be reached")
def test_without_pytorch_says_why():
    result = _run("--batch", "2")
    assert result.returncode == 2
    assert "adder_conv_gpu: needs PyTorch with CUDA" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_batch_names_the_flag():
    result = _run("--batch", "0")
    assert result.returncode == 2
    assert "--batch must be >= 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr
