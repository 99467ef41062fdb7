# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A run killed anywhere, inside every kind of save included, ends as if never killed.

Two chains of interrupted runs of one tiny PKKD configuration, each finished
by plain reruns of the same command, are compared with one uninterrupted run
of it: the same final weights (bit for bit: every stream continues where the
killed run stopped), a valid summary.json and one consistent history.csv.

- In this process: the kill is `_Killed` (a BaseException nothing catches),
  raised after the save's temporary file was cut to half (a torn copy is left
  under a temporary name, as a real kill leaves it), or after a training step.
- In child processes (tests/trainers/kill_child.py): a real SIGKILL inside a
  save, so nothing of the dying process cleans up.
"""

import csv
import glob
import json
import os
import shutil
import signal
import sys

import keras
import numpy as np
import pytest

import addernet_tf  # noqa: F401  (registers the layers that student.keras holds)
from addernet_tf import _atomic
from tests import tiny_model
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The subject is the saves, not the network: the tiny CNN (tests/tiny_model.py),
# with two adder layers and their kernel heads, runs ~4x faster than ResNet-20.
SETTINGS = dict(dataset="digits", image_size=8, model=tiny_model.SPEC, method="pkkd", epochs=3,
                steps_per_epoch=3, batch_size=16, verbose=0, bn_recalibration_batches=2)
ARGS = [f"--{name}={value}" for name, value in SETTINGS.items()]


class _Killed(BaseException):
    pass


def _config(model_dir):
    return trainer_flags.defaults(**SETTINGS, model_dir=str(model_dir))


def _final_weights(model_dir):
    return [np.asarray(w) for name in ("student", "teacher")
            for w in keras.models.load_model(os.path.join(model_dir, f"{name}.keras")).weights]


def _history(model_dir):
    with open(os.path.join(model_dir, "history.csv"), newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("reference") / "run"
    keras.backend.clear_session()
    summary = pkkd.train(_config(model_dir))
    header, rows = _history(model_dir)
    return dict(weights=_final_weights(model_dir), summary=summary, header=header, rows=rows,
                model_dir=model_dir)


def test_a_finished_run_draws_its_pictures(reference):
    from PIL import Image
    for name in ("accuracy.png", "kernel_maps.png"):
        path = reference["model_dir"] / "report" / name
        with Image.open(path) as image:
            assert image.format == "PNG" and 300 <= image.width <= 4000
            image.verify()


def _check_like_reference(model_dir, reference):
    got = _final_weights(model_dir)
    assert len(got) == len(reference["weights"]) > 30
    for index, (a, b) in enumerate(zip(got, reference["weights"])):
        np.testing.assert_array_equal(a, b, err_msg=f"weight {index}")
    summary = _atomic.read_json(os.path.join(model_dir, "summary.json"))
    for key in ("student_test_accuracy", "teacher_test_accuracy", "student_val_accuracy"):
        assert summary[key] == reference["summary"][key], key
    header, rows = _history(model_dir)
    assert header == reference["header"]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    assert all(len(row) == len(header) for row in rows)
    assert not os.path.exists(os.path.join(model_dir, "backup"))
    leftovers = [p for p in glob.glob(os.path.join(model_dir, "**", ".*"), recursive=True)
                 if _atomic.TMP_MARK in os.path.basename(p)]
    assert leftovers == []


def _kill_inside_write(number, log):
    seen = [0]

    def hook(stage, tmp, final):
        seen[0] += 1
        if seen[0] != number:
            return
        torn = tmp if os.path.isfile(tmp) else sorted(
            os.path.join(root, name) for root, _, names in os.walk(tmp) for name in names)[-1]
        with open(torn, "r+b") as f:
            f.truncate(os.path.getsize(torn) // 2)
        # What a real kill leaves behind: the torn temporary copy.
        leftover = tmp.replace(_atomic.TMP_MARK, _atomic.TMP_MARK + "killed-", 1)
        (shutil.copytree if os.path.isdir(tmp) else shutil.copy)(tmp, leftover)
        log.append(os.path.basename(final))
        raise _Killed(final)

    return hook


class _KillAtStep(keras.callbacks.Callback):
    def __init__(self, number):
        super().__init__()
        self.number, self.steps = number, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.number:
            raise _Killed(f"step {self.number}")


# (kind, n): this process's n-th atomic save or training step. Comments: what
# the run before left, and where this one dies (3 epochs of 3 steps; each
# epoch saves student.weights.h5, teacher.weights.h5, history.csv, the backup's
# state.json and its folder; the end saves student.keras, teacher.keras and
# summary.json; the first run starts with run.json).
CHAIN = [
    ("write", 1),  # inside run.json
    ("write", 3),  # fresh start; inside epoch 1's teacher.weights.h5
    ("write", 5),  # inside the rename of epoch 1's backup folder
    ("step", 5),  # fresh start again; epoch 1 backed up, dies in epoch 2
    ("write", 3),  # resumed at epoch 1; inside epoch 2's history.csv
    ("write", 12),  # resumed at epoch 1; inside teacher.keras, after training
    ("tear", 0),  # (the newest backup, epoch 3, is torn on disk)
    ("write", 9),  # falls back to epoch 2 (history.csv loses epoch 3's row);
    #                inside summary.json
    ("none", 0),  # resumed at epoch 3 (training done): evaluates and saves
]


def test_a_run_killed_anywhere_ends_as_if_uninterrupted(reference, tmp_path, monkeypatch,
                                                        capsys):
    model_dir = tmp_path / "run"
    killed_in = []
    for kind, number in CHAIN:
        if kind == "tear":
            newest = sorted(glob.glob(str(model_dir / "backup" / "epoch-*")))[-1]
            assert newest.endswith("epoch-000003")
            with open(os.path.join(newest, "state.weights.h5"), "r+b") as f:
                f.truncate(96)
            continue
        monkeypatch.setattr(_atomic, "_hook",
                            _kill_inside_write(number, killed_in) if kind == "write" else None)
        keras.backend.clear_session()
        callbacks = [_KillAtStep(number)] if kind == "step" else []
        if kind == "none":
            pkkd.train(_config(model_dir))
        else:
            with pytest.raises(_Killed):
                pkkd.train(_config(model_dir), callbacks=callbacks)
    assert killed_in == ["run.json", "teacher.weights.h5", "epoch-000001", "history.csv",
                         "teacher.keras", "summary.json"]
    err = capsys.readouterr().err
    assert "epoch-000003 is not whole" in err and "falling back" in err
    _check_like_reference(model_dir, reference)

    # Finished: a rerun reports it and trains nothing.
    before = {name: (model_dir / name).read_bytes() for name in ("summary.json", "history.csv")}
    monkeypatch.setattr(_atomic, "_hook", None)
    monkeypatch.setattr(pkkd, "_fit", lambda *a, **k: pytest.fail("a finished run trained"))
    summary = pkkd.train(_config(model_dir))
    assert summary["already_finished"] is True
    assert summary["student_test_accuracy"] == reference["summary"]["student_test_accuracy"]
    assert before == {name: (model_dir / name).read_bytes() for name in before}


# ----------------------------------------------------------------------------
# Real SIGKILLs, in child processes

def _child(background, kill_at, model_dir):
    env = dict(background.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return background.run([sys.executable, os.path.join(REPO, "tests", "trainers",
                                                        "kill_child.py"), kill_at, *ARGS,
                           f"--model_dir={model_dir}"], cwd=REPO, env=env, timeout=600)


def _sigkill_chain(background, workdir):
    """SIGKILL inside epoch 2's backup folder, then after a step of epoch 3,
    then inside student.keras; a plain rerun finishes. Returns what the test
    checks between the runs."""
    model_dir = workdir / "run"
    state = {"model_dir": str(model_dir), "runs": []}
    for kill_at in ("write:11", "step:4", "write:6", "none"):
        result = _child(background, kill_at, model_dir)
        state["runs"].append((kill_at, result.returncode, result.stdout[-2000:],
                              result.stderr[-3000:]))
        if kill_at == "write:11":
            state["after_first"] = sorted(os.listdir(model_dir / "backup"))
            state["student_keras_after_first"] = (model_dir / "student.keras").exists()
    return state


BACKGROUND_JOBS = {"sigkill_chain": _sigkill_chain}


@pytest.fixture(scope="module")
def sigkill_chain(background):
    return background.result("sigkill_chain")


def test_sigkill_inside_saves_loses_nothing(sigkill_chain, reference):
    runs = sigkill_chain["runs"]
    codes = [(kill_at, code) for kill_at, code, _, _ in runs]
    assert codes == [("write:11", -signal.SIGKILL), ("step:4", -signal.SIGKILL),
                     ("write:6", -signal.SIGKILL), ("none", 0)], runs
    assert "inside the save of epoch-000002" in runs[0][2]
    assert "inside the save of student.keras" in runs[2][2]
    # The torn folder was left under its temporary name; epoch 1 stayed whole.
    after = sigkill_chain["after_first"]
    assert "epoch-000001" in after and "epoch-000002" not in after
    assert any(name.startswith(".epoch-000002" + _atomic.TMP_MARK) for name in after)
    assert not sigkill_chain["student_keras_after_first"]
    _check_like_reference(sigkill_chain["model_dir"], reference)
    with open(os.path.join(sigkill_chain["model_dir"], "run.json")) as f:
        assert json.load(f)["method"] == "pkkd"
