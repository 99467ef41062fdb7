# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`python -m benchmarks.kernel_isa`: builds the float kernels for AVX2 and for this
machine, checks both against a float64 loop, and reports per-pair ratios (issue 14's guard)."""

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The checkout's file under a name of its own (code never imports the
# `benchmarks` alias: tests/test_layout.py).
_SPEC = importlib.util.spec_from_file_location("kernel_isa_under_test",
                                               os.path.join(REPO, "benchmarks", "kernel_isa.py"))
kernel_isa = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(kernel_isa)

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="the AVX2 build needs an x86-64 compiler")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "benchmarks.kernel_isa", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)


def test_both_builds_run_checked_and_the_ratios_are_theirs():
    proc = _run("--batch", "1", "--repeats", "1", "--rounds", "1", "--alternations", "1",
                "--json", "--check", "1000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[0])
    assert set(out["results"]) == {layer[0] for layer in kernel_isa.LAYERS}
    for name, builds in out["results"].items():
        assert builds["avx2"]["target"].startswith("avx2 (32-byte vectors, 16 registers)")
        assert builds["native"]["target"]
        # Both builds time the same pairs: 9 C x every output element.
        size, channels, out_c, stride = next(l[1:] for l in kernel_isa.LAYERS if l[0] == name)
        out_hw = (size - 1) // stride + 1
        assert builds["avx2"]["pairs"] == builds["native"]["pairs"] == (
            out_hw * out_hw * out_c * 9 * channels)
        for k in kernel_isa.KERNELS:
            assert math.isclose(out["avx2_over_native"][name][k],
                                builds["avx2"][k] / builds["native"][k], rel_tol=1e-9)
    assert "check passed" in proc.stdout.splitlines()[-1]


def test_too_slow_names_kernel_layer_and_ratio():
    table = {"16ch@32": {"fwd": 6.5, "maxid": 1.0, "dx": 1.2, "df": 0.5},
             "64ch@8": {"fwd": 1.1, "maxid": 1.0, "dx": 4.01, "df": 4.0}}
    assert kernel_isa.too_slow(table, 4) == ["fwd on 16ch@32: 6.50x", "dx on 64ch@8: 4.01x"]
    assert kernel_isa.too_slow(table, 7) == []


def test_bad_arguments_are_one_line():
    proc = _run("--rounds", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "kernel_isa: error: --rounds must be >= 1, got 0")
    proc = _run("--check", "0.5")
    assert proc.returncode == 2 and "--check must be >= 1, got 0.5" in proc.stderr
