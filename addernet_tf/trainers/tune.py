# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""KerasTuner search over PKKD's loss weights, kernel-map sigmas and learning rate.

    python -m trainers.tune --flagfile=configs/resnet20_cifar10.flags --tuner=bayesian \\
        --max_trials=20 [--tune_dir=runs/resnet20_cifar10_tune] [--tie_alpha_beta]
    python -m trainers.pkkd --flagfile=<tune_dir>/best.flags  # the best trial, and its test figure

Every `trainers.pkkd` flag sets the base configuration; each trial trains it with the trial's
values in `<tune_dir>/<tuner>/trial_<id>/`, ranked on the validation split. The same command
resumes a search. docs/DESIGN.md, "Tuning (`addernet_tf/trainers/tune.py`)", has the details.
"""

import contextlib
import gc
import json
import math
import os
import re
import sys
import traceback
import types

import keras
import keras_tuner
from absl import flags
from keras_tuner.src import config as keras_tuner_config
from keras_tuner.src import utils as keras_tuner_utils

from addernet_tf import _atomic, cli
from addernet_tf.export.run import SUMMARY, read_summary
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd, run_dir
from addernet_tf.trainers.history import read_history
from addernet_tf.trainers.monitoring import feature_health

__all__ = ["SEARCH_SPACE", "TUNERS", "OBJECTIVE", "define_flags", "validate", "searched",
           "search", "main"]

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVE = "val_student_accuracy"
# name: (low, high), log-uniform.
SEARCH_SPACE = {
    "alpha": (0.1, 10.0),
    "beta": (0.1, 10.0),
    "sigma_a_init": (0.25, 16.0),
    "sigma_c_init": (0.5, 2.0),
    "learning_rate": (0.005, 0.5),
}
TIED = "alpha_beta"  # the one hyperparameter behind alpha and beta with --tie_alpha_beta
# Settings that do not change a trial's result: they may differ when a search resumes.
_NOT_PART_OF_THE_SEARCH = trainer_flags.OPERATIONAL


def define_flags(flag_values=flags.FLAGS):
    """Registers the trainer's flags and the search's own on `flag_values`."""
    trainer_flags.define_flags(flag_values)
    flags.DEFINE_string("tuner", "random", f"One of {', '.join(TUNERS)}.",
                        flag_values=flag_values)
    flags.DEFINE_integer("max_trials", 10, "Most trials (a larger value extends a search).",
                         flag_values=flag_values)
    flags.DEFINE_string("tune_dir", None, "The search's directory; default: <model_dir>_tune.",
                        flag_values=flag_values)
    flags.DEFINE_boolean("tie_alpha_beta", False, "Search one value for alpha = beta.",
                         flag_values=flag_values)
    flags.DEFINE_integer("hyperband_factor", 3, "hyperband: epochs and trials ratio between "
                         "rounds.", flag_values=flag_values)


def validate(tuner, max_trials, hyperband_factor=3, distribution_strategy="default",
             validation_split=0.1):
    """First problem with the search's own flags, as one line, or None."""
    if validation_split == 0:
        return ("--validation_split=0: the search ranks trials on a validation split carved "
                "from the training split (it never reads the test split); give a fraction > 0")
    if tuner not in TUNERS:
        return f"--tuner={tuner}: must be one of {', '.join(TUNERS)}"
    if max_trials <= 0:
        return f"--max_trials={max_trials}: must be > 0"
    if hyperband_factor < 2:
        return f"--hyperband_factor={hyperband_factor}: must be >= 2"
    if distribution_strategy == "multi_worker":  # every worker would run its own search
        return ("--distribution_strategy=multi_worker: not supported by trainers.tune, which "
                "runs all trials in one process (default or mirrored)")
    return None


def searched(config, tie_alpha_beta=False):
    """Names of the hyperparameters searched for a dict of trainer settings."""
    names = []
    if config["method"] not in ("cnn", "ann"):
        feature_loss = config["method"] != "kd"
        if tie_alpha_beta:
            names.append(TIED)
        else:
            names += ["alpha", "beta"] if feature_loss else ["alpha"]
    if config["method"] == "pkkd" and config["kernel"]:
        names += ["sigma_a_init", "sigma_c_init"]
    return names + ["learning_rate"]


def _hyperparameters(names):
    hp = keras_tuner.HyperParameters()
    for name in names:
        low, high = SEARCH_SPACE["alpha" if name == TIED else name]
        hp.Float(name, low, high, sampling="log")
    return hp


def _trial_settings(base, values, model_dir):
    """The trainer's settings of one trial: `base` with the trial's `values`."""
    # A trial's folder is resumed, never cleared (--overwrite is not for trials).
    settings = dict(base, model_dir=model_dir, overwrite=False)
    for name in SEARCH_SPACE:
        if name in values:
            settings[name] = float(values[name])
    if TIED in values:
        settings["alpha"] = settings["beta"] = float(values[TIED])
    if "tuner/epochs" in values:  # hyperband's budget for this trial
        settings["epochs"] = int(values["tuner/epochs"])
    return settings


def _finished_summary(model_dir):
    """The summary of a trial trained before its search was cut off, or None."""
    summary = read_summary(model_dir)
    # A summary without a validation figure (written before trials had one) is rerun.
    return summary if summary and summary.get("student_val_accuracy") is not None else None


class _TrainerTuner(keras_tuner.Tuner):
    """Runs each trial as one `trainers.pkkd.train` in the trial's directory."""

    def __init__(self, oracle, base, **kwargs):
        self.base = base
        super().__init__(oracle=oracle, **kwargs)

    def trial_settings(self, trial):
        return _trial_settings(self.base, trial.hyperparameters.values,
                               self.get_trial_dir(trial.trial_id))

    def run_trial(self, trial, *args, **kwargs):
        settings = self.trial_settings(trial)
        try:
            summary = _finished_summary(settings["model_dir"])
            if summary is None:
                # A summary without a validation figure: the trial trains again.
                settings["overwrite"] = os.path.exists(
                    os.path.join(settings["model_dir"], SUMMARY))
                keras.backend.clear_session()
                gc.collect()
                summary = pkkd.train(types.SimpleNamespace(**settings), evaluate_test=False)
        except pkkd.NonFiniteLossError as e:  # e.g. too large a learning rate
            print(f"trial {trial.trial_id} failed: {e}", file=sys.stderr)
            raise keras_tuner.errors.FailedTrialError(str(e)) from None
        except ValueError as e:  # the same for every trial: stop the search
            raise keras_tuner.errors.FatalValueError(str(e)) from None
        except Exception as e:  # a bug or no resources: other trials would fail as well
            traceback.print_exc()
            raise keras_tuner.errors.FatalRuntimeError(
                f"trial {trial.trial_id}: {type(e).__name__}: {_last_line(str(e))}") from e
        return {OBJECTIVE: float(summary["student_val_accuracy"])}


def _save_json_atomically(path, obj):
    text = json.dumps(obj)
    _atomic.write_text(path, text)
    return text


@contextlib.contextmanager
def _atomic_tuner_state():
    """KerasTuner writes its oracle's, tuner's and trials' state files in place
    (all through `keras_tuner.src.utils.save_json`): a kill inside one leaves
    a torn oracle.json that no resume can read. Here they are renamed into place."""
    before = keras_tuner_utils.save_json
    keras_tuner_utils.save_json = _save_json_atomically
    try:
        yield
    finally:
        keras_tuner_utils.save_json = before


@contextlib.contextmanager
def _trial_failures_reported_by_run_trial():
    """KerasTuner prints every failed trial's traceback while its `DEBUG` is on
    (the default); `run_trial` prints one line for the failures it expects."""
    before = keras_tuner_config.DEBUG
    keras_tuner_config.DEBUG = False
    try:
        yield
    finally:
        keras_tuner_config.DEBUG = before


def _oracle(tuner, hp, base, max_trials, hyperband_factor):
    objective = keras_tuner.Objective(OBJECTIVE, "max")
    # KerasTuner draws a random seed for 0, so shift ours by one.
    # Only diverged trials fail (others stop the search), and divergence is a
    # result: no limit on failures in a row.
    common = dict(objective=objective, hyperparameters=hp, seed=base["seed"] + 1,
                  tune_new_entries=False, allow_new_entries=False,
                  max_consecutive_failed_trials=max_trials + 1)
    if tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=base["epochs"],
                                                 factor=hyperband_factor, **common)
    oracle.max_trials = max_trials
    return oracle


def _check_same_search(path, signature):
    """Writes `signature` to `path`, or checks it against the one there."""
    if os.path.exists(path):
        before = _atomic.read_json(path, "the search's settings")
        for name in sorted(set(before) & set(signature)):
            if before[name] != signature[name]:
                return (f"--tune_dir={os.path.dirname(path)}: holds a search with "
                        f"--{name}={before[name]}, not {signature[name]}; "
                        "use another --tune_dir")
        return None
    _atomic.write_json(path, signature)
    return None


def _rows(tuner):
    """One dict per trial: ranked completed trials first, then the others."""
    rows = []
    for trial in tuner.oracle.trials.values():
        settings = tuner.trial_settings(trial)
        completed = trial.status == "COMPLETED" and trial.score is not None
        rows.append(dict(
            trial_id=trial.trial_id, status=trial.status,
            score=float(trial.score) if completed else None,
            message=_last_line(trial.message), settings=settings,
            health=feature_health(read_history(os.path.join(settings["model_dir"],
                                                             "history.csv")))))
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["trial_id"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["score"] is not None else None
    return rows


def _last_line(text):
    """A failed trial's reason: its traceback's last line, less the exception's name."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return re.sub(r"^[\w.]+: ", "", lines[-1]) if lines else ""


def _table(rows):
    header = ("rank", "trial", "alpha", "beta", "sigma_a", "sigma_c", "lr", "epochs",
              "L_mid_last/first", "sigma_to_bound", OBJECTIVE)
    lines = [header]
    for row in rows:
        s = row["settings"]
        lines.append((
            str(row["rank"] or "-"), row["trial_id"],
            *(f"{s[name]:.4g}" for name in ("alpha", "beta", "sigma_a_init", "sigma_c_init",
                                             "learning_rate")),
            str(s["epochs"]), *_health_cells(row["health"]),
            f"{row['score']:.4f}" if row["score"] is not None
            else f"{row['status']} {row['message']}".strip()))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     + "  " + line[-1] for line in lines)


def _health_cells(health):
    """The trial's L_mid last/first epoch and its σ's factor to a bound, or "-"."""
    ratio, factor = health["l_mid_ratio"], health["sigma_factor"]
    return (f"{ratio:.3f}" if ratio is not None else "-",
            f"{factor:.3g}x" if math.isfinite(factor) else "-")


def _flag_line(name, value):
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    return f"--{name}={value!r}" if isinstance(value, float) else f"--{name}={value}"


def _write_best_flags(path, best, base, tuner_name):
    settings = dict(best["settings"], model_dir=os.path.join(os.path.dirname(path), "best"))
    trained = settings["epochs"]
    settings["epochs"] = base["epochs"]
    lines = [f"# Best trial {best['trial_id']} of a {tuner_name} search (trainers.tune): "
             f"{OBJECTIVE} {best['score']:.4f} after {trained} epochs.",
             "# python -m trainers.pkkd --flagfile=" + path]
    lines += [_flag_line(name, value) for name, value in sorted(settings.items())
              if value is not None]
    _atomic.write_text(path, "\n".join(lines) + "\n")


def search(config, tuner="random", max_trials=10, tune_dir=None, tie_alpha_beta=False,
           hyperband_factor=3, out=None):
    """Runs (or resumes) a search; prints the ranked table; writes best.flags.

    Args:
      config: the base configuration: absl `FLAGS`, or an object or dict with the
        attributes of `trainers.flags`.
      tuner: one of `TUNERS`.
      max_trials: most trials in the search, counting those already run.
      tune_dir: the search's directory; default `<model_dir>_tune`.
      tie_alpha_beta: search one value for alpha = beta.
      hyperband_factor: hyperband's reduction factor.
      out: where the table goes (a file; default stdout).

    Returns:
      A dict: `rows` (one per trial, best first: rank, trial_id, status, score,
      message, settings, health) and `best_flags` (the path, or None without a
      completed trial).

    Raises:
      ValueError: a bad setting, a different search in `tune_dir`, or a trial
        that fails for a reason every trial would share (e.g. a missing data set).
      RuntimeError: a trial crashed (its traceback went to stderr).
    """
    out = out or sys.stdout
    base = trainer_flags.settings_of(config)
    problem = (trainer_flags.validate(types.SimpleNamespace(**base))
               or validate(tuner, max_trials, hyperband_factor, base["distribution_strategy"],
                           base["validation_split"]))
    if problem:
        raise ValueError(problem)
    tune_dir = tune_dir or base["model_dir"].rstrip("/\\") + "_tune"
    run_dir.check_writable_dir(tune_dir, "tune_dir")
    signature = dict({k: v for k, v in base.items() if k not in _NOT_PART_OF_THE_SEARCH},
                     tuner=tuner, tie_alpha_beta=bool(tie_alpha_beta))
    if tuner == "hyperband":
        signature["hyperband_factor"] = hyperband_factor
    problem = _check_same_search(os.path.join(tune_dir, "search.json"), signature)
    if problem:
        raise ValueError(problem)

    hp = _hyperparameters(searched(base, tie_alpha_beta))
    with _trial_failures_reported_by_run_trial(), _atomic_tuner_state():
        kt = _TrainerTuner(_oracle(tuner, hp, base, max_trials, hyperband_factor), base,
                           directory=tune_dir, project_name=tuner, overwrite=False)
        kt.search(verbose=1 if base["verbose"] else 0)

    rows = _rows(kt)
    print(f"\n{tuner} search in {os.path.abspath(tune_dir)}: {len(rows)} trials, "
          f"ranked by {OBJECTIVE}", file=out)
    print(_table(rows), file=out)
    best_flags = None
    if rows and rows[0]["score"] is not None:
        best_flags = os.path.join(tune_dir, "best.flags")
        _write_best_flags(best_flags, rows[0], base, tuner)
        print(f"best trial {rows[0]['trial_id']}: {best_flags}", file=out)
    else:
        print("no trial completed: no best.flags", file=out)
    return {"rows": rows, "best_flags": best_flags}


def _rules(f):
    return (trainer_flags.validate(f)
            or validate(f.tuner, f.max_trials, f.hyperband_factor, f.distribution_strategy,
                        f.validation_split))


def main(f):
    # ValueError and RuntimeError (a trial's crash) end the search in one line.
    search(f, tuner=f.tuner, max_trials=f.max_trials, tune_dir=f.tune_dir,
           tie_alpha_beta=f.tie_alpha_beta, hyperband_factor=f.hyperband_factor)


if __name__ == "__main__":
    cli.run("tune", define_flags, main, validate=_rules)
