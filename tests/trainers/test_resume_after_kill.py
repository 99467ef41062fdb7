"""A run killed with SIGKILL mid-epoch resumes at the last epoch's step, with its weights."""

import json
import os
import shutil
import signal
import sys
import textwrap

import keras
import numpy as np
import pytest

import addernet_tf  # noqa: F401  (registers the layers that student.keras holds)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 4

# Runs trainers.pkkd's train() with the given flags plus one probe callback:
# "kill" SIGKILLs its own process at epoch 2, step 3 (after epoch 1 was saved);
# "probe" records what the run starts from (after BackupAndRestore restored it).
_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import keras, numpy as np
    from absl import flags
    from trainers import flags as trainer_flags, pkkd

    mode, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd", *args])

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    class Probe(keras.callbacks.Callback):
        first_epoch = None
        def on_train_begin(self, logs=None):
            d = self.model
            np.savez(out + ".npz", *[np.asarray(w) for w in d.student.weights + d.teacher.weights])
            self.iterations = int(d.student_optimizer.iterations.numpy())
            self.teacher_iterations = int(d.teacher_optimizer.iterations.numpy())
        def on_epoch_begin(self, epoch, logs=None):
            if self.first_epoch is None:
                self.first_epoch = epoch
                with open(out + ".json", "w") as f:
                    json.dump({"iterations": self.iterations, "epoch": epoch,
                               "teacher_iterations": self.teacher_iterations}, f)

    pkkd.train(values, callbacks=[Kill() if mode == "kill" else Probe()])
""")


def _run(background, mode, out, args):
    env = dict(background.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return background.run([sys.executable, "-c", _SCRIPT, mode, out, *args], cwd=REPO, env=env,
                          timeout=300)


def _weights(model_dir, name):
    model = keras.models.load_model(os.path.join(model_dir, f"{name}.keras"))
    model.load_weights(os.path.join(model_dir, f"{name}.weights.h5"))
    return [np.asarray(w) for w in model.weights]


def _kill_and_resume(background, tmp_path):
    """The two runs, with what the test checks between them (a background job).

    Returns a dict: "killed" and "resumed" (CompletedProcess; "resumed" absent
    when the first run did not die as planned), "backup_after_kill" (the
    backup folder existed then), "rows_after_kill" (history.csv's lines then),
    and the paths "model_dir", "saved" (epoch 1's weights, copied after the
    kill) and "probe" (the probe's output prefix).
    """
    model_dir = str(tmp_path / "run")
    args = ["--dataset=digits", "--image_size=8", "--model=resnet20", "--method=pkkd",
            "--epochs=3", f"--steps_per_epoch={STEPS}", "--batch_size=16", "--verbose=0",
            f"--model_dir={model_dir}"]
    state = {"model_dir": model_dir}
    state["killed"] = _run(background, "kill", str(tmp_path / "unused"), args)
    if state["killed"].returncode != -signal.SIGKILL:
        return state
    state["backup_after_kill"] = os.path.isdir(os.path.join(model_dir, "backup"))
    history = os.path.join(model_dir, "history.csv")
    state["rows_after_kill"] = (open(history).read().splitlines()
                                if os.path.exists(history) else None)
    saved = tmp_path / "epoch1"
    saved.mkdir()
    for name in ("student.weights.h5", "teacher.weights.h5"):
        shutil.copy(os.path.join(model_dir, name), saved / name)
    state["saved"] = saved

    state["probe"] = probe = str(tmp_path / "probe")
    state["resumed"] = _run(background, "probe", probe, args)
    return state


# Started ahead, while earlier tests run (tests/conftest.py).
BACKGROUND_JOBS = {"kill_and_resume": _kill_and_resume}


@pytest.fixture
def kill_and_resume(background):
    return background.result("kill_and_resume")


def test_resume_after_sigkill(kill_and_resume):
    state = kill_and_resume
    model_dir, killed = state["model_dir"], state["killed"]
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert state["backup_after_kill"]
    rows = state["rows_after_kill"]
    assert rows is not None and len(rows) == 2  # header + epoch 1
    saved = state["saved"]

    probe = state["probe"]
    resumed = state["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with open(probe + ".json") as f:
        start = json.load(f)
    assert start == {"epoch": 1, "iterations": STEPS, "teacher_iterations": STEPS}

    restored = np.load(probe + ".npz")
    restored = [restored[f"arr_{i}"] for i in range(len(restored.files))]
    for name in ("student", "teacher"):
        shutil.copy(os.path.join(model_dir, f"{name}.keras"), saved / f"{name}.keras")
    expected = _weights(str(saved), "student") + _weights(str(saved), "teacher")
    assert len(restored) == len(expected)
    for got, want in zip(restored, expected):
        np.testing.assert_array_equal(got, want)
    rows = open(os.path.join(model_dir, "history.csv")).read().splitlines()
    assert len(rows) == 4  # epoch 1 from the killed run, epochs 2-3 from the resumed one
    assert os.path.exists(os.path.join(model_dir, "summary.json"))
