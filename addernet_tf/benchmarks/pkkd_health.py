# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Is PKKD's feature loss healthy? Three checks on a real run, one line each.

    python -m benchmarks.pkkd_health --flagfile=configs/demo_digits.flags \\
        [--other_seed=1] [--health_dir=runs/pkkd_health] [--json]

Trains the configured run twice with `trainers.pkkd.train`: once with
`--other_seed` (only its teacher is used), then with `--seed`, watched by a
callback. Every trainer flag applies (use `--method=pkkd`). It reports:

  sigma     no σ of either network ends an epoch within 10x of its bounds
            (`SIGMA_BOUNDS`): a map there is nearly flat or a step;
  L_mid     the last epoch's mean L_mid is at most half the first epoch's;
  teacher   on one validation batch (both networks in inference mode),
            L_mid against the student's own teacher is below L_mid against the
            teacher of the run with `--other_seed`: the loss tells this
            student's teacher apart from another that solves the same task;
  eval gap  (item of evidence, not a pass/fail) per epoch, the student's
            validation accuracy minus its training accuracy.

Exit status 0 whatever the outcome: this is a measurement; the lines say
PASS or FAIL. `--json` prints one JSON object instead.
"""

import json
import math
import os
import types

import addernet_tf  # noqa: F401  (first: TensorFlow starts without its noise)

import keras  # noqa: E402,I100
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from addernet_tf import cli
from addernet_tf.models import with_taps
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd
from addernet_tf.trainers.monitoring import closest_to_bounds

__all__ = ["HealthProbe", "measure", "main"]

_BOUND_FACTOR = 10.0


class HealthProbe(keras.callbacks.Callback):
    """Records σ and L_mid per epoch; at the end, L_mid against two teachers.

    Args:
      batch: `(images, labels)` on which to compare the teachers.
      other_teacher: path of another run's `teacher.keras`, or None.
      tap_kind: the trainer's `--tap`.
    """

    def __init__(self, batch, other_teacher, tap_kind):
        super().__init__()
        self.batch, self.other_teacher, self.tap_kind = batch, other_teacher, tap_kind
        self.epochs, self.own, self.other = [], None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        sigmas = {k: float(v) for k, v in logs.items() if k.startswith("sigma_")}
        self.epochs.append(dict(
            epoch=epoch + 1, feature=float(logs.get("feature", math.nan)), sigmas=sigmas,
            train_accuracy=float(logs.get("student_accuracy", math.nan)),
            val_accuracy=float(logs.get("val_student_accuracy", math.nan))))

    def _l_mid(self, teacher):
        distiller = self.model
        images = self.batch[0]
        _, s_features = with_taps(distiller.student, self.tap_kind)(images, training=False)
        _, t_features = with_taps(teacher, self.tap_kind)(images, training=False)
        per_example, _ = distiller.feature_loss(list(s_features), list(t_features))
        return float(np.mean(per_example))

    def on_train_end(self, logs=None):
        self.own = self._l_mid(self.model.teacher)
        if self.other_teacher:
            self.other = self._l_mid(keras.models.load_model(self.other_teacher))


def measure(config, other_seed, health_dir):
    """Runs both trainings; returns the report dict (see the module doc)."""
    if config.method != "pkkd":
        raise ValueError(f"--method={config.method}: the health checks are for pkkd")
    if other_seed == config.seed:
        raise ValueError(f"--other_seed={other_seed}: must differ from --seed={config.seed}")
    settings = trainer_flags.settings_of(config)
    other_dir = os.path.join(health_dir, f"seed{other_seed}")
    if not os.path.exists(os.path.join(other_dir, "summary.json")):
        pkkd.train(types.SimpleNamespace(**dict(settings, seed=other_seed, model_dir=other_dir)),
                   evaluate_test=False)
    split = "validation" if config.validation_split > 0 else "train"
    batch = next(iter(pkkd.load_split(config, split, augment=False, shuffle=False)))
    probe = HealthProbe(batch, os.path.join(other_dir, "teacher.keras"), config.tap)
    own_dir = os.path.join(health_dir, f"seed{config.seed}")
    # The probe watches every epoch: the own run always trains from scratch.
    summary = pkkd.train(types.SimpleNamespace(**dict(settings, model_dir=own_dir,
                                                      overwrite=True)),
                         callbacks=[probe], evaluate_test=False)
    factor, name, value = closest_to_bounds([row["sigmas"] for row in probe.epochs])
    first, last = probe.epochs[0]["feature"], probe.epochs[-1]["feature"]
    return {
        "sigma_pass": factor >= _BOUND_FACTOR, "sigma_closest": dict(
            name=name, value=value, factor_to_bound=factor),
        "l_mid_first_epoch": first, "l_mid_last_epoch": last,
        "l_mid_pass": last <= 0.5 * first,
        "l_mid_own_teacher": probe.own, "l_mid_other_teacher": probe.other,
        "teacher_pass": probe.own < probe.other,
        "eval_gap": [round(r["val_accuracy"] - r["train_accuracy"], 4) for r in probe.epochs],
        "epochs": probe.epochs,
        "student_val_accuracy": summary["student_val_accuracy"],
    }


def _lines(report):
    c = report["sigma_closest"]
    yes = {True: "PASS", False: "FAIL"}
    return [
        f"sigma    {yes[report['sigma_pass']]}: nearest a bound is {c['name']} = "
        f"{c['value']:.4g}, {c['factor_to_bound']:.3g}x from it (needs >= {_BOUND_FACTOR:g}x)",
        f"L_mid    {yes[report['l_mid_pass']]}: first epoch {report['l_mid_first_epoch']:.4f}, "
        f"last {report['l_mid_last_epoch']:.4f} "
        f"(ratio {report['l_mid_last_epoch'] / report['l_mid_first_epoch']:.3f}, needs <= 0.5)",
        f"teacher  {yes[report['teacher_pass']]}: L_mid on a batch vs own teacher "
        f"{report['l_mid_own_teacher']:.4f}, vs another seed's {report['l_mid_other_teacher']:.4f}",
        "eval gap (val - train accuracy per epoch): "
        + " ".join(f"{g:+.3f}" for g in report["eval_gap"]),
    ]


def main(f):
    report = measure(f, f.other_seed, f.health_dir)
    if f.json:
        print(json.dumps(report))
    else:
        print("\n".join(_lines(report)))


def define_flags():
    trainer_flags.define_flags()
    flags.DEFINE_integer("other_seed", 1, "Seed of the run whose teacher is the stranger.")
    flags.DEFINE_string("health_dir", "runs/pkkd_health", "Both runs go under this directory.")
    flags.DEFINE_boolean("json", False, "Print one JSON object.")


if __name__ == "__main__":
    cli.run("pkkd_health", define_flags, main, validate=trainer_flags.validate,
            errors=(ValueError, pkkd.NonFiniteLossError))
