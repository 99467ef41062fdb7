# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`--distribution_strategy`: mirrored on 2 CPU replicas, multi_worker with 2 local workers.

A process holds one multi-device strategy, and the CPU split must come before
TensorFlow runs any op, so every distributed run is a subprocess; this file is
also their entry point (`python test_distribution.py worker|mirrored_step ...`).
Each subprocess runs under a timeout: a hang in a collective fails the test.
They are background jobs (tests/conftest.py): started ahead, while the tests
before this file run.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from addernet_tf.layers import Adder2D
from addernet_tf.trainers import custom_loop, pkkd
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import strategy as strategy_lib
from addernet_tf.trainers.backup import Backup, SaveBackup
from addernet_tf.trainers.distiller import Distiller

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--dataset=digits", "--image_size=8", "--model=resnet20", "--steps_per_epoch=2",
        "--batch_size=16", "--verbose=0"]


def _flag_values(*args):
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd", *args])
    return values


def _env(base=None, **extra):
    env = dict(os.environ if base is None else base, TF_CPP_MIN_LOG_LEVEL="2", **extra)
    if "TF_CONFIG" not in extra:
        env.pop("TF_CONFIG", None)
    return env


def _run(args, timeout, background):
    """Runs a Python child in a background job (tests/conftest.py); it must succeed."""
    proc = background.run([sys.executable, *args], cwd=REPO, env=_env(background.environ),
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------
# Flags


_GOOD_TF_CONFIG = json.dumps({"cluster": {"worker": ["localhost:1", "localhost:2"]},
                              "task": {"type": "worker", "index": 1}})


@pytest.mark.parametrize("args,tf_config,expected", [
    (["--cpu_replicas=-1"], None, "--cpu_replicas=-1: must be >= 0"),
    (["--cpu_replicas=2"], None,
     "--cpu_replicas=2: only applies to --distribution_strategy=mirrored"),
    (["--distribution_strategy=mirrored", "--cpu_replicas=3", "--batch_size=16"], None,
     "--batch_size=16: must be a multiple of --cpu_replicas=3"),
    (["--distribution_strategy=multi_worker"], None,
     "--distribution_strategy=multi_worker: needs TF_CONFIG"),
    (["--distribution_strategy=multi_worker"], "{oops",
     "--distribution_strategy=multi_worker: TF_CONFIG is not valid JSON"),
    (["--distribution_strategy=multi_worker"], json.dumps({"cluster": {"worker": ["a:1"]},
                                                          "task": {"type": "worker", "index": 1}}),
     "--distribution_strategy=multi_worker: TF_CONFIG's task must name this worker"),
    (["--distribution_strategy=multi_worker"], _GOOD_TF_CONFIG, None),
    (["--distribution_strategy=mirrored", "--cpu_replicas=2"], None, None),
], ids=["negative_cpu_replicas", "cpu_replicas_without_mirrored", "batch_not_divisible",
        "no_tf_config", "bad_json", "task_outside_cluster", "good_tf_config", "good_mirrored"])
def test_validate_distribution_flags(args, tf_config, expected, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    problem = trainer_flags.validate(_flag_values(*args))
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected) and "\n" not in problem


def test_make_strategy_is_still_importable_from_pkkd():
    assert pkkd.make_strategy is strategy_lib.make_strategy
    assert pkkd.make_strategy("default").num_replicas_in_sync == 1


# ----------------------------------------------------------------------------
# The custom loop, in process under the default strategy


def _tiny_config(tmp_path, **overrides):
    values = _flag_values(*TINY, f"--model_dir={tmp_path / 'run'}")
    config = types.SimpleNamespace(**{name: values[name].value for name in values})
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def test_custom_loop_writes_what_fit_writes(tmp_path, monkeypatch):
    """Same batches, same steps: the loop's history.csv and summary equal fit's.

    (kd and the tiny CNN of tests/tiny_model.py rather than pkkd and ResNet-20
    only for time: the multi-worker test runs ResNet-20 and pkkd's heads
    through the loop.)
    """
    # Imported here: this file is also the workers' script, run without the repo on sys.path.
    from tests import tiny_model  # pylint: disable=import-outside-toplevel
    tiny = dict(epochs=2, method="kd", model=tiny_model.SPEC)
    fit_summary = pkkd.train(_tiny_config(tmp_path / "fit", **tiny))
    monkeypatch.setattr(pkkd, "_uses_custom_loop", lambda strategy: True)
    loop_summary = pkkd.train(_tiny_config(tmp_path / "loop", **tiny))
    fit_run, loop_run = tmp_path / "fit" / "run", tmp_path / "loop" / "run"
    assert sorted(os.listdir(loop_run)) == sorted(os.listdir(fit_run))
    assert not (loop_run / "backup").exists()
    assert {p.name for p in (loop_run / "logs").iterdir()} == {"train", "validation"}
    fit_rows, loop_rows = _history(fit_run), _history(loop_run)
    assert len(loop_rows) == 2 and list(loop_rows[0]) == list(fit_rows[0])
    assert "kd" in loop_rows[0] and "val_student_accuracy" in loop_rows[0]
    for got, want in zip(loop_rows, fit_rows):
        np.testing.assert_allclose([float(v) for v in got.values()],
                                   [float(v) for v in want.values()], rtol=1e-4, atol=1e-6)
    for key in ("student_accuracy", "teacher_accuracy", "student_ops", "replicas"):
        assert loop_summary[key] == fit_summary[key]


def _tiny_distiller(learning_rate=0.1):
    keras.utils.set_random_seed(0)
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="student")
    distiller = Distiller(student)
    distiller.compile(keras.optimizers.SGD(learning_rate))
    return distiller


def _tiny_data(nan_in_batch=None):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32).astype("int32")
    if nan_in_batch is not None:
        x[8 * nan_in_batch] = np.nan
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    return ds.repeat(), ds


class _Interrupt(Exception):
    pass


class _Recorder(keras.callbacks.Callback):
    """Records the epochs that start; raises at the start of `stop_at`."""

    def __init__(self, stop_at=None):
        super().__init__()
        self.epochs, self.stop_at = [], stop_at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_at:
            raise _Interrupt()
        self.epochs.append(epoch)


def test_custom_loop_resumes_from_its_last_epoch(tmp_path):
    train, test = _tiny_data()
    backup = str(tmp_path / "backup")
    common = dict(epochs=3, steps=2)
    first = _tiny_distiller()
    with pytest.raises(_Interrupt):
        custom_loop.fit(first, tf.distribute.get_strategy(), train, test,
                        callbacks=[SaveBackup(Backup(backup)), _Recorder(stop_at=2)], **common)
    assert os.path.isdir(backup)  # killed: the backup stays
    saved = [np.array(w) for w in first.student.weights]

    second = _tiny_distiller()  # fresh weights, restored from the backup
    restored = []

    class _Check(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            restored.extend(np.array(w) for w in self.model.student.weights)
            restored.append(int(self.model.student_optimizer.iterations.numpy()))

    recorder = _Recorder()
    start = Backup(backup).restore(second)
    assert start == 2
    history = custom_loop.fit(second, tf.distribute.get_strategy(), train, test,
                              start_epoch=start, callbacks=[_Check(), recorder], **common)
    assert recorder.epochs == [2] and len(history["student_loss"]) == 1
    assert len(restored) == len(saved) + 1
    for got, want in zip(restored, saved):
        np.testing.assert_array_equal(got, want)
    assert restored[-1] == 4  # the optimizer's step count came back too


def test_custom_loop_non_finite_loss_names_the_step(tmp_path):
    train, test = _tiny_data(nan_in_batch=2)
    guard, recorder = pkkd._StopOnNonFinite(), _Recorder()
    history = custom_loop.fit(_tiny_distiller(), tf.distribute.get_strategy(), train, test,
                              epochs=2, steps=4, callbacks=[guard, recorder])
    assert guard.problem == "student_loss became nan at epoch 1, step 3"
    assert recorder.epochs == [0] and history == {}  # stopped at once, epoch 1 unfinished


# ----------------------------------------------------------------------------
# mirrored: 2 logical CPU devices (subprocesses)


def _mirrored_cli_job(background, workdir):
    run_dir = workdir / "run"
    _run(["-m", "trainers.pkkd", *TINY, "--epochs=1", "--distribution_strategy=mirrored",
          "--cpu_replicas=2", f"--model_dir={run_dir}"], timeout=480, background=background)
    return run_dir


@pytest.fixture(scope="module")
def mirrored_cli_run(background):
    return background.result("mirrored_cli_run")


def test_mirrored_cli_trains_on_two_cpu_replicas(mirrored_cli_run):
    run_dir = mirrored_cli_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["flags"]["cpu_replicas"] == 2
    assert 0.0 <= summary["student_accuracy"] <= 1.0
    rows = _history(run_dir)
    assert len(rows) == 1 and np.isfinite(float(rows[0]["student_loss"]))
    for name in ("student.keras", "teacher.keras", "student.weights.h5", "logs"):
        assert (run_dir / name).exists(), name


_STEP_VARIANTS = [(strategy, loop) for strategy in ("default", "mirrored")
                  for loop in ("fit", "custom_loop")]
_WEIGHT_DECAYS = (0.0, 5e-4)


def _mirrored_step_main(out):
    """Tiny distillations (2 steps, global batch 8) per variant; their weights → `out`."""
    devices = strategy_lib.split_cpu(2)
    mirrored = tf.distribute.MirroredStrategy(devices)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 6, 3)).astype("float32")
    x[4:8] += 3.0  # the replicas' halves of the first batch differ (BN check below)
    y = rng.integers(0, 5, 16).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    results = {}

    def distiller_for(strategy, decay):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            # No BN: per-replica batch statistics would make the step differ.
            student = keras.Sequential([
                keras.Input((6, 6, 3)), Adder2D(4, 3, padding=1, adaptive_eta=0.2),
                keras.layers.Flatten(), keras.layers.Dense(5)], name="student")
            teacher = keras.Sequential([
                keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                keras.layers.Flatten(), keras.layers.Dense(5)], name="teacher")
            distiller = Distiller(student, teacher, alpha=1.0, temperature=2.0,
                                  student_weight_decay=decay, teacher_weight_decay=decay)
            distiller.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                              keras.optimizers.SGD(0.1, momentum=0.9))
        return distiller

    def train_and_keep(key, strategy, loop, decay):
        distiller = distiller_for(strategy, decay)
        if loop == "fit":
            distiller.fit(batches, epochs=1, verbose=0, shuffle=False)
        else:
            custom_loop.fit(distiller, strategy, batches.repeat(), batches, epochs=1, steps=2)
        for i, w in enumerate(distiller.weights):
            results[f"{key}/{i}"] = np.asarray(w)

    for decay in _WEIGHT_DECAYS:
        for name, loop in _STEP_VARIANTS:
            strategy = mirrored if name == "mirrored" else tf.distribute.get_strategy()
            train_and_keep(f"{decay}/{name}/{loop}", strategy, loop, decay)

    # Guard: the comparison can fail. Scaling each replica's loss by its own
    # batch (not the global one) doubles the gradients of the Dense layers.
    right = Distiller.__dict__["_global_batch"]
    Distiller._global_batch = staticmethod(lambda x: tf.cast(tf.shape(x)[0], tf.float32))
    train_and_keep("wrong_scaling", mirrored, "fit", 0.0)
    Distiller._global_batch = right

    # BN moving statistics: replica-local in Keras 3, averaged by the sync.
    for label, strategy, sync in (("default", tf.distribute.get_strategy(), False),
                                  ("unsynced", mirrored, False), ("synced", mirrored, True)):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            student = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.BatchNormalization(),
                                        keras.layers.Flatten(), keras.layers.Dense(5)])
            distiller = Distiller(student)
            distiller.compile(keras.optimizers.SGD(0.1))
        callbacks = [strategy_lib.ReplicaStatisticsSync(strategy, [student])] if sync else []
        distiller.fit(batches.take(1), epochs=1, verbose=0, callbacks=callbacks)
        for stat in ("moving_mean", "moving_variance"):
            variable = getattr(student.layers[0], stat).value
            copies = getattr(variable, "values", (variable,))
            results[f"bn/{label}/{stat}"] = np.stack([np.asarray(c) for c in copies])
    np.savez(out, **results)


def _mirrored_step_job(background, workdir):
    out = workdir / "weights.npz"
    _run([os.path.abspath(__file__), "mirrored_step", str(out)], timeout=480,
         background=background)
    return out


@pytest.fixture(scope="module")
def mirrored_step(background):
    got = np.load(background.result("mirrored_step"))

    def weights(prefix):
        keys = [k for k in got.files if k.startswith(prefix + "/")]
        return [got[k] for k in sorted(keys, key=lambda k: int(k.rsplit("/", 1)[1]))]
    return got, weights


def _assert_variants_match(weights, decay):
    reference = weights(f"{decay}/default/fit")
    assert len(reference) == 7  # adder kernel, dense ×2; conv ×2, dense ×2
    for name, loop in _STEP_VARIANTS[1:]:
        for a, b in zip(weights(f"{decay}/{name}/{loop}"), reference):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}/{loop}")


def test_mirrored_step_equals_the_single_device_step(mirrored_step):
    """KD + adaptive adder gradient, fit and custom loop: 2 replicas == 1 device."""
    _, weights = mirrored_step
    _assert_variants_match(weights, 0.0)
    wrong, reference = weights("wrong_scaling"), weights("0.0/default/fit")
    assert max(np.abs(a - b).max() for a, b in zip(wrong, reference)) > 1e-3


def test_mirrored_step_with_weight_decay_equals_the_single_device_step(mirrored_step):
    _, weights = mirrored_step
    _assert_variants_match(weights, 5e-4)


def test_mirrored_bn_statistics_agree_after_the_sync(mirrored_step):
    """Replica copies drift apart without the sync; with it they agree, and the
    moving mean equals the single-device one (the halves are equal in size)."""
    got, _ = mirrored_step
    unsynced = got["bn/unsynced/moving_mean"]
    assert np.abs(unsynced[0] - unsynced[1]).max() > 1e-3
    for stat in ("moving_mean", "moving_variance"):
        synced = got[f"bn/synced/{stat}"]
        np.testing.assert_array_equal(synced[0], synced[1])
    np.testing.assert_allclose(got["bn/synced/moving_mean"][0], got["bn/default/moving_mean"][0],
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# multi_worker: 2 local worker processes (TF_CONFIG on free localhost ports)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class _DumpWeights(keras.callbacks.Callback):
    """Saves every weight of the trained `Distiller` (student, teacher, heads) to .npz."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_end(self, logs=None):
        np.savez(self.path, *[np.asarray(w) for w in self.model.weights])


def _worker_main(argv):
    """`trainers.pkkd` with `--dump=PATH`: the worker's final weights go there too."""
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    flags.DEFINE_string("dump", None, "Where to save the final weights (.npz).",
                        flag_values=values)
    values(["worker", *argv])
    pkkd.train(values, callbacks=[_DumpWeights(values.dump)])


def _multi_worker_job(background, workdir):
    """Both workers side by side; returns the work dir and each worker's
    CompletedProcess (or the TimeoutExpired of a hang)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    run_dir = workdir / "run"
    results = [None, None]

    def work(index):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        try:
            results[index] = background.run(
                [sys.executable, os.path.abspath(__file__), "worker", *TINY, "--epochs=1",
                 "--distribution_strategy=multi_worker", f"--model_dir={run_dir}",
                 f"--dump={workdir / f'worker{index}.npz'}"],
                cwd=REPO, env=_env(background.environ, TF_CONFIG=tf_config),
                timeout=480)  # a hang in a collective fails here
        except subprocess.TimeoutExpired as error:
            results[index] = error

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return workdir, results


# The mirrored and multi-worker runs are started ahead, while earlier tests run
# (tests/conftest.py).
BACKGROUND_JOBS = {"mirrored_step": _mirrored_step_job, "mirrored_cli_run": _mirrored_cli_job,
                   "multi_worker_run": _multi_worker_job}


@pytest.fixture(scope="module")
def multi_worker_run(background):
    return background.result("multi_worker_run")


def test_multi_worker_ends_with_identical_weights_on_both_workers(multi_worker_run):
    tmp_path, results = multi_worker_run
    run_dir = tmp_path / "run"
    logs = [(r.stdout + r.stderr)[-3000:] if isinstance(r, subprocess.CompletedProcess)
            else repr(r) for r in results]
    assert [getattr(r, "returncode", None) for r in results] == [0, 0], logs

    first, second = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert len(first.files) == len(second.files) > 200  # student, teacher, PKKD heads
    for key in first.files:  # BN moving statistics included
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["flags"]["distribution_strategy"] == "multi_worker"
    assert 0.0 <= summary["student_accuracy"] <= 1.0
    rows = _history(run_dir)
    assert len(rows) == 1 and "val_student_accuracy" in rows[0] and "sigma_a_0" in rows[0]
    for name in ("student.keras", "teacher.keras", "student.weights.h5", "logs"):
        assert (run_dir / name).exists(), name
    assert sorted(p.name for p in run_dir.iterdir() if "workertemp" in p.name or
                  p.name == "backup") == []  # the other worker's folder and the backup are gone


if __name__ == "__main__":
    if sys.argv[1] == "mirrored_step":
        _mirrored_step_main(sys.argv[2])
    elif sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
