# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Speed of one PKKD training step, relative to the same step with a CNN student.

    python -m benchmarks.train_step [--batch_size 32] [--image_size 32] [--model resnet20]
                                    [--steps 4] [--repeats 7] [--json]

Rows (`CONFIGS`): pkkd_ann, the measured step (adder student, conv teacher, PKKD kernel heads);
pkkd_cnn, the baseline (the same step with a conv student); kd_ann (logits-only KD); ann and
cnn (a student alone on cross-entropy). `time/base` = median step time / the baseline's (2.0 =
half its images/s); then ratios showing where the time goes. docs/DESIGN.md, "Measured", has
the details (workload, timing method, every ratio).
"""

import json
import math
import time

import keras
import numpy as np
import tensorflow as tf

from addernet_tf import cli
from addernet_tf.models import MODELS, get_model
from addernet_tf.ops import active_backend
from addernet_tf.trainers import losses
from addernet_tf.trainers.distiller import Distiller

NUM_CLASSES = 10
NUM_BATCHES = 4  # distinct batches the timed loop cycles through
WEIGHT_DECAY = 5e-4
BASELINE = "pkkd_cnn"

# name -> (student conv form, teacher?, alpha, feature loss?, description)
CONFIGS = {
    "pkkd_ann": ("ann", True, 1.0, True, "PKKD: ANN student + CNN teacher + kernel heads"),
    "pkkd_cnn": ("cnn", True, 1.0, True, "baseline: same KD step, CNN student"),
    "kd_ann": ("ann", True, 1.0, False, "plain KD (logits only), ANN student"),
    "ann": ("ann", False, 0.0, False, "vanilla ANN, cross-entropy only"),
    "cnn": ("cnn", False, 0.0, False, "vanilla CNN, cross-entropy only"),
}


def _sgd():
    # A small learning rate keeps the random-label runs finite (NaNs would
    # change the kernels' speed); its value does not change the step's cost.
    return keras.optimizers.SGD(0.01, momentum=0.9)


def build_distiller(name, model, image_size, seed=0):
    """The `Distiller` of configuration `name` (see `CONFIGS`), compiled."""
    student_network, with_teacher, alpha, with_features, _ = CONFIGS[name]
    keras.utils.set_random_seed(seed)
    shape = (image_size, image_size, 3)
    student = get_model(model, num_classes=NUM_CLASSES, network=student_network, input_shape=shape,
                        name="student")
    teacher = (get_model(model, num_classes=NUM_CLASSES, network="cnn", input_shape=shape,
                         name="teacher") if with_teacher else None)
    distiller = Distiller(
        student, teacher, losses.KernelFeatureLoss() if with_features else None,
        alpha=alpha, beta=1.0 if with_features else 0.0,
        student_weight_decay=WEIGHT_DECAY, teacher_weight_decay=WEIGHT_DECAY)
    distiller.compile(_sgd(), _sgd() if with_teacher else None)
    return distiller


def _data(batch_size, image_size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((NUM_BATCHES, batch_size, image_size, image_size, 3))
    y = rng.integers(0, NUM_CLASSES, (NUM_BATCHES, batch_size))
    return tf.constant(x, tf.float32), tf.constant(y, tf.int32)


def _looped(distiller, xs, ys):
    """A tf.function running `n` training steps; returns the summed student loss."""

    @tf.function
    def run(n):
        total = tf.zeros([], tf.float32)
        for i in tf.range(n):
            j = i % NUM_BATCHES
            logs = distiller.train_step((tf.gather(xs, j), tf.gather(ys, j)))
            total += tf.cast(logs["student_loss"], tf.float32)
        return total

    return run


def measure(model="resnet20", batch_size=32, image_size=32, steps=4, repeats=7, seed=0):
    """Times every configuration; returns ({name: [seconds per step, per repeat]}, finite).

    `finite` is False when some configuration's loss became NaN/Inf.
    """
    xs, ys = _data(batch_size, image_size, seed)
    runs = {name: _looped(build_distiller(name, model, image_size, seed), xs, ys)
            for name in CONFIGS}
    one, n = tf.constant(1), tf.constant(steps)
    finite = True
    # Five traces of one Python function are expected here: hide TF's
    # "triggered tf.function retracing" warning while they happen.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        for run in runs.values():  # trace and warm up: one step each
            finite &= math.isfinite(float(run(one)))
    finally:
        logger.setLevel(level)
    names = list(runs)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            loss = float(runs[name](n))
            times[name].append((time.perf_counter() - start) / steps)
            finite &= math.isfinite(loss)
    return times, finite


def summarize(times, batch_size):
    """Medians, images/s and every ratio against `BASELINE` (see the module doc)."""
    median = {name: float(np.median(t)) for name, t in times.items()}
    base = median[BASELINE]
    configs = {
        name: {
            "description": CONFIGS[name][4],
            "seconds_per_step": median[name],
            "images_per_s": batch_size / median[name],
            "time_over_baseline": median[name] / base,
            "spread": (max(t) - min(t)) / median[name],
        }
        for name, t in times.items()
    }
    pkkd = median["pkkd_ann"]
    derived = {
        "ann_over_cnn": median["ann"] / median["cnn"],
        "pkkd_ann_over_ann": pkkd / median["ann"],
        "pkkd_ann_over_kd_ann": pkkd / median["kd_ann"],
        "pkkd_cnn_over_cnn": base / median["cnn"],
    }
    split = {
        "student_ann": median["ann"] / pkkd,
        "teacher_and_logit_kd": (median["kd_ann"] - median["ann"]) / pkkd,
        "kernel_heads_and_feature_loss": (pkkd - median["kd_ann"]) / pkkd,
    }
    return configs, derived, split


def define_flags(flag_values):
    d = cli.Definer(flag_values, module=__name__)
    d.DEFINE_enum("model", "resnet20", sorted(MODELS), "The network (student and teacher).")
    d.DEFINE_integer("batch_size", 32, "Batch size.", lower_bound=1)
    d.DEFINE_integer("image_size", 32, "Input side.", lower_bound=1)
    d.DEFINE_integer("steps", 4, "Training steps per timed call.", lower_bound=1)
    d.DEFINE_integer("repeats", 7, "Timed calls per configuration.", lower_bound=1)
    d.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
    d.DEFINE_boolean("json", False, "Exactly one JSON line.")


def main(argv=None):
    """Runs the benchmark on `argv` (without the program name; default sys.argv[1:])."""
    args = cli.parse("train_step", define_flags, argv)
    backend = active_backend()
    if backend != "compiled":
        raise SystemExit("the compiled op library is not loaded: run `make` first "
                         "(the builtin-op adder twin is ~100x slower: no useful ratio)")

    times, finite = measure(args.model, args.batch_size, args.image_size, args.steps,
                            args.repeats, args.seed)
    configs, derived, split = summarize(times, args.batch_size)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    result = {
        "benchmark": "train_step",
        "model": args.model, "batch_size": args.batch_size, "image_size": args.image_size,
        "steps": args.steps, "repeats": args.repeats, "backend": backend,
        "intra_op_threads": threads, "losses_finite": finite,
        "baseline": BASELINE,
        "pkkd_ann_time_over_baseline": configs["pkkd_ann"]["time_over_baseline"],
        "kd_ann_time_over_baseline": configs["kd_ann"]["time_over_baseline"],
        "ann_time_over_baseline": configs["ann"]["time_over_baseline"],
        "cnn_time_over_baseline": configs["cnn"]["time_over_baseline"],
        **derived,
        "pkkd_ann_split": split,
        "configs": configs,
    }
    if args.json:
        print(json.dumps(result), flush=True)
        return result

    print(f"Distiller training step, {args.model}, batch {args.batch_size}, "
          f"{args.image_size}x{args.image_size}x3, {args.steps} steps per call, median of "
          f"{args.repeats} round-robin calls, {threads} intra-op threads, adder backend {backend}")
    print(f"ratios are step time / the baseline's ({BASELINE}: {CONFIGS[BASELINE][4]})")
    print(f"{'config':<10}{'time/base':>11}{'images/s':>10}{'spread':>8}   description")
    for name, c in configs.items():
        print(f"{name:<10}{c['time_over_baseline']:>11.2f}{c['images_per_s']:>10.1f}"
              f"{c['spread']:>8.0%}   {c['description']}")
    print("where the time goes:")
    print(f"  ann / cnn            {derived['ann_over_cnn']:6.2f}   adder kernels in a plain step")
    print(f"  pkkd_cnn / cnn       {derived['pkkd_cnn_over_cnn']:6.2f}   "
          "distillation overhead on a CNN step")
    print(f"  pkkd_ann / ann       {derived['pkkd_ann_over_ann']:6.2f}   "
          "distillation overhead on an ANN step")
    print(f"  pkkd_ann / kd_ann    {derived['pkkd_ann_over_kd_ann']:6.2f}   "
          "kernel heads + feature loss")
    print(f"  pkkd_ann step: student ANN {split['student_ann']:.0%}, teacher + logit KD "
          f"{split['teacher_and_logit_kd']:.0%}, kernel heads + feature loss "
          f"{split['kernel_heads_and_feature_loss']:.0%} (differences of medians)")
    print("images/s are absolute (noise on shared machines); "
          "spread = (max - min) / median over the repeats")
    if not finite:
        print("WARNING: a loss became NaN/Inf during the run; its timings may be off")
    return result


if __name__ == "__main__":
    main()
