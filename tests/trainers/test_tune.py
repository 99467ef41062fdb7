# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`python -m trainers.tune`: real tiny searches, resume, tied alpha = beta, hyperband, errors."""

import csv
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest
from absl import flags

from tests import tiny_model
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd
from addernet_tf.trainers import tune

# KerasTuner 1.4.8's own threading calls; the Gaussian process on a tiny fake search.
pytestmark = [pytest.mark.filterwarnings("ignore:currentThread:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:getName:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILE = os.path.join(REPO, "configs", "resnet20_cifar10.flags")
TINY = ("--dataset=digits", "--image_size=8", f"--model={tiny_model.SPEC}", "--epochs=2",
        "--steps_per_epoch=1", "--batch_size=16", "--verbose=0")

# TensorFlow's native log lines, printed before absl starts whatever
# TF_CPP_MIN_LOG_LEVEL says (as in test_pkkd_cli.py).
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::"
    r"|To enable the following instructions)")


def _run_cli(*args, timeout=300, background=None):
    """Runs `python -m trainers.tune` (in a background job: with `background.run`)."""
    argv = [sys.executable, "-m", "addernet_tf.trainers.tune", *args]
    if background is None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
    else:
        env = dict(background.environ, TF_CPP_MIN_LOG_LEVEL="2")
        proc = background.run(argv, cwd=REPO, env=env, timeout=timeout)
    own = [line for line in proc.stderr.splitlines()
           if line.strip() and not _TF_NATIVE_LOG.match(line)]
    return proc, own


def _base(model_dir, *args):
    """The parsed flags of `trainers.tune` (trainer flags included)."""
    values = flags.FlagValues()
    tune.define_flags(values)
    values(["tune", f"--flagfile={FLAGFILE}", *TINY, f"--model_dir={model_dir}", *args])
    return values


def _trials(project_dir):
    trials = {}
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                trial = json.load(f)
            trials[trial["trial_id"]] = trial
    return trials


def _parse_best_flags(path):
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd", f"--flagfile={path}"])
    return values


@pytest.fixture(scope="module", autouse=True)
def _objects_from_earlier_tests_frozen():
    """Every trial runs `keras.backend.clear_session()` and `gc.collect()`, each
    a full collection: late in a whole-suite run, with all that the earlier
    tests left in memory, ~2 s per trial. `gc.freeze()` leaves what is alive
    when this module starts out of those collections (should some of it die
    meanwhile, it is collected after `gc.unfreeze()`); what the trials create
    is collected as before. The code under test runs unchanged."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class _FakeTrain:
    """Stands in for `pkkd.train`: records configs, returns a score of the values."""

    def __init__(self, fail_on=None, write_summary=False):
        self.configs, self.fail_on, self.write_summary = [], fail_on or {}, write_summary

    def __call__(self, config, evaluate_test=True):
        assert evaluate_test is False, "a trial read the test split"
        self.configs.append(config)
        summary = {"student_val_accuracy": 1.0 / (1.0 + abs(math.log(config.learning_rate / 0.1))),
                   "student_accuracy": None}
        if self.write_summary:
            os.makedirs(config.model_dir, exist_ok=True)
            with open(os.path.join(config.model_dir, "summary.json"), "w") as f:
                json.dump(summary, f)
        if len(self.configs) in self.fail_on:
            raise self.fail_on[len(self.configs)]
        return summary


class _Killed(BaseException):
    """A kill in the middle of a search (KerasTuner catches only `Exception`)."""


def _cli_search_job(background, root):
    proc, own = _run_cli(f"--flagfile={FLAGFILE}", *TINY, f"--model_dir={root / 'run'}",
                         "--tuner=random", "--max_trials=2", background=background)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, own, root / "run_tune"


# Started ahead, while earlier tests run (tests/conftest.py).
BACKGROUND_JOBS = {"cli_search": _cli_search_job}


@pytest.fixture(scope="module")
def cli_search(background):
    """A real two-trial random search, run as the command line runs it."""
    return background.result("cli_search")


def test_cli_random_search_completes_and_prints_a_ranked_table(cli_search):
    proc, own, tune_dir = cli_search
    assert "Traceback" not in proc.stderr
    trials = _trials(tune_dir / "random")
    assert len(trials) == 2
    for trial_id, trial in trials.items():
        assert trial["status"] == "COMPLETED", trial.get("message")
        run = tune_dir / "random" / f"trial_{trial_id}"
        with open(run / "summary.json") as f:
            summary = json.load(f)
        # Ranked on the validation split; the test split is never read in a trial.
        assert trial["score"] == pytest.approx(summary["student_val_accuracy"])
        assert summary["student_accuracy"] is None and summary["student_test_accuracy"] is None
        assert summary["flags"]["learning_rate"] == pytest.approx(
            trial["hyperparameters"]["values"]["learning_rate"])
        assert (run / "student.keras").exists()
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rank"))
    assert lines[header].split() == ["rank", "trial", "alpha", "beta", "sigma_a", "sigma_c",
                                     "lr", "epochs", "L_mid_last/first", "sigma_to_bound",
                                     "val_student_accuracy"]
    rows = [line.split() for line in lines[header + 1:header + 3]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert sorted(row[1] for row in rows) == sorted(trials)
    scores = [float(row[-1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    for row in rows:
        values = trials[row[1]]["hyperparameters"]["values"]
        for cell, name in zip(row[2:7], ("alpha", "beta", "sigma_a_init", "sigma_c_init",
                                         "learning_rate")):
            assert float(cell) == pytest.approx(values[name], rel=1e-3)
            low, high = tune.SEARCH_SPACE[name]
            assert low <= values[name] <= high
        # The health cells, recomputed here from the trial's history.csv.
        with open(tune_dir / "random" / f"trial_{row[1]}" / "history.csv", newline="") as f:
            epochs = list(csv.DictReader(f))
        feature = [float(e["feature"]) for e in epochs]
        assert float(row[8]) == pytest.approx(feature[-1] / feature[0], abs=1e-3)
        sigmas = [float(v) for e in epochs for k, v in e.items() if k.startswith("sigma_")]
        factor = min(min(v / 1e-4, 1e4 / v) for v in sigmas)
        assert row[9].endswith("x") and float(row[9][:-1]) == pytest.approx(factor, rel=1e-2)


def test_best_flags_parse_validate_and_hold_the_best_trial(cli_search):
    _, _, tune_dir = cli_search
    trials = _trials(tune_dir / "random")
    best = max(trials.values(), key=lambda t: (t["score"], -int(t["trial_id"])))
    values = _parse_best_flags(tune_dir / "best.flags")
    assert trainer_flags.validate(values) is None
    for name, value in best["hyperparameters"]["values"].items():
        assert values[name].value == value, name
    # The base flags: the flagfile's, then the command line's.
    assert (values.dataset, values.image_size, values.model, values.method, values.epochs,
            values.batch_size, values.weight_decay) == ("digits", 8, tiny_model.SPEC, "pkkd", 2, 16,
                                                        0.0005)
    assert values.model_dir == str(tune_dir / "best")


def test_same_search_again_runs_nothing_and_more_trials_extend_it(cli_search, tmp_path,
                                                                  monkeypatch, capsys):
    _, _, original = cli_search
    tune_dir = tmp_path / "tune"
    shutil.copytree(original, tune_dir)
    before = _trials(tune_dir / "random")
    fake = _FakeTrain()
    monkeypatch.setattr(pkkd, "train", fake)

    base = _base(tmp_path / "run", "--tuner=random", "--max_trials=2")
    result = tune.search(base, "random", max_trials=2, tune_dir=str(tune_dir))
    assert fake.configs == []  # resumed: both trials were finished
    assert _trials(tune_dir / "random") == before
    assert [row["status"] for row in result["rows"]] == ["COMPLETED"] * 2
    assert "rank" in capsys.readouterr().out

    result = tune.search(base, "random", max_trials=3, tune_dir=str(tune_dir))
    assert len(fake.configs) == 1  # only the new trial
    assert fake.configs[0].model_dir == str(tune_dir / "random" / "trial_2")
    assert set(_trials(tune_dir / "random")) == set(before) | {"2"}
    assert all(row["status"] == "COMPLETED" for row in result["rows"])


@pytest.mark.parametrize("after_training", [False, True], ids=["mid_training", "after_training"])
def test_a_trial_cut_off_is_finished_on_resume(after_training, tmp_path, monkeypatch):
    base = _base(tmp_path / "run")
    tune_dir = str(tmp_path / "tune")
    cut = _FakeTrain(fail_on={2: _Killed()}, write_summary=after_training)
    monkeypatch.setattr(pkkd, "train", cut)
    with pytest.raises(_Killed):
        tune.search(base, "random", max_trials=3, tune_dir=tune_dir)
    assert _trials(os.path.join(tune_dir, "random"))["1"]["status"] == "RUNNING"

    again = _FakeTrain()
    monkeypatch.setattr(pkkd, "train", again)
    result = tune.search(base, "random", max_trials=3, tune_dir=tune_dir)
    trials = _trials(os.path.join(tune_dir, "random"))
    assert {t: trials[t]["status"] for t in trials} == {"0": "COMPLETED", "1": "COMPLETED",
                                                        "2": "COMPLETED"}
    rerun = [os.path.basename(c.model_dir) for c in again.configs]
    assert rerun == (["trial_2"] if after_training else ["trial_1", "trial_2"])
    if not after_training:  # the same values as before the cut
        assert again.configs[0].learning_rate == cut.configs[1].learning_rate
    assert len(result["rows"]) == 3


def test_tied_alpha_beta_bayesian_search(tmp_path, monkeypatch):
    base = _base(tmp_path / "run")
    fake = _FakeTrain()
    monkeypatch.setattr(pkkd, "train", fake)
    # More trials than the random initial points, so the Gaussian process proposes some.
    result = tune.search(base, "bayesian", max_trials=14, tune_dir=str(tmp_path / "tune"),
                         tie_alpha_beta=True)
    assert len(fake.configs) == 14
    for config in fake.configs:
        assert config.alpha == config.beta
        assert 0.1 <= config.alpha <= 10
    for trial in _trials(tmp_path / "tune" / "bayesian").values():
        assert set(trial["hyperparameters"]["values"]) == {
            "alpha_beta", "sigma_a_init", "sigma_c_init", "learning_rate"}
    values = _parse_best_flags(result["best_flags"])
    assert values.alpha == values.beta
    assert trainer_flags.validate(values) is None


def test_tied_alpha_beta_reaches_the_real_trainer(tmp_path):
    base = _base(tmp_path / "run")
    result = tune.search(base, "bayesian", max_trials=1, tune_dir=str(tmp_path / "tune"),
                         tie_alpha_beta=True)
    (row,) = result["rows"]
    assert row["status"] == "COMPLETED" and 0.0 <= row["score"] <= 1.0
    with open(tmp_path / "tune" / "bayesian" / "trial_0" / "summary.json") as f:
        trained = json.load(f)["flags"]
    assert trained["alpha"] == trained["beta"] == row["settings"]["alpha"]


def test_hyperband_budget_sets_the_epochs(tmp_path, monkeypatch):
    base = _base(tmp_path / "run", "--epochs=2")
    fake = _FakeTrain()
    monkeypatch.setattr(pkkd, "train", fake)
    result = tune.search(base, "hyperband", max_trials=5, tune_dir=str(tmp_path / "tune"),
                         hyperband_factor=2)
    trials = _trials(tmp_path / "tune" / "hyperband")
    assert len(fake.configs) == len(trials) == 5
    for config in fake.configs:
        trial = trials[os.path.basename(config.model_dir)[len("trial_"):]]
        assert config.epochs == trial["hyperparameters"]["values"]["tuner/epochs"]
    assert sorted({c.epochs for c in fake.configs}) == [1, 2]
    assert _parse_best_flags(result["best_flags"]).epochs == 2  # the full budget


def test_failed_trial_is_listed_but_not_ranked(tmp_path, monkeypatch, capsys):
    nan = pkkd.NonFiniteLossError("student_loss became nan at epoch 1, step 1")
    monkeypatch.setattr(pkkd, "train", _FakeTrain(fail_on={1: nan}))
    result = tune.search(_base(tmp_path / "run"), "random", max_trials=2,
                         tune_dir=str(tmp_path / "tune"))
    assert [(r["rank"], r["status"]) for r in result["rows"]] == [(1, "COMPLETED"),
                                                                  (None, "FAILED")]
    assert "FAILED student_loss became nan" in capsys.readouterr().out
    assert _parse_best_flags(result["best_flags"]).learning_rate == pytest.approx(
        result["rows"][0]["settings"]["learning_rate"])


@pytest.mark.parametrize("error,raised,message", [
    (ValueError("`cifar10` is not prepared in /nowhere"), ValueError,
     r"^`cifar10` is not prepared in /nowhere$"),
    (ZeroDivisionError("float division by zero"), RuntimeError,
     r"^trial 0: ZeroDivisionError: float division by zero$"),
], ids=["bad_setting", "crash"])
def test_a_problem_every_trial_shares_stops_with_one_line(error, raised, message, tmp_path,
                                                          monkeypatch):
    base, tune_dir = _base(tmp_path / "run"), str(tmp_path / "tune")
    monkeypatch.setattr(pkkd, "train", _FakeTrain(fail_on={1: error}))
    with pytest.raises(raised, match=message):
        tune.search(base, "random", max_trials=2, tune_dir=tune_dir)
    again = _FakeTrain()  # fixed: resuming runs that trial first
    monkeypatch.setattr(pkkd, "train", again)
    result = tune.search(base, "random", max_trials=2, tune_dir=tune_dir)
    assert [os.path.basename(c.model_dir) for c in again.configs] == ["trial_0", "trial_1"]
    assert all(row["status"] == "COMPLETED" for row in result["rows"])


@pytest.mark.parametrize("first,second,named", [
    ({"tuner": "random"}, {"tuner": "bayesian"}, "--tuner=random"),
    ({}, {"tie_alpha_beta": True}, "--tie_alpha_beta=False"),
    ({}, {"args": ("--epochs=3",)}, "--epochs=2"),
], ids=["tuner", "tie", "base_flag"])
def test_another_search_in_the_same_dir_is_refused(first, second, named, tmp_path,
                                                   monkeypatch):
    monkeypatch.setattr(pkkd, "train", _FakeTrain())
    tune_dir = str(tmp_path / "tune")

    def run(options):
        options = dict(options)
        base = _base(tmp_path / "run", *options.pop("args", ()))
        return tune.search(base, options.pop("tuner", "random"), max_trials=1,
                           tune_dir=tune_dir, **options)

    run(first)
    with pytest.raises(ValueError) as error:
        run(second)
    message = str(error.value)
    assert message.startswith(f"--tune_dir={tune_dir}: holds a search with {named}")
    assert "\n" not in message


@pytest.mark.parametrize("args,problem", [
    (("grid", 3, 3), "--tuner=grid: must be one of random, bayesian, hyperband"),
    (("random", 0, 3), "--max_trials=0: must be > 0"),
    (("hyperband", 3, 1), "--hyperband_factor=1: must be >= 2"),
    (("random", 3, 3, "multi_worker"), "--distribution_strategy=multi_worker: not supported"),
    (("random", 3, 3, "default", 0.0), "--validation_split=0: the search ranks trials on a "
     "validation split"),
])
def test_validate_names_the_flag(args, problem):
    assert tune.validate(*args).startswith(problem)
    assert tune.validate("random", 3) is None


# The messages: test_validate_names_the_flag; how they become one line:
# tests/test_cli.py; here the command's wiring, once.
@pytest.mark.parametrize("arg,expected", [
    ("--tuner=grid", r"^tune: --tuner=grid: must be one of random, bayesian, hyperband$"),
], ids=["tuner"])
def test_cli_bad_flag_fails_with_one_line(arg, expected, tmp_path):
    proc, own = _run_cli(f"--flagfile={FLAGFILE}", f"--model_dir={tmp_path / 'run'}", arg,
                         timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(own) == 1, proc.stderr[-2000:]
    assert re.search(expected, own[0]), own[0]
    assert not (tmp_path / "run_tune").exists()
