"""Adder convolution vs `tf.nn.conv2d` on ResNet-20 CIFAR layer shapes.

    python -m benchmarks.adder_conv [--batch 32] [--repeats 5] [--json]

For each shape, measured in this one run (ratios, never absolute times, are
the result: absolute times on shared machines are noise):
  fwd/conv       custom forward time / conv forward time
  fwdbwd/conv    custom forward+backward / conv forward+backward
  ref/custom     builtin-op twin forward+backward / custom forward+backward
  dX/conv, dF/conv  the input- and filter-gradient kernels alone / conv's
                 Conv2DBackpropInput and Conv2DBackpropFilter
  mem/conv       custom peak allocator bytes / conv's, forward+backward
Each op is timed inside one `tf.function` that runs it `--inner` times in a
`tf.range` loop (a bare `tf.function` call costs ~0.3 ms here, which would
squeeze every ratio toward 1); the best of `--repeats` calls is kept.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf

from addernet_tf.ops import _loader, active_backend
from addernet_tf.ops.adder_conv import adder_conv2d_custom
from addernet_tf.ops.adder_conv_ref import adder_conv2d_reference

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


OPS = {"conv": _conv, "custom": adder_conv2d_custom, "reference": adder_conv2d_reference}


def _gradient_kernels(x, dy, stride):
    """The four gradient kernels alone, each as fn(filters) -> Tensor."""
    lib = _loader.library()
    attrs = dict(strides=[stride, stride], padding="EXPLICIT", explicit_paddings=[1, 1, 1, 1])
    conv_attrs = dict(strides=[1, stride, stride, 1], padding="EXPLICIT",
                      explicit_paddings=[0, 0, 1, 1, 1, 1, 0, 0])
    return {
        "conv_dx": lambda f: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=f, out_backprop=dy, **conv_attrs),
        "conv_df": lambda f: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=tf.shape(f), out_backprop=dy, **conv_attrs),
        "adder_dx": lambda f: lib.addernet_adder_conv2d_backprop_input(x, f, dy, **attrs),
        "adder_df": lambda f: lib.addernet_adder_conv2d_backprop_filter(x, f, dy, **attrs),
    }


def _looped_kernel(fn, inner):
    @tf.function
    def run(x, f, dy):
        del x, dy  # captured by fn
        acc = tf.zeros([], f.dtype)
        for i in tf.range(inner):
            acc += tf.reshape(fn(f + tf.cast(i, f.dtype) * 1e-7), [-1])[0]
        return acc

    return run


def _looped(op, stride, inner, backward):
    """A tf.function running `op` `inner` times; each pass perturbs the filter
    by the loop index so no pass can be hoisted or reused."""

    @tf.function
    def run(x, f, dy):
        acc = tf.zeros([], x.dtype)
        for i in tf.range(inner):
            fi = f + tf.cast(i, f.dtype) * 1e-7
            if backward:
                with tf.GradientTape() as tape:
                    tape.watch([x, fi])
                    y = op(x, fi, stride, PAD1)
                gx, gf = tape.gradient(y, [x, fi], output_gradients=dy)
                acc += y[0, 0, 0, 0] + gx[0, 0, 0, 0] + gf[0, 0, 0, 0]
            else:
                acc += op(x, fi, stride, PAD1)[0, 0, 0, 0]
        return acc

    return run


def measure_shape(shape, batch, inner, reference_inner, repeats):
    """Times every (op, pass) of one shape; returns ({key: s/call}, {key: bytes}).

    Keys are (op, backward). All functions are traced and warmed up first, then
    timed round-robin, best of `repeats` each, so drift in clock speed or
    machine load hits every op alike. Peak allocator bytes come from one
    extra call each, with the allocator's peak reset before it.
    """
    _, hw, c, o, k, stride, _ = shape
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, hw, hw, c)), tf.float32)
    f = tf.constant(rng.standard_normal((k, k, c, o)), tf.float32)
    out_hw = (hw + 2 - k) // stride + 1
    dy = tf.constant(rng.standard_normal((batch, out_hw, out_hw, o)), tf.float32)
    plan = {("conv", False): inner, ("custom", False): inner, ("conv", True): inner,
            ("custom", True): inner, ("reference", True): reference_inner}
    runs = {key: _looped(OPS[key[0]], stride, n, key[1]) for key, n in plan.items()}
    for name, fn in _gradient_kernels(x, dy, stride).items():
        plan[name, None] = inner
        runs[name, None] = _looped_kernel(fn, inner)
    for run in runs.values():
        run(x, f, dy).numpy()
    best = {key: float("inf") for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run(x, f, dy).numpy()
            best[key] = min(best[key], (time.perf_counter() - start) / plan[key])
    peak = {}
    for key, run in runs.items():
        if key[1] is True:
            tf.config.experimental.reset_memory_stats("CPU:0")
            base = tf.config.experimental.get_memory_info("CPU:0")["current"]
            run(x, f, dy).numpy()
            peak[key[0]] = tf.config.experimental.get_memory_info("CPU:0")["peak"] - base
    return best, peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference_inner", type=int, default=1,
                        help="loop count for the (slow) builtin-op twin")
    parser.add_argument("--json", action="store_true", help="one JSON line per shape")
    args = parser.parse_args(argv)
    if active_backend() != "custom":
        raise SystemExit("the compiled op library is not loaded: run `make` first")

    rows, totals = [], {}
    for shape in RESNET20_SHAPES:
        t, mem = measure_shape(shape, args.batch, args.inner, args.reference_inner,
                               args.repeats)
        rows.append({
            "shape": shape[0], "batch": args.batch,
            "fwd_over_conv": t["custom", False] / t["conv", False],
            "fwdbwd_over_conv": t["custom", True] / t["conv", True],
            "reference_over_custom": t["reference", True] / t["custom", True],
            "dx_over_conv": t["adder_dx", None] / t["conv_dx", None],
            "df_over_conv": t["adder_df", None] / t["conv_df", None],
            "mem_over_conv": mem["custom"] / max(mem["conv"], 1),
            "reference_mem_over_conv": mem["reference"] / max(mem["conv"], 1),
        })
        for key, seconds in t.items():
            if key[1] is None:
                continue
            totals[key] = totals.get(key, 0.0) + shape[-1] * seconds
        if args.json:
            print(json.dumps(rows[-1]), flush=True)

    network = {
        "shape": "resnet20 (all 3x3 layers, summed)", "batch": args.batch,
        "fwd_over_conv": totals["custom", False] / totals["conv", False],
        "fwdbwd_over_conv": totals["custom", True] / totals["conv", True],
        "reference_over_custom": totals["reference", True] / totals["custom", True],
    }
    if args.json:
        print(json.dumps(network))
    else:
        print(f"adder_conv2d (custom kernels) vs tf.nn.conv2d, float32, batch {args.batch}, "
              f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op threads")
        columns = [("fwd/conv", "fwd_over_conv", 10, ".2f"),
                   ("fwdbwd/conv", "fwdbwd_over_conv", 13, ".2f"),
                   ("ref/custom", "reference_over_custom", 12, ".1f"),
                   ("dX/conv", "dx_over_conv", 9, ".2f"),
                   ("dF/conv", "df_over_conv", 9, ".2f"),
                   ("mem/conv", "mem_over_conv", 10, ".2f"),
                   ("ref mem/conv", "reference_mem_over_conv", 14, ".1f")]
        print(f"{'layer':<12}" + "".join(f"{title:>{w}}" for title, _, w, _ in columns))
        for r in rows:
            print(f"{r['shape']:<12}" + "".join(f"{r[key]:>{w}{fmt}}" for _, key, w, fmt in columns))
        gm = {key: float(np.exp(np.mean([np.log(r[key]) for r in rows]))) for _, key, _, _ in columns}
        print(f"{'geo. mean':<12}" + "".join(f"{gm[key]:>{w}{fmt}}" for _, key, w, fmt in columns))
        print(f"{'resnet20':<12}{network['fwd_over_conv']:>10.2f}"
              f"{network['fwdbwd_over_conv']:>13.2f}{network['reference_over_custom']:>12.1f}"
              "   (all 3x3 layers, times summed)")


if __name__ == "__main__":
    main()
