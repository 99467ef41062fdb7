# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Adder convolution vs `tf.nn.conv2d` on ResNet-20 CIFAR layer shapes.

    python -m benchmarks.adder_conv [--batch 32] [--repeats 5] [--json] [--conv_max_isa AVX2]
                                    [--check R]

The first line names what the kernels were compiled for (`kernel_target()`)
and the baseline conv's instruction-set cap. oneDNN picks AVX-512 wherever the
CPU has it, whatever our build: to time an AVX2 build (ADDERNET_TF_MARCH=
x86-64-v3) as an AVX2-only machine would run both, add --conv_max_isa=AVX2.

For each shape, measured in this one run (ratios, never absolute times, are
the result: absolute times on shared machines are noise):
  fwd/conv       compiled forward time / conv forward time
  maxid/conv     the same with formulation="max_identity" (opt-in, inference)
  fwdbwd/conv    compiled forward+backward / conv forward+backward
  builtin/compiled     builtin-op twin forward+backward / compiled forward+backward
  dX/conv, dF/conv  the input- and filter-gradient kernels alone / conv's
                 Conv2DBackpropInput and Conv2DBackpropFilter
  mem/conv       compiled peak allocator bytes / conv's, forward+backward
                 ("n/a", null in --json, where TensorFlow cannot reset or
                 read the CPU allocator's statistics: one note says so)
--check R exits 1 when the summed forward or forward+backward is over R x conv
(`make kernel-guard`, run by CI, uses R = 4: a guard against kernels that are
slow on this machine whatever their build, where `benchmarks.kernel_isa`
compares the AVX2 build with the native one).
Each op is timed inside one `tf.function` that runs it `--inner` times in a
`tf.range` loop (a bare `tf.function` call costs ~0.3 ms here, which would
squeeze every ratio toward 1); the best of `--repeats` calls is kept.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from addernet_tf import cli
from addernet_tf.ops import _loader, active_backend, kernel_target
from addernet_tf.ops.adder_conv2d import adder_conv2d_compiled
from addernet_tf.ops.adder_conv2d_builtin import adder_conv2d_builtin

PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]

# (name, H=W, C, O, kernel, stride, count): the distinct 3x3 adder layers of
# ResNet-20 and how many of each it has.
RESNET20_SHAPES = [
    ("16ch@32", 32, 16, 16, 3, 1, 6),
    ("16->32 s2", 32, 16, 32, 3, 2, 1),
    ("32ch@16", 16, 32, 32, 3, 1, 5),
    ("32->64 s2", 16, 32, 64, 3, 2, 1),
    ("64ch@8", 8, 64, 64, 3, 1, 5),
]


def _conv(x, f, stride, padding):
    return tf.nn.conv2d(x, f, stride, padding)


OPS = {"conv": _conv, "compiled": adder_conv2d_compiled, "builtin": adder_conv2d_builtin}


def _first(t):
    return tf.reshape(t, [-1])[0]


def _passes(stride):
    """Every timed pass of one shape: name -> fn(x, f, dy) -> scalar tensor."""

    def forward(op):
        return lambda x, f, dy: _first(op(x, f, stride, PAD1))

    def forward_backward(op):
        def run(x, f, dy):
            with tf.GradientTape() as tape:
                tape.watch([x, f])
                y = op(x, f, stride, PAD1)
            gx, gf = tape.gradient(y, [x, f], output_gradients=dy)
            return _first(y) + _first(gx) + _first(gf)
        return run

    lib = _loader.library()
    attrs = dict(strides=[stride, stride], padding="EXPLICIT", explicit_paddings=[1, 1, 1, 1])
    conv_attrs = dict(strides=[1, stride, stride, 1], padding="EXPLICIT",
                      explicit_paddings=[0, 0, 1, 1, 1, 1, 0, 0])
    return {
        "conv_fwd": forward(OPS["conv"]),
        "compiled_fwd": forward(OPS["compiled"]),
        "maxid_fwd": lambda x, f, dy: _first(
            adder_conv2d_compiled(x, f, stride, PAD1, formulation="max_identity")),
        "conv_fwdbwd": forward_backward(OPS["conv"]),
        "compiled_fwdbwd": forward_backward(OPS["compiled"]),
        "builtin_fwdbwd": forward_backward(OPS["builtin"]),
        # The gradient kernels alone.
        "conv_dx": lambda x, f, dy: _first(tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=f, out_backprop=dy, **conv_attrs)),
        "conv_df": lambda x, f, dy: _first(tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(f), out_backprop=dy, **conv_attrs)),
        "compiled_dx": lambda x, f, dy: _first(
            lib.addernet_adder_conv2d_backprop_input(x, f, dy, **attrs)),
        "compiled_df": lambda x, f, dy: _first(
            lib.addernet_adder_conv2d_backprop_filter(x, f, dy, **attrs)),
    }


def _looped(one_pass, inner):
    """A tf.function running `one_pass` `inner` times; each pass perturbs the
    filter by the loop index so no pass can be hoisted or reused."""

    @tf.function
    def run(x, f, dy):
        acc = tf.zeros([], x.dtype)
        for i in tf.range(inner):
            acc += one_pass(x, f + tf.cast(i, f.dtype) * 1e-7, dy)
        return acc

    return run


def measure_shape(shape, batch, inner, builtin_inner, repeats):
    """Times every pass of one shape (see `_passes`).

    Returns ({pass: seconds per call}, {op: peak allocator bytes of its
    forward+backward}). All functions are traced and warmed up first, then
    timed round-robin, best of `repeats` each, so drift in clock speed or
    machine load hits every op alike. Peak bytes come from one extra call
    each, with the allocator's peak reset before it.
    """
    _, hw, c, o, k, stride, _ = shape
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, hw, hw, c)), tf.float32)
    f = tf.constant(rng.standard_normal((k, k, c, o)), tf.float32)
    out_hw = (hw + 2 - k) // stride + 1
    dy = tf.constant(rng.standard_normal((batch, out_hw, out_hw, o)), tf.float32)
    passes = _passes(stride)
    loops = {name: builtin_inner if name.startswith("builtin") else inner
             for name in passes}
    runs = {name: _looped(fn, loops[name]) for name, fn in passes.items()}
    for run in runs.values():
        run(x, f, dy).numpy()
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run(x, f, dy).numpy()
            best[name] = min(best[name], (time.perf_counter() - start) / loops[name])
    peak = {}
    for name, run in runs.items():
        if name.endswith("_fwdbwd"):
            peak[name.split("_")[0]] = _peak_bytes(run, x, f, dy)
    return best, peak


def _peak_bytes(run, x, f, dy):
    """Peak CPU allocator bytes of one call of `run`, or None where this
    TensorFlow cannot reset or read the CPU memory statistics (some builds
    raise "Cannot reset memory stats for device 'CPU:0'")."""
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        base = tf.config.experimental.get_memory_info("CPU:0")["current"]
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        _MEMORY_UNAVAILABLE.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None
    run(x, f, dy).numpy()
    try:
        return tf.config.experimental.get_memory_info("CPU:0")["peak"] - base
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        _MEMORY_UNAVAILABLE.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None


# Why memory figures are missing, when they are (first reason is printed).
_MEMORY_UNAVAILABLE = []


def _mem_ratio(mem, name):
    if mem.get(name) is None or mem.get("conv") is None:
        return None
    return mem[name] / max(mem["conv"], 1)


# oneDNN's names (ONEDNN_MAX_CPU_ISA), "default" for none.
CONV_ISAS = ["default", "SSE41", "AVX", "AVX2", "AVX512_CORE"]


def _cap_conv_isa(isa):
    """Caps oneDNN (read at its first primitive, so before any conv runs)."""
    if isa != "default":
        os.environ["ONEDNN_MAX_CPU_ISA"] = isa
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or "none"


def over_limit(network, limit):
    """["forward 4.20x", ...]: the summed ratios of `network` (the benchmark's last
    row) that are over `limit`, the `--check` guard."""
    return [f"{name} {network[key]:.2f}x" for name, key in
            (("forward", "fwd_over_conv"), ("forward+backward", "fwdbwd_over_conv"))
            if network[key] > limit]


def define_flags(flag_values):
    d = cli.Definer(flag_values, module=__name__)
    d.DEFINE_integer("batch", 32, "Batch size.", lower_bound=1)
    d.DEFINE_integer("inner", 10, "Op calls per timed tf.function call.", lower_bound=1)
    d.DEFINE_integer("repeats", 5, "Timed calls; the best is kept.", lower_bound=1)
    d.DEFINE_integer("builtin_inner", 1, "Loop count for the (slow) builtin-op twin.",
                     lower_bound=1)
    d.DEFINE_boolean("json", False, "One JSON line per shape.")
    d.DEFINE_float("check", None,
                   "Exit 1 if the whole network's forward or forward+backward (the 3x3 "
                   "layers' times summed) is more than this many times conv's: the guard "
                   "`make kernel-guard` runs (issue 14's spilled tiles measured 5-10x).",
                   lower_bound=1.0)
    d.DEFINE_enum("conv_max_isa", "default", CONV_ISAS,
                  "Cap on the instruction set of the baseline conv (oneDNN's "
                  "ONEDNN_MAX_CPU_ISA): AVX2 times it as a machine without AVX-512 runs "
                  "it; default leaves oneDNN's own choice (and any ONEDNN_MAX_CPU_ISA set).")


def main(argv=None):
    """Runs the benchmark on `argv` (without the program name; default sys.argv[1:])."""
    args = cli.parse("adder_conv", define_flags, argv)
    if active_backend() != "compiled":
        raise SystemExit("the compiled op library is not loaded: run `make` first")

    conv_isa = _cap_conv_isa(args.conv_max_isa)
    target = kernel_target() or "unknown (a library built before it said)"
    del _MEMORY_UNAVAILABLE[:]
    rows, totals = [], {}
    for shape in RESNET20_SHAPES:
        t, mem = measure_shape(shape, args.batch, args.inner, args.builtin_inner,
                               args.repeats)
        rows.append({
            "shape": shape[0], "batch": args.batch,
            "fwd_over_conv": t["compiled_fwd"] / t["conv_fwd"],
            "maxid_fwd_over_conv": t["maxid_fwd"] / t["conv_fwd"],
            "fwdbwd_over_conv": t["compiled_fwdbwd"] / t["conv_fwdbwd"],
            "builtin_over_compiled": t["builtin_fwdbwd"] / t["compiled_fwdbwd"],
            "dx_over_conv": t["compiled_dx"] / t["conv_dx"],
            "df_over_conv": t["compiled_df"] / t["conv_df"],
            "mem_over_conv": _mem_ratio(mem, "compiled"),
            "builtin_mem_over_conv": _mem_ratio(mem, "builtin"),
        })
        for name, seconds in t.items():
            totals[name] = totals.get(name, 0.0) + shape[-1] * seconds
        if args.json:
            print(json.dumps(rows[-1]), flush=True)

    network = {
        "shape": "resnet20 (all 3x3 layers, summed)", "batch": args.batch,
        "fwd_over_conv": totals["compiled_fwd"] / totals["conv_fwd"],
        "maxid_fwd_over_conv": totals["maxid_fwd"] / totals["conv_fwd"],
        "fwdbwd_over_conv": totals["compiled_fwdbwd"] / totals["conv_fwdbwd"],
        "builtin_over_compiled": totals["builtin_fwdbwd"] / totals["compiled_fwdbwd"],
        "kernel_target": target, "conv_max_isa": conv_isa,
    }
    if args.json:
        print(json.dumps(network))
    else:
        print(f"adder_conv2d (compiled kernels) vs tf.nn.conv2d, float32, batch {args.batch}, "
              f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op threads")
        print(f"kernels built for {target}; conv's oneDNN ISA cap (ONEDNN_MAX_CPU_ISA): "
              f"{conv_isa}")
        columns = [("fwd/conv", "fwd_over_conv", 10, ".2f"),
                   ("maxid/conv", "maxid_fwd_over_conv", 12, ".2f"),
                   ("fwdbwd/conv", "fwdbwd_over_conv", 13, ".2f"),
                   ("builtin/compiled", "builtin_over_compiled", 18, ".1f"),
                   ("dX/conv", "dx_over_conv", 9, ".2f"),
                   ("dF/conv", "df_over_conv", 9, ".2f"),
                   ("mem/conv", "mem_over_conv", 10, ".2f"),
                   ("builtin mem/conv", "builtin_mem_over_conv", 18, ".1f")]
        print(f"{'layer':<12}" + "".join(f"{title:>{w}}" for title, _, w, _ in columns))
        def cell(value, w, fmt):
            return f"{'n/a':>{w}}" if value is None else f"{value:>{w}{fmt}}"

        for r in rows:
            print(f"{r['shape']:<12}" + "".join(cell(r[key], w, fmt) for _, key, w, fmt in columns))
        gm = {key: None if any(r[key] is None for r in rows)
              else float(np.exp(np.mean([np.log(r[key]) for r in rows])))
              for _, key, _, _ in columns}
        print(f"{'geo. mean':<12}" + "".join(cell(gm[key], w, fmt) for _, key, w, fmt in columns))
        print(f"{'resnet20':<12}{network['fwd_over_conv']:>10.2f}"
              f"{network['maxid_fwd_over_conv']:>12.2f}"
              f"{network['fwdbwd_over_conv']:>13.2f}{network['builtin_over_compiled']:>18.1f}"
              "   (all 3x3 layers, times summed)")
    if args.check is not None:
        over = over_limit(network, args.check)
        if over:
            raise SystemExit(f"adder_conv: the network's {' and '.join(over)} conv, over the "
                             f"--check limit of {args.check:g}x")
        print(f"adder_conv: check passed, the network's forward {network['fwd_over_conv']:.2f}x "
              f"and forward+backward {network['fwdbwd_over_conv']:.2f}x conv, within "
              f"{args.check:g}x", file=sys.stderr if args.json else sys.stdout)
    if _MEMORY_UNAVAILABLE:
        print(f"note: no memory figures: TensorFlow cannot give CPU:0 allocator statistics "
              f"here ({_MEMORY_UNAVAILABLE[0]})", file=sys.stderr if args.json else sys.stdout)


if __name__ == "__main__":
    main()
