# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Latency of an exported adder network relative to the same CNN exported the same way.

    python -m benchmarks.deploy [--image_size 32] [--steps 30] [--repeats 7] [--json]
                                [--ann_run DIR --cnn_run DIR]

Two ResNet-20 runs (an ANN student and a CNN, `--steps` training steps on
digits at `--image_size`, in a temporary folder unless given) are exported
with `addernet_tf.export` in every TFLite format and run in LiteRT's
CompiledModel on the CPU through `addernet_tf.lite.Interpreter` (the same
runtime for both networks; builtin ops go to XNNPACK), at batch 1 and 16
with 1 and 2 threads. Each cell is ANN time / CNN time, best of `--repeats`
rounds in which the two alternate. The CNN has no adder layers, so its
`tflite_adder` file is its `tflite` file and its `tflite_adder_int8` file
its `tflite_int8` one. File sizes are printed too.
"""

import json
import os
import tempfile
import time
import types

import numpy as np
from absl import flags

from addernet_tf import cli, export, lite

FORMATS = ("tflite", "tflite_int8", "tflite_adder", "tflite_adder:max_identity",
           "tflite_adder_int8")
BATCHES = (1, 16)
THREADS = (1, 2)
MIN_SECONDS = 0.2  # per timed call: enough model runs to cover the timer's noise
# The CNN file each custom-op format is compared with (a CNN has no adder layers).
_CNN_TWIN = {"tflite_adder": "tflite", "tflite_adder:max_identity": "tflite",
             "tflite_adder_int8": "tflite_int8"}


def define_flags(flag_values):
    d = cli.Definer(flag_values, module=__name__)
    d.DEFINE_integer("image_size", 32, "Input side of both runs.", lower_bound=8)
    d.DEFINE_integer("steps", 30, "Training steps of each run the benchmark trains.",
                     lower_bound=1)
    d.DEFINE_integer("repeats", 7, "Timed rounds per cell (best of).", lower_bound=1)
    d.DEFINE_string("ann_run", None, "A finished ANN run to export instead of training one.")
    d.DEFINE_string("cnn_run", None, "A finished CNN run (--method=cnn) to compare with.")
    d.DEFINE_boolean("json", False, "Print the result as one JSON line.")


def _train(model_dir, method, image_size, steps):
    # pylint: disable=import-outside-toplevel  (training code only when the benchmark trains)
    from addernet_tf.trainers import flags as trainer_flags
    from addernet_tf.trainers import pkkd
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd"])
    config = types.SimpleNamespace(**{name: values[name].value for name in values})
    for name, value in dict(dataset="digits", image_size=image_size, model="resnet20",
                            batch_size=16, verbose=0, method=method, epochs=1,
                            steps_per_epoch=steps, model_dir=model_dir).items():
        setattr(config, name, value)
    pkkd.train(config)
    return model_dir


def _export(run, name, workdir, tag):
    format_name, _, formulation = name.partition(":")
    out = os.path.join(workdir, f"{tag}_{name.replace(':', '_')}.tflite")
    kwargs = {}
    if format_name in ("tflite_int8", "tflite_adder_int8"):
        kwargs = dict(calibration_images=200, eval_images=200)
    elif format_name == "tflite_adder":
        kwargs = dict(formulation=formulation or "exact", eval_images=200)
    return export.export(run, format_name, out, **kwargs)


def _seconds_per_run(model, images):
    """One timed call: enough runs of `model` to last MIN_SECONDS; seconds per run."""
    runs, start = 0, time.perf_counter()
    while True:
        model(images)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return elapsed / runs


def compare(ann_path, cnn_path, batch, threads, repeats, image_size):
    """Best-of-`repeats` seconds per run of each file, alternating: (ann, cnn)."""
    images = np.random.default_rng(0).integers(0, 256, (batch, image_size, image_size, 3),
                                               dtype=np.uint8)
    with lite.Interpreter(ann_path, threads) as ann, lite.Interpreter(cnn_path, threads) as cnn:
        ann(images), cnn(images)  # warm up: allocation, packing
        best = [np.inf, np.inf]
        for _ in range(repeats):
            for i, model in enumerate((ann, cnn)):
                best[i] = min(best[i], _seconds_per_run(model, images))
    return best


def main(argv=None):
    """Runs the benchmark on `argv` (without the program name; default sys.argv[1:])."""
    args = cli.parse("deploy", define_flags, argv)
    if (args.ann_run is None) != (args.cnn_run is None):
        cli.fail("deploy", "--ann_run and --cnn_run go together", cli.USAGE)
    if lite.load_error() is not None:
        raise SystemExit(f"deploy: the LiteRT adder runner is not available: "
                         f"{lite.load_error()}")
    with tempfile.TemporaryDirectory(prefix="addernet_deploy_") as workdir:
        ann_run, cnn_run = args.ann_run, args.cnn_run
        if ann_run is None:
            ann_run = _train(os.path.join(workdir, "ann"), "ann", args.image_size, args.steps)
            cnn_run = _train(os.path.join(workdir, "cnn"), "cnn", args.image_size, args.steps)
        files, exports = {}, {}
        for name in FORMATS:
            ann = _export(ann_run, name, workdir, "ann")
            cnn = (files[_CNN_TWIN[name]][1] if name in _CNN_TWIN
                   else _export(cnn_run, name, workdir, "cnn")["path"])
            files[name] = (ann["path"], cnn)
            exports[name] = {k: v for k, v in ann.items()
                             if k in ("bytes", "agreement", "max_abs_diff", "widened_ranges")}
            image_size = ann["image_size"]
            exports[name]["cnn_bytes"] = os.path.getsize(cnn)
        cells = []
        for name in FORMATS:
            for batch in BATCHES:
                for threads in THREADS:
                    ann_s, cnn_s = compare(*files[name], batch, threads, args.repeats, image_size)
                    cells.append(dict(format=name, batch=batch, threads=threads,
                                      ann_over_cnn=ann_s / cnn_s, ann_ms=ann_s * 1e3,
                                      cnn_ms=cnn_s * 1e3))
    result = dict(kernel_target=lite.kernel_target(),
                  int8_kernel_target=lite.kernel_target(int8=True), image_size=image_size,
                  cells=cells, exports=exports, repeats=args.repeats)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return result
    print(f"ResNet-20 ANN vs CNN, {image_size}x{image_size}x3, LiteRT CompiledModel (CPU), "
          f"adder kernels: {result['kernel_target']}, int8 {result['int8_kernel_target']}; best "
          f"of {args.repeats} alternating rounds")
    print("ratios are ANN time / CNN time, each file against the CNN exported the same way "
          "(tflite_adder: the CNN's tflite file; tflite_adder_int8: its tflite_int8 file)")
    header = "".join(f"  b{b} t{t}" for b in BATCHES for t in THREADS)
    print(f"{'format':<28}{header}   ANN MB   CNN MB")
    for name in FORMATS:
        row = [c for c in cells if c["format"] == name]
        ratios = "".join(f"{c['ann_over_cnn']:>7.2f}" for c in row)
        sizes = exports[name]
        print(f"{name:<28}{ratios}   {sizes['bytes'] / 2**20:6.2f}   "
              f"{sizes['cnn_bytes'] / 2**20:6.2f}")
    print("CNN ms (absolute, noisy): " + ", ".join(
        f"{c['format']} b{c['batch']} t{c['threads']} {c['cnn_ms']:.2f}" for c in cells
        if c["format"] in ("tflite", "tflite_int8")))
    for name in FORMATS:
        e = exports[name]
        if "max_abs_diff" in e:
            print(f"{name}: max |probability difference| to the float student "
                  f"{e['max_abs_diff']:.1e}, top-1 agreement {e['agreement']:.1%}")
        elif "agreement" in e:
            print(f"{name}: int8 top-1 agreement with the float student {e['agreement']:.1%}")
    return result


if __name__ == "__main__":
    main()
