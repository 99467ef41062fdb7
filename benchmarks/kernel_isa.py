# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The float CPU kernels built for AVX2 only vs built for this machine, per (x, f) pair.

    python -m benchmarks.kernel_isa [--batch 8] [--repeats 3] [--rounds 5] [--check 4] [--json]

Builds benchmarks/kernel_isa.cc (the kernels of custom_ops/cc/kernels/adder_conv2d_cpu.h,
no TensorFlow) twice: `-march=x86-64-v3` (AVX2 + FMA, 16 vector registers: what
every AVX2 laptop runs, and it runs here too) and this machine's own target
(`ADDERNET_TF_MARCH`, default native, as for the op library). Each binary first
checks its forward, max-identity, dX and dF outputs against a float64 loop and
exits non-zero on a mismatch. Then both run the ResNet-20 3x3 layers, one
thread, alternating binaries `--alternations` times; each kernel keeps its best
time. Prints G pairs/s of each build and the ratio avx2 time / native time (the
same pairs, so it is the per-pair ratio).

`--check R` (what `make kernel-guard` and CI run, R = 4): exits 1 naming every
kernel and layer whose AVX2 build is more than R times slower per pair than the
native one. Issue 14's AVX2 build spilled its register tile and ran the forward
6-10x slower than the AVX-512 build. Healthy ratios depend on the machine: about
1 where the native build is AVX2 too, 1-1.3 on Zen 4 (which splits a 64-byte
operation in two), up to 2.5 on Zen 5, whose 64-byte units do twice the work of
a 32-byte operation in the same time (docs/DESIGN.md). Noise does not reach 4x:
the two builds run in the same minute, interleaved, best of many calls each.
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (name, H=W, C, O, stride): the 3x3 adder layers of ResNet-20 (CIFAR, 32 px).
LAYERS = [("16ch@32", 32, 16, 16, 1), ("16->32 s2", 32, 16, 32, 2), ("32ch@16", 16, 32, 32, 1),
          ("32->64 s2", 16, 32, 64, 2), ("64ch@8", 8, 64, 64, 1)]
KERNELS = ["fwd", "maxid", "dx", "df"]
AVX2 = "x86-64-v3"


def _cpu_flags(target=None):
    spec = importlib.util.spec_from_file_location(
        "cpu_flags", os.path.join(ROOT, "custom_ops", "cpu_flags.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.flags(target)


def build(workdir, target=None):
    """Compiles the harness for `target` (None: the op library's); returns the binary."""
    name = "kernel_isa_" + (target or "own").replace("-", "_")
    binary = os.path.join(workdir, name)
    proc = subprocess.run(["g++", "-O3", *_cpu_flags(target), "-std=c++17", "-I", ROOT,
                           os.path.join(ROOT, "benchmarks", "kernel_isa.cc"), "-o", binary],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"kernel_isa: g++ for {target or 'this machine'} failed: "
                         f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
    return binary


def run_once(binary, layer, batch, repeats, rounds):
    """The binary's key=value line for one layer, as a dict."""
    _, size, channels, out, stride = layer
    proc = subprocess.run([binary, str(size), str(channels), str(out), str(stride), str(batch),
                           str(repeats), str(rounds)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"kernel_isa: {os.path.basename(binary)} on {layer[0]}: "
                         f"{proc.stderr.strip() or proc.returncode}")
    return dict(item.split("=", 1) for item in proc.stdout.strip().split("\t") if "=" in item)


def measure(binaries, batch, repeats, rounds, alternations):
    """{layer: {build: {"target": str, "pairs": float, kernel: best seconds}}}."""
    results = {}
    for layer in LAYERS:
        per_build = {build: {"target": None, "pairs": None, **{k: float("inf") for k in KERNELS}}
                     for build in binaries}
        for _ in range(alternations):
            for build, binary in binaries.items():
                fields = run_once(binary, layer, batch, repeats, rounds)
                entry = per_build[build]
                entry["target"], entry["pairs"] = fields["target"], float(fields["pairs"])
                for k in KERNELS:
                    entry[k] = min(entry[k], float(fields[f"{k}_s"]))
        results[layer[0]] = per_build
    return results


def ratios(results):
    """{layer: {kernel: avx2 seconds / native seconds}}."""
    return {name: {k: r["avx2"][k] / r["native"][k] for k in KERNELS}
            for name, r in results.items()}


def too_slow(table, limit):
    """["dx on 64ch@8: 6.10x", ...]: the entries of `ratios(...)` over `limit`."""
    return [f"{k} on {name}: {table[name][k]:.2f}x" for name in table for k in KERNELS
            if table[name][k] > limit]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kernel_isa", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per binary run")
    parser.add_argument("--alternations", type=int, default=3,
                        help="times each binary runs each layer, interleaved")
    parser.add_argument("--check", type=float, default=None, metavar="R",
                        help="exit 1 if any kernel's AVX2 build is > R times slower per pair")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for name in ("batch", "repeats", "rounds", "alternations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.check is not None and not args.check >= 1:
        parser.error(f"--check must be >= 1, got {args.check}")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        print(f"kernel_isa: no {AVX2} build on {platform.machine()}: nothing to compare")
        return {}
    with tempfile.TemporaryDirectory(prefix="addernet_kernel_isa_") as workdir:
        binaries = {"avx2": build(workdir, AVX2), "native": build(workdir)}
        results = measure(binaries, args.batch, args.repeats, args.rounds, args.alternations)
    table = ratios(results)
    first = next(iter(results.values()))
    if args.json:
        print(json.dumps({"results": results, "avx2_over_native": table}, sort_keys=True))
    else:
        print(f"kernels: avx2 build = {first['avx2']['target']}; native build "
              f"(-march={os.environ.get('ADDERNET_TF_MARCH') or 'native'}) = "
              f"{first['native']['target']}")
        print(f"one thread, batch {args.batch}, best of {args.alternations} x {args.rounds} "
              f"rounds of {args.repeats} calls; G pairs/s avx2 / native, and avx2 time / native")
        print(f"{'layer':<12}" + "".join(f"{k:>22}" for k in KERNELS))
        for name, r in results.items():
            cells = []
            for k in KERNELS:
                rate = {b: r[b]["pairs"] / r[b][k] / 1e9 for b in ("avx2", "native")}
                cells.append(f"{rate['avx2']:6.1f} /{rate['native']:5.1f} {table[name][k]:5.2f}x")
            print(f"{name:<12}" + "".join(f"{c:>22}" for c in cells))
    if args.check is not None:
        slow = too_slow(table, args.check)
        if slow:
            print(f"kernel_isa: the AVX2 build is more than {args.check:g}x slower per pair than "
                  f"the native one: {'; '.join(slow)}", file=sys.stderr)
            raise SystemExit(1)
        worst = max((table[name][k], f"{k} on {name}") for name in table for k in KERNELS)
        print(f"kernel_isa: check passed, every AVX2 kernel within {args.check:g}x of the native "
              f"one per pair (worst {worst[0]:.2f}x, {worst[1]})")
    return results


if __name__ == "__main__":
    main()
