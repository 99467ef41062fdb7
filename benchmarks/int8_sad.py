# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The LiteRT op's int8 adder kernel (psadbw) vs the float forward kernel, one layer.

    python -m benchmarks.int8_sad [--batch 16] [--repeats 7] [--json]

Builds benchmarks/int8_sad.cc with g++ for this machine (`ADDERNET_TF_MARCH`
as for the op library; x86-64-v3 gives the AVX2 form) and runs it on the
stride-1 3x3 layers of ResNet-20 (CIFAR, 32 px), one thread. Each run checks
the int8 outputs (custom_ops/cc/kernels/adder_conv2d_int8.h) against a scalar
loop before timing, then prints seconds of the float exact kernel, the float
max-identity kernel and the int8 kernel on the same layer, and their ratios
(float / int8 > 1: int8 is faster). No TensorFlow: it measures the
arithmetic alone, not an int8 model (`python -m benchmarks.deploy` does).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (name, H=W, C, O): the stride-1 3x3 adder layers of ResNet-20.
LAYERS = [("r20 16ch@32", 32, 16, 16), ("r20 32ch@16", 16, 32, 32), ("r20 64ch@8", 8, 64, 64)]


def _cpu_flags():
    spec = importlib.util.spec_from_file_location(
        "cpu_flags", os.path.join(ROOT, "custom_ops", "cpu_flags.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.flags()


def build(workdir):
    """Compiles the benchmark; returns the binary's path."""
    binary = os.path.join(workdir, "int8_sad")
    subprocess.run(["g++", "-O3", *_cpu_flags(), "-std=c++17", "-I", ROOT,
                    os.path.join(ROOT, "benchmarks", "int8_sad.cc"), "-o", binary], check=True)
    return binary


def run(binary, batch, repeats):
    """{layer name: the binary's key=value line as a dict}."""
    results = {}
    for name, size, channels, out in LAYERS:
        proc = subprocess.run([binary, str(size), str(size), str(channels), str(out), str(batch),
                               str(repeats)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"int8_sad: {name}: {proc.stderr.strip() or proc.returncode}")
        fields = dict(item.split("=", 1) for item in proc.stdout.strip().split("\t") if "=" in item)
        results[name] = fields
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="int8_sad", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="addernet_int8_sad_") as workdir:
        results = run(build(workdir), args.batch, args.repeats)
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return results
    first = next(iter(results.values()))
    print(f"int8 kernel: {first['isa']}; float kernels: {first['float_kernel']}"
          f" (one thread, batch {args.batch}, best of {args.repeats}; int8 sums checked)")
    print(f"{'layer':<14}{'float/int8':>11}{'maxid/int8':>11}")
    for name, r in results.items():
        print(f"{name:<14}{float(r['float_over_int8']):>11.2f}{float(r['maxid_over_int8']):>11.2f}")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
