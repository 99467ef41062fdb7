# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""What a person watches while a run trains: one progress line, one warning.

The `Distiller` logs every scalar it has (σ, ‖ρ‖ and L_mid of every tap):
TensorBoard and history.csv keep them all. The progress line carries only
the losses and accuracies of the student and the teacher, with their
validation figures. `feature_health` reads a finished run's epochs back.
"""

import math
import sys
import time

import keras

from addernet_tf.layers.kernel_heads import SIGMA_BOUNDS

__all__ = ["WATCHED", "ProgressLine", "SigmaBoundWarning", "closest_to_bounds",
           "feature_health"]

# (log key, label) in display order; those a run does not log are skipped.
WATCHED = (
    ("student_loss", "loss"), ("student_ce", "ce"), ("kd", "kd"), ("feature", "feat"),
    ("student_accuracy", "acc"), ("val_student_accuracy", "val_acc"),
    ("teacher_ce", "teacher_ce"), ("teacher_accuracy", "teacher_acc"),
    ("val_teacher_accuracy", "teacher_val_acc"),
)


def _watched(logs):
    return [(label, float(logs[key])) for key, label in WATCHED if key in (logs or {})]


class ProgressLine(keras.callbacks.Callback):
    """Keras' progress display, restricted to `WATCHED` (run `fit` with verbose=0).

    Args:
      epochs: total epochs of the run.
      steps: steps per epoch (None when unknown).
      verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
    """

    def __init__(self, epochs, steps, verbose):
        super().__init__()
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self._bar, self._start, self._seen = None, 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._seen = time.time(), 0
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{self.epochs}")
            self._bar = keras.utils.Progbar(self.steps, verbose=1)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self._bar is not None:
            self._bar.update(batch + 1, _watched(logs), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 1 and self._bar is not None:
            self._bar.update(self.steps or self._seen, _watched(logs), finalize=True)
        elif self.verbose == 2:
            parts = " - ".join(f"{label} {value:.4f}" for label, value in _watched(logs))
            print(f"epoch {epoch + 1}/{self.epochs} - {time.time() - self._start:.0f}s - {parts}",
                  flush=True)


class SigmaBoundWarning(keras.callbacks.Callback):
    """Warns in one line per epoch when σs newly end it near their bounds.

    "Near" is within `factor` of `SIGMA_BOUNDS`: there a map is all but flat
    (linear once standardized; σ high) or all but a step (σ low), and L_mid
    tells its layer little. Reads the `sigma_*` entries the PKKD loss logs;
    each map is named once per run.
    """

    def __init__(self, factor=10.0, stream=None):
        super().__init__()
        self.factor = factor
        self.stream = stream
        self.warned = {}

    def on_epoch_end(self, epoch, logs=None):
        low, high = SIGMA_BOUNDS
        new = {}
        for key, value in sorted((logs or {}).items()):
            if key.startswith("sigma_") and key not in self.warned:
                value = float(value)
                if value <= low * self.factor or value >= high / self.factor:
                    new[key] = value
        if new:
            self.warned.update(new)
            listed = ", ".join(f"{key}={value:.3g}" for key, value in new.items())
            print(f"warning: epoch {epoch + 1}: {len(new)} kernel-map sigma(s) within "
                  f"{self.factor:g}x of their bounds [{low:g}, {high:g}], where a map is nearly "
                  f"flat (high) or a step (low) and L_mid tells its layer little: {listed}",
                  file=self.stream or sys.stderr, flush=True)


def closest_to_bounds(epochs):
    """The σ nearest `SIGMA_BOUNDS` over a run: `(factor, name, value)`.

    Args:
      epochs: per-epoch logs, each a dict of name → number (or numeric
        string, as `read_history` gives); the `sigma_*` entries are read.

    Returns:
      `factor` = min(value / low, high / value) (≥ 1; ∞ when no σ was logged),
      with the σ's name and value (None, None without one).
    """
    low, high = SIGMA_BOUNDS
    worst = (math.inf, None, None)
    for logs in epochs:
        for name, value in logs.items():
            if name.startswith("sigma_"):
                value = _number(value)
                if value is None or not value > 0:  # an empty or unreadable cell
                    continue
                factor = min(value / low, high / value)
                if factor < worst[0]:
                    worst = (factor, name, value)
    return worst


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def feature_health(epochs):
    """The PKKD loss's health over a run's epochs (e.g. history.csv's rows).

    Returns:
      `{"l_mid_ratio": last epoch's mean L_mid / first epoch's (None without
      a `feature` log or with one epoch), "sigma_factor", "sigma_name",
      "sigma_value": `closest_to_bounds`}`. Healthy: ratio ≤ 0.5 and factor
      ≥ 10 (docs/DESIGN.md, "σ health").
    """
    feature = [_number(logs.get("feature")) for logs in epochs]
    feature = [value for value in feature if value is not None and math.isfinite(value)]
    ratio = feature[-1] / feature[0] if len(feature) > 1 and feature[0] > 0 else None
    factor, name, value = closest_to_bounds(epochs)
    return {"l_mid_ratio": ratio, "sigma_factor": factor, "sigma_name": name,
            "sigma_value": value}
