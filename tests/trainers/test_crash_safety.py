# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""One test per way a run used to lose work or die without a message (issue 20).

The kill-anywhere chains are in test_kill_anywhere.py; here each defect is
checked on its own, cheaply: atomic files, the backup's fallback, the history
table, the run manifest, the path and memory checks, the data stream's skip
and KerasTuner's state files.
"""

import csv
import json
import os

import keras
import numpy as np
import pytest

from addernet_tf import _atomic, data
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import memory_check, pkkd, run_dir, tune
from addernet_tf.trainers.backup import Backup
from addernet_tf.trainers.history import HistoryTable


class _Killed(BaseException):
    pass


def _kill_at_rename(stage, tmp, final):
    raise _Killed(final)


def _config(model_dir, **overrides):
    settings = dict(dataset="digits", image_size=8, model="resnet20", epochs=1,
                    steps_per_epoch=2, batch_size=16, verbose=0, model_dir=str(model_dir))
    return trainer_flags.defaults(**{**settings, **overrides})


# ----------------------------------------------------------------------------
# Atomic files

def test_a_save_killed_before_its_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    _atomic.write_json(path, {"accuracy": 0.5})
    monkeypatch.setattr(_atomic, "_hook", _kill_at_rename)
    with pytest.raises(_Killed):
        _atomic.write_json(path, {"accuracy": 0.9})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}


def test_a_folder_swap_replaces_the_old_one_and_cleans_what_a_kill_left(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old").write_text("old")
    # Leftovers of a writer killed before: a temporary folder and an old copy.
    (tmp_path / f".saved_model{_atomic.TMP_MARK}123-0123abcd").mkdir()
    (tmp_path / ".saved_model.old-0123abcd").mkdir()
    with _atomic.atomic_dir(target) as tmp:
        os.makedirs(tmp)
        with open(os.path.join(tmp, "new"), "w") as f:
            f.write("new")
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
    assert sorted(os.listdir(target)) == ["new"]


def test_read_json_names_the_torn_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text('{"student_accuracy": 0.9')
    with pytest.raises(ValueError, match=r"the run's summary .*summary\.json is not valid JSON"):
        _atomic.read_json(path, "the run's summary")


# ----------------------------------------------------------------------------
# The backup

def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _state_of(model):
    return [np.asarray(w) for w in model.weights]


@pytest.mark.parametrize("damage", ["torn_weights", "no_state_file"])
def test_a_damaged_newest_backup_falls_back_to_the_one_before(damage, tmp_path, capsys):
    backup = Backup(str(tmp_path / "backup"))
    model = _tiny_model()
    backup.save(model, 1)
    epoch_1 = _state_of(model)
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    backup.save(model, 2)
    newest = tmp_path / "backup" / "epoch-000002"
    if damage == "torn_weights":  # what kill -9 inside Keras' in-place save left
        with open(newest / "state.weights.h5", "r+b") as f:
            f.truncate(96)
    else:
        os.remove(newest / "state.json")
    fresh = _tiny_model()
    assert backup.restore(fresh) == 1
    for got, want in zip(_state_of(fresh), epoch_1):
        np.testing.assert_array_equal(got, want)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epoch-000002 is not whole" in err[0] and "falling back" in err[0]


def test_a_save_killed_midway_keeps_the_previous_backup(tmp_path, monkeypatch):
    backup = Backup(str(tmp_path / "backup"))
    model = _tiny_model()
    backup.save(model, 1)
    monkeypatch.setattr(_atomic, "_hook", _kill_at_rename)
    with pytest.raises(_Killed):
        backup.save(model, 2)
    monkeypatch.setattr(_atomic, "_hook", None)
    assert backup.restore(_tiny_model()) == 1


def test_the_backup_keeps_the_newest_two(tmp_path):
    backup = Backup(str(tmp_path / "backup"))
    model = _tiny_model()
    for epoch in (1, 2, 3):
        backup.save(model, epoch)
    assert sorted(os.listdir(tmp_path / "backup")) == ["epoch-000002", "epoch-000003"]


# ----------------------------------------------------------------------------
# history.csv

def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_history_drops_the_epochs_run_again_and_stays_one_table(tmp_path):
    path = str(tmp_path / "history.csv")
    first = HistoryTable(path)
    first.on_train_begin()
    for epoch in range(3):
        first.on_epoch_end(epoch, {"loss": float(epoch), "acc": 0.5})
    second = HistoryTable(path, initial_epoch=1)  # resumed from epoch 1's state
    second.on_train_begin()
    second.on_epoch_end(1, {"loss": 10.0, "acc": 0.6})
    assert _rows(path) == [["epoch", "acc", "loss"], ["0", "0.5", "0.0"], ["1", "0.6", "10.0"]]


def test_history_of_another_width_is_replaced_with_a_message(tmp_path, capsys):
    path = tmp_path / "history.csv"
    path.write_text("epoch,a,b\n0,1,2\n0,1,2,3,4,5\n")  # two runs appended into one
    table = HistoryTable(str(path), initial_epoch=1)
    table.on_train_begin()
    table.on_epoch_end(1, {"a": 1.0})
    assert _rows(path) == [["epoch", "a"], ["1", "1.0"]]
    assert "rows of another width" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# The run manifest

@pytest.fixture
def started_run(tmp_path):
    """A run folder as a killed PKKD run leaves it: its manifest and a backup."""
    config = _config(tmp_path / "run", method="pkkd", batch_size=16, learning_rate=0.1)
    assert run_dir.prepare(config) is None
    os.makedirs(os.path.join(config.model_dir, "backup"))
    return config


@pytest.mark.parametrize("changes, named", [
    (dict(method="kd"), ["--method=kd (the run's: pkkd)"]),
    (dict(batch_size=32, learning_rate=0.05),
     ["--batch_size=32 (the run's: 16)", "--learning_rate=0.05 (the run's: 0.1)"]),
    (dict(model="resnet32"), ["--model=resnet32 (the run's: resnet20)"]),
    (dict(image_size=16), ["--image_size=16 (the run's: 8)"]),
])
def test_resuming_with_other_settings_stops_in_one_line(started_run, changes, named):
    config = trainer_flags.defaults(**{**vars(started_run), **changes})
    with pytest.raises(ValueError) as error:
        pkkd.train(config)
    message = str(error.value)
    assert "\n" not in message and len(message) < 400
    assert f"--model_dir={started_run.model_dir} holds a run with other settings" in message
    for item in named:
        assert item in message
    assert "--overwrite" in message


def test_operational_flags_may_change_on_resume(started_run):
    config = trainer_flags.defaults(**{**vars(started_run), "verbose": 2,
                                       "log_every_steps": 7, "download": False})
    assert run_dir.prepare(config) is None


def test_outputs_without_a_manifest_are_refused(started_run):
    os.remove(os.path.join(started_run.model_dir, "run.json"))
    with pytest.raises(ValueError, match=r"holds run outputs \(backup\) but no run\.json"):
        run_dir.prepare(started_run)


def test_overwrite_clears_the_run_and_starts_over(started_run):
    (open(os.path.join(started_run.model_dir, "summary.json"), "w")).write("{}")
    keep = os.path.join(started_run.model_dir, "notes.txt")  # not the run's: stays
    open(keep, "w").write("mine")
    config = trainer_flags.defaults(**{**vars(started_run), "method": "kd", "overwrite": True})
    assert run_dir.prepare(config) is None
    assert sorted(os.listdir(config.model_dir)) == ["notes.txt", "run.json"]
    assert _atomic.read_json(os.path.join(config.model_dir, "run.json"))["method"] == "kd"


# ----------------------------------------------------------------------------
# Paths and memory, checked before any data or model

@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if the trainer reads data or builds a model."""
    def refuse(*args, **kwargs):
        pytest.fail("the check came after data or model set-up")
    monkeypatch.setattr(data, "load", refuse)
    monkeypatch.setattr(pkkd, "get_model", refuse)


@pytest.fixture
def no_work_but_models(monkeypatch):
    """Fails the test if the trainer reads data."""
    def refuse(*args, **kwargs):
        pytest.fail("data were read")
    monkeypatch.setattr(data, "load", refuse)


def test_model_dir_that_is_a_file_is_refused_at_start(tmp_path, no_work):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(ValueError, match=rf"^--model_dir={path}: is a file, not a folder$"):
        pkkd.train(_config(path))


def test_model_dir_that_cannot_be_created_is_refused_at_start(tmp_path, no_work):
    (tmp_path / "a_file").write_text("x")
    path = tmp_path / "a_file" / "run"  # works as root too, unlike a read-only folder
    with pytest.raises(ValueError, match=rf"^--model_dir={path}: cannot be created"):
        pkkd.train(_config(path))


def test_tune_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(ValueError, match=rf"^--tune_dir={path}: is a file, not a folder$"):
        tune.search(vars(_config(tmp_path / "run")), tune_dir=str(path))


@pytest.mark.parametrize("changes", [dict(image_size=1000), dict(batch_size=100000)])
def test_a_step_that_cannot_fit_is_refused_before_any_data(changes, tmp_path, monkeypatch,
                                                           no_work_but_models):
    monkeypatch.setenv("ADDERNET_TF_MEMORY_LIMIT", str(24 * 2**30))
    with pytest.raises(ValueError) as error:
        pkkd.train(_config(tmp_path / "run", steps_per_epoch=1, **changes))
    message = str(error.value)
    assert "\n" not in message
    assert "a training step needs about" in message and "more than the 24.0 GiB available" in message
    assert "--force" in message


def test_the_estimate_counts_every_layer_output_twice(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(5, 3, padding="same"),
                              keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(7)])
    info = data.DatasetInfo(num_classes=7, image_shape=(4, 4, 3), train_examples=10,
                            test_examples=5, validation_examples=0)
    nets, batches = memory_check.estimate_bytes([model], "imagenet2012", info, batch_size=8)
    per_example = 4 * 4 * 5 + 4 * 4 * 5 + 80 + 7  # conv, relu, flatten, dense
    assert nets == 2 * 8 * per_example * 4
    assert batches == 8 * (8 * 4 * 4 * 3 * 4)  # imagenet: streamed, 8 batches in flight


def test_force_skips_the_memory_check(tmp_path, monkeypatch):
    class _PastTheCheck(Exception):
        pass

    def past(*args, **kwargs):
        raise _PastTheCheck()
    monkeypatch.setenv("ADDERNET_TF_MEMORY_LIMIT", "1000")  # bytes: nothing fits
    monkeypatch.setattr(pkkd, "Distiller", past)
    with pytest.raises(ValueError, match="more than the 0.0 GiB available"):
        pkkd.train(_config(tmp_path / "a", method="ann"))
    with pytest.raises(_PastTheCheck):
        pkkd.train(_config(tmp_path / "b", method="ann", force=True))


# ----------------------------------------------------------------------------
# The data stream a resumed run reads

def test_a_skipped_stream_continues_the_stream_exactly():
    whole = data.load("digits", "train", batch_size=None, image_size=8, seed=3, repeat=True)
    whole = list(whole.take(1500).as_numpy_iterator())  # crosses a pass (1437 examples)
    rest = data.load("digits", "train", batch_size=None, image_size=8, seed=3, repeat=True,
                     skip=1300)
    rest = list(rest.take(200).as_numpy_iterator())
    for (a_image, a_label), (b_image, b_label) in zip(whole[1300:], rest):
        np.testing.assert_array_equal(a_image, b_image)
        assert a_label == b_label


def test_skip_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="`skip` must be a non-negative int, got -1"):
        data.load("digits", "train", skip=-1)


# ----------------------------------------------------------------------------
# KerasTuner's state files

def test_keras_tuner_state_is_written_atomically_during_a_search(tmp_path, monkeypatch):
    from keras_tuner.src import utils as keras_tuner_utils
    path = tmp_path / "oracle.json"
    path.write_text('{"trials": 1}')
    monkeypatch.setattr(_atomic, "_hook", _kill_at_rename)
    with tune._atomic_tuner_state():  # pylint: disable=protected-access
        with pytest.raises(_Killed):
            keras_tuner_utils.save_json(str(path), {"trials": 2})
    assert json.loads(path.read_text()) == {"trials": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]
    assert keras_tuner_utils.save_json is not tune._save_json_atomically  # restored after


def test_a_torn_teacher_checkpoint_is_named_in_one_line(tmp_path, no_work_but_models):
    from addernet_tf.models import get_model
    path = str(tmp_path / "teacher.keras")
    get_model("resnet20", num_classes=10, network="cnn", input_shape=(8, 8, 3)).save(path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    config = _config(tmp_path / "run", method="kd", teacher="fixed", teacher_checkpoint=path)
    with pytest.raises(ValueError) as error:
        pkkd.train(config)
    message = str(error.value)
    assert message.startswith(f"--teacher_checkpoint={path}: not a whole Keras file")
    assert "\n" not in message and "File not found" not in message
