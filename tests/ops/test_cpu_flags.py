# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CPU build's target flags compile TensorFlow's headers on every x86-64 target.

TF's bundled Eigen fails to compile with AVX512-FP16 on (Sapphire Rapids and
later), so a plain `-march=native` build broke there; custom_ops/cpu_flags.py
turns that extension off where the target has it.
"""

import importlib.util
import pathlib
import subprocess

import pytest
import tensorflow as tf

from addernet_tf.ops import kernel_target

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cpu_flags", ROOT / "custom_ops" / "cpu_flags.py")
cpu_flags = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpu_flags)


def _knows(target):
    return subprocess.run(["g++", f"-march={target}", "-E", "-x", "c++", "/dev/null"],
                          capture_output=True, check=False).returncode == 0


def test_avx2_and_avx512_targets_need_nothing_more():
    assert cpu_flags.flags("x86-64-v3") == ["-march=x86-64-v3"]
    assert cpu_flags.flags("x86-64-v4") == ["-march=x86-64-v4"]


def test_march_reads_the_environment(monkeypatch):
    monkeypatch.setenv("ADDERNET_TF_MARCH", "x86-64-v3")
    assert cpu_flags.flags() == ["-march=x86-64-v3"]
    monkeypatch.delenv("ADDERNET_TF_MARCH")
    assert cpu_flags.march() == "native"


@pytest.mark.parametrize("target", ["native", "x86-64-v3", "sapphirerapids"])
def test_eigen_compiles_with_the_flags(target, tmp_path):
    if not _knows(target):
        pytest.skip(f"this g++ has no -march={target}")
    flags = cpu_flags.flags(target)
    if target == "sapphirerapids":
        assert "-mno-avx512fp16" in flags
    source = tmp_path / "eigen.cc"
    source.write_text('#include "Eigen/Core"\n')
    result = subprocess.run(
        ["g++", "-fsyntax-only", "-std=c++17", "-I", tf.sysconfig.get_include(), *flags,
         str(source)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.skipif(kernel_target() is None, reason="the compiled op library is not loaded")
def test_the_library_says_what_its_kernels_were_compiled_for():
    # The build's flags (cpu_flags.flags(), ADDERNET_TF_MARCH honoured) decide the tiles.
    macros = subprocess.run(["g++", *cpu_flags.flags(), "-dM", "-E", "-x", "c++", "/dev/null"],
                            capture_output=True, text=True, check=True).stdout.split()
    expected = ("avx512" if "__AVX512F__" in macros else "avx2" if "__AVX2__" in macros
                else "avx" if "__AVX__" in macros else "portable")
    assert kernel_target().split()[0] == expected, kernel_target()
