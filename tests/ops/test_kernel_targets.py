# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CPU kernels are right on every x86-64 target, not only the one the op is built for.

The op suite runs the library `make` built for this machine. tests/ops/kernel_targets.cc
runs the same kernels (forward exact and max identity, dX, dF; float and double; two
thread chunks) without TensorFlow over a sweep of geometries, against float64 sums,
compiled here for SSE2 (the portable vector path, as on ARM), AVX2 and AVX-512. The AVX2
forward once skipped output pixels on widths that leave 2 or 3 after its 4-pixel tiles:
only a build for AVX2 shows that, and the suite builds none.
"""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "ops" / "kernel_targets.cc"
# (-march, what the kernels say they were built for, CPU flags needed to run it).
TARGETS = [("x86-64", "portable", ()), ("x86-64-v3", "avx2", ("avx2", "fma")),
           ("x86-64-v4", "avx512", ("avx512f", "avx512dq", "avx512bw", "avx512vl"))]


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f
                         if line.startswith("flags")), set())
    except OSError:
        return set()


pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None
    or subprocess.run(["g++", "-dumpmachine"], capture_output=True, text=True,
                      check=False).stdout.split("-")[0] != "x86_64",
    reason="needs g++ for x86-64")


@pytest.mark.parametrize("march, target, needs", TARGETS, ids=[t[0] for t in TARGETS])
def test_kernels_match_float64_sums_on_every_target(march, target, needs, tmp_path):
    missing = set(needs) - _cpu_flags()
    if missing:
        pytest.skip(f"this CPU cannot run {march} code (no {', '.join(sorted(missing))})")
    binary = tmp_path / f"kernel_targets_{march}"
    subprocess.run(["g++", "-O2", f"-march={march}", "-std=c++17", "-Wno-psabi", "-I", str(ROOT),
                    str(SOURCE), "-o", str(binary)], check=True)
    proc = subprocess.run([str(binary), "120", "7"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.strip() or proc.returncode
    assert proc.stdout.strip() == f"checked=120 target={proc.stdout.split('target=')[1].strip()}"
    assert proc.stdout.split("target=")[1].startswith(target)


def test_the_sweep_catches_a_skipped_pixel(tmp_path):
    # The check itself can fail: a forward that leaves one output column
    # untouched (its -sum stays 0) is reported, with the geometry.
    if not {"avx2", "fma"} <= _cpu_flags():
        pytest.skip("this CPU cannot run x86-64-v3 code")
    header = (ROOT / "custom_ops" / "cc" / "kernels" / "adder_conv2d_cpu.h").read_text()
    broken = header.replace("const int np = left >= kPixelBlock ? kPixelBlock : 1;",
                            "const int np = left >= kPixelBlock ? kPixelBlock : 1;"
                            " if (np == 1) { ++ow; continue; }")
    assert broken != header
    (tmp_path / "custom_ops" / "cc" / "kernels").mkdir(parents=True)
    for name in ("adder_conv2d_cpu.h", "adder_conv2d_geometry.h"):
        text = broken if name == "adder_conv2d_cpu.h" else (
            ROOT / "custom_ops" / "cc" / "kernels" / name).read_text()
        (tmp_path / "custom_ops" / "cc" / "kernels" / name).write_text(text)
    binary = tmp_path / "kernel_targets_broken"
    # tmp_path first: its broken kernel header wins over the checkout's.
    subprocess.run(["g++", "-O1", "-march=x86-64-v3", "-std=c++17", "-I", str(tmp_path),
                    "-I", str(ROOT), str(SOURCE), "-o", str(binary)], check=True)
    proc = subprocess.run([str(binary), "120", "7"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("kernel_targets: forward (float) disagrees with the float64 "
                                  "sums: N")
