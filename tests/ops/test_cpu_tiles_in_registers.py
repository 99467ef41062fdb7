# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CPU kernels' register tiles stay in registers on every x86-64 target.

Issue 14: built for AVX2 (16 ymm registers, GCC's generic tuning) the forward
tile kept its accumulators on the stack and passed every filter vector through
a stack slot as two 16-byte halves read back as one 32-byte load, 6-10x slower
than the AVX-512 build. A timing test of that would be noisy on shared
machines; this one is deterministic: it compiles adder_conv2d_op.cc for
x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512), disassembles it, and checks
the hot loops of all three kernels (float and double): each innermost loop
with two or more vector FMAs or adds (the AVX-512 forward tile accumulates
with adds), and the loop around it, must hold no vector load or
store against the stack and no 16-byte integer-domain vector move to or from
memory (the halves of a split 32-byte move) other than a constant's load from
the code's read-only data. It reads the TF op, the LiteRT op and the
benchmarks/kernel_isa.cc harness, and the tiles compiled as functions of their
own (ADDERNET_TILE).
Needs g++ and objdump, as the build does; runs on any x86-64 machine.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "custom_ops" / "cc" / "kernels" / "adder_conv2d_op.cc"
# The LiteRT op compiles the forward kernels again, with its own thread pool.
LITERT_SOURCE = ROOT / "custom_ops" / "lite" / "adder_conv2d_litert.cc"
# benchmarks.kernel_isa times the float kernels in a harness of its own (issue
# 14's speed guard): its tiles must be the ones the ops run.
HARNESS_SOURCE = ROOT / "benchmarks" / "kernel_isa.cc"
KERNELS = [f"AdderConv2D{k}<{t}" for k in ("Forward", "BackpropInput", "BackpropFilter")
           for t in ("float", "double")]
# The forward pass's second formulation (`formulation="max_identity"`).
MAX_IDENTITY = "(addernet::cpu::Formulation)1"
EXPECTED = set(KERNELS) | {f"AdderConv2DForward<{t} max_identity" for t in ("float", "double")}

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None or shutil.which("objdump") is None
    or subprocess.run(["g++", "-dumpmachine"], capture_output=True, text=True,
                      check=False).stdout.split("-")[0] != "x86_64",
    reason="needs g++ and objdump for x86-64")


def _disassemble(march, tmp_path, source=SOURCE):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    obj = tmp_path / f"op_{march}.o"
    flags = {LITERT_SOURCE: ["-I", str(ROOT / "third_party" / "litert" / "include")],
             HARNESS_SOURCE: []}.get(source) or tf.sysconfig.get_compile_flags()
    subprocess.run(["g++", "-c", str(source), "-o", str(obj), *flags,
                    "-O3", f"-march={march}", "-fPIC", "-std=c++17", "-I", str(ROOT),
                    "-Wno-deprecated-declarations", "-Wno-interference-size"], check=True)
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", str(obj)],
                          capture_output=True, text=True, check=True).stdout


# Tiles compiled as functions of their own (ADDERNET_TILE), by kernel.
TILES = {"FilterTile": "AdderConv2DBackpropFilter", "FilterTileWide": "AdderConv2DBackpropFilter"}


def _kernel_of(name):
    """The kernel whose hot loops a function named `name` holds, or None."""
    # The forward loop's lambda is in AdderConv2DForwardPacked.
    name = name.replace("AdderConv2DForwardPacked<", "AdderConv2DForward<")
    kernel = next((k for k in KERNELS if name.startswith("addernet::cpu::" + k)
                   and "{lambda(long, long)#1}::operator()" in name), None)
    tile = re.match(r"void addernet::cpu::(\w+)<(float|double)\b", name)
    if kernel is None and tile and tile.group(1) in TILES:
        kernel = f"{TILES[tile.group(1)]}<{tile.group(2)}"
    if kernel and MAX_IDENTITY in name:
        kernel += " max_identity"
    return kernel


def _kernel_bodies(asm):
    """{kernel: [[(address, instruction)] per function]}: each kernel's parallel-for
    lambda and the tiles of its own that it calls."""
    bodies, current = {}, None
    for line in asm.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            kernel = _kernel_of(head.group(1))
            current = None
            if kernel:
                current = []
                bodies.setdefault(kernel, []).append(current)
            continue
        insn = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if current is not None and insn:
            current.append((int(insn.group(1), 16), insn.group(2)))
    return bodies


def _loops(body):
    """(start, end) of every backward-jump loop."""
    found = []
    for address, insn in body:
        jump = re.match(r"j\w+\s+([0-9a-f]+)", insn)
        if jump and body[0][0] <= int(jump.group(1), 16) <= address:
            found.append((int(jump.group(1), 16), address))
    return found


def _hot_loops(body):
    """Innermost backward-jump loops with two or more vector FMAs or adds, each with the loop
    right around it (None if none): [(start, end, loop, enclosing loop)]."""
    every = _loops(body)
    hot = []
    for start, end in every:
        loop = [(a, i) for a, i in body if start <= a <= end]
        if sum(bool(re.match(r"(vfmadd|vaddp[sd]\s.*%[yz]mm)", i)) for _, i in loop) >= 2:
            hot.append((start, end, loop))
    hot = [(s, e, loop) for s, e, loop in hot
           if not any((s2, e2) != (s, e) and s <= s2 and e2 <= e for s2, e2, _ in hot)]
    result = []
    for s, e, loop in hot:
        around = sorted(((s2, e2) for s2, e2 in every if s2 <= s and e <= e2 and (s2, e2) != (s, e)),
                        key=lambda span: span[1] - span[0])
        outer = ([(a, i) for a, i in body if around[0][0] <= a <= around[0][1]]
                 if around else None)
        result.append((s, e, loop, outer))
    return result


def _through_the_stack(loop):
    # A 16-byte integer-domain move to or from memory (not a register copy,
    # nor a constant's load from .rodata) is half of a split 32-byte move.
    return [i for _, i in loop
            if (re.search(r"%[xyz]mm", i) and ("(%rsp)" in i or "(%rbp)" in i))
            or (re.match(r"vmovdq[au]\S*\s.*%xmm", i) and "(" in i and "(%rip)" not in i)]


@pytest.mark.parametrize("source, expected", [
    (SOURCE, EXPECTED),
    (LITERT_SOURCE, {"AdderConv2DForward<float", "AdderConv2DForward<float max_identity"}),
    (HARNESS_SOURCE, {k for k in EXPECTED if "double" not in k})],
    ids=["tf_op", "litert_op", "kernel_isa_harness"])
@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64-v4"])
def test_hot_loops_keep_their_tiles_in_registers(march, source, expected, tmp_path):
    bodies = _kernel_bodies(_disassemble(march, tmp_path, source))
    assert set(bodies) == expected, sorted(bodies)
    for kernel, functions in bodies.items():
        loops = [loop for body in functions for loop in _hot_loops(body)]
        assert loops, f"{march} {kernel}: no vector FMA or add loop found"
        for start, end, loop, outer in loops:
            bad = _through_the_stack(loop)
            assert not bad, (f"{march} {kernel}: loop {start:x}-{end:x} moves vectors "
                             f"through the stack: {bad[:8]}")
            # The loop around it too (dX's loop over kernel taps kept its
            # accumulators and inputs on the stack from tap to tap).
            bad = _through_the_stack(outer or [])
            assert not bad, (f"{march} {kernel}: the loop around {start:x}-{end:x} moves "
                             f"vectors through the stack: {bad[:8]}")
