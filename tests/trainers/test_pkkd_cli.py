# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`python -m trainers.pkkd`: flags, configs, a tiny real run, fixed teachers, NaN stop."""

import glob
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from absl import flags

from addernet_tf import cli, data
from tests import tiny_model
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.flags")))

# TensorFlow's native log lines, printed before absl starts whatever
# TF_CPP_MIN_LOG_LEVEL says; everything else on stderr is the trainer's.
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::"
    r"|To enable the following instructions)")


def _flag_values(*args):
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd", *args])
    return values


def _config(tmp_path, **overrides):
    """A tiny in-process run of the small CNN (tests/tiny_model.py)."""
    settings = dict(dataset="digits", image_size=8, model=tiny_model.SPEC, epochs=1,
                    steps_per_epoch=2, batch_size=16, verbose=0, model_dir=str(tmp_path / "run"))
    return trainer_flags.defaults(**{**settings, **overrides})


def test_there_is_a_config_for_every_paper_row():
    names = {os.path.basename(path) for path in CONFIGS}
    for model in ("vgg_small", "resnet20", "resnet32"):  # Table 2
        for dataset in ("cifar10", "cifar100"):
            assert f"{model}_{dataset}.flags" in names
            assert {f"{model}_{dataset}_{m}.flags" for m in ("cnn", "ann", "mmd")} <= names
    for teacher in ("fixed", "progressive"):  # Table 1
        for row in ("kd", "rho_kd", "kernel_kd", "kernel_rho_kd"):
            assert f"resnet20_cifar10_ablation_{row}_{teacher}.flags" in names
    for dataset in ("cifar10", "cifar100"):  # Table 3
        for ab in ("0.1", "0.5", "1", "5", "10"):
            assert f"resnet20_{dataset}_ab{ab}.flags" in names
    assert {"resnet18_imagenet.flags", "resnet50_imagenet.flags"} <= names  # Table 4


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_every_config_parses_and_validates(path):
    values = _flag_values(f"--flagfile={path}")
    assert trainer_flags.validate(values) is None
    if "ablation" in path:
        assert values.kernel == ("kernel" in path) and values.rho == ("rho" in path)
        assert values.teacher == ("fixed" if path.endswith("fixed.flags") else "progressive")


def test_paper_settings_of_resnet32_cifar100():
    values = _flag_values(f"--flagfile={os.path.join(REPO, 'configs', 'resnet32_cifar100.flags')}")
    assert (values.model, values.dataset, values.method, values.teacher) == (
        "resnet32", "cifar100", "pkkd", "progressive")
    assert (values.alpha, values.beta, values.epochs, values.batch_size,
            values.learning_rate) == (1.0, 1.0, 400, 256, 0.1)


BAD_FLAGS = [
    ("--alpha=-1", "--alpha=-1.0"), ("--beta=nan", "--beta=nan"),
    ("--method=distill", "--method=distill"), ("--dataset=svhn", "--dataset=svhn"),
    ("--model=resnet21", "--model=resnet21"), ("--model=keras:Nope", "--model=keras:Nope"),
    ("--distribution_strategy=tpu",
                                               "--distribution_strategy=tpu"),
    ("--batch_size=0", "--batch_size=0"), ("--epochs=-3", "--epochs=-3"),
    ("--steps_per_epoch=0", "--steps_per_epoch=0"), ("--learning_rate=0", "--learning_rate=0.0"),
    ("--momentum=1", "--momentum=1.0"), ("--sigma_a_init=1e9", "--sigma_a_init=1000000000.0"),
    ("--teacher=frozen", "--teacher=frozen"), ("--tap=stage", "--tap=stage"),
    ("--manual_dir=/x", "--manual_dir=/x"), ("--log_every_steps=-1", "--log_every_steps=-1"), ("--teacher_checkpoint=t.h5", "--teacher_checkpoint"),
]


@pytest.mark.parametrize("arg,named", BAD_FLAGS, ids=[a for a, _ in BAD_FLAGS])
def test_bad_flag_gives_one_line_naming_it(arg, named):
    try:  # refused when parsed (--model) or by validate
        problem = trainer_flags.validate(_flag_values(arg))
    except flags.Error as e:
        problem = cli.usage_line(e)
    assert problem is not None and problem.startswith(named) and "\n" not in problem


@pytest.mark.parametrize("model, message", [
    ("resnet21", "must be one of resnet20"), ("keras:Nope", "keras.applications has no 'Nope'"),
    ("tiny:", "expected 'keras:<application>' or 'module:function'")])
def test_plain_config_with_a_bad_model_is_refused(model, message):
    problem = trainer_flags.validate(trainer_flags.defaults(model=model))
    assert problem.startswith(f"--model={model}: ") and message in problem


def _run_cli(*args, cwd=REPO, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "trainers.pkkd", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    own = [line for line in proc.stderr.splitlines()
           if line.strip() and not _TF_NATIVE_LOG.match(line)]
    return proc, own


def test_multi_worker_without_tf_config_is_one_line(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    problem = trainer_flags.validate(_flag_values("--distribution_strategy=multi_worker"))
    assert problem.startswith("--distribution_strategy=multi_worker: needs TF_CONFIG")
    assert "\n" not in problem


# How usage errors and failures become one line: tests/test_cli.py; here the
# trainer's wiring to it: a rule broken (exit 2), a failure while training (exit 1).
@pytest.mark.parametrize("args,expected,status", [
    (("--alpha=-1",), r"^pkkd: --alpha=-1\.0: must be", 2),
    (("--dataset=cifar10", "--data_dir={tmp}"), r"^pkkd: .*cifar10.*not prepared", 1),
], ids=["bad_value", "missing_dataset"])
def test_cli_fails_with_one_line(args, expected, status, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path / "tfds")) for a in args]
    proc, own = _run_cli(*args, f"--model_dir={tmp_path / 'run'}")
    assert proc.returncode == status
    assert "Traceback" not in proc.stderr
    assert len(own) == 1, proc.stderr[-2000:]
    assert re.search(expected, own[0]), own[0]


def _scalar_tags(logdir):
    import tensorflow as tf
    tags = set()
    for path in glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def _counting_loads(monkeypatch):
    """Wraps `data.load` so that every batch read from each split is counted."""
    import tensorflow as tf

    counts, load = {}, data.load

    def counting(name, split="train", *args, **kwargs):
        counts.setdefault(split, 0)

        def count(*batch):
            def bump():
                counts[split] += 1
                return 0
            tick = tf.py_function(bump, [], tf.int32)
            with tf.control_dependencies([tick]):
                return tuple(tf.identity(t) for t in batch)
        return load(name, split, *args, **kwargs).map(count)

    monkeypatch.setattr(data, "load", counting)
    return counts


def test_tiny_pkkd_run_writes_everything(tmp_path, monkeypatch):
    config = _config(tmp_path, epochs=2, log_every_steps=1)
    counts = _counting_loads(monkeypatch)
    summary = pkkd.train(config)
    info = data.dataset_info("digits", 8, config.validation_split)
    # The test split is read once, at the end; validation after each epoch and at the end.
    assert counts["test"] == -(-info.test_examples // 16)
    assert counts["validation"] == 3 * -(-info.validation_examples // 16)
    assert info.validation_examples > 0
    run = tmp_path / "run"
    for name in ("summary.json", "history.csv", "student.keras", "teacher.keras",
                 "student.weights.h5", "teacher.weights.h5", "logs"):
        assert (run / name).exists(), name
    assert not (run / "backup").exists()  # removed once training completes
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert 0.0 <= on_disk["student_accuracy"] <= 1.0
    assert 0.0 <= on_disk["teacher_accuracy"] <= 1.0
    for network in ("student", "teacher"):
        assert on_disk[f"{network}_test_accuracy"] == on_disk[f"{network}_accuracy"]
        assert 0.0 <= on_disk[f"{network}_val_accuracy"] <= 1.0
    assert on_disk["bn_recalibration_batches"] == trainer_flags.DEFAULT_RECALIBRATION_BATCHES
    assert on_disk["validation_examples"] == info.validation_examples
    assert on_disk["student_ops"]["add"] > 2 * on_disk["student_ops"]["mul"] > 0
    assert on_disk["teacher_ops"]["mul"] == on_disk["teacher_ops"]["add"]
    assert on_disk["flags"]["method"] == "pkkd" and on_disk["flags"]["epochs"] == 2
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "sigma_a_0" in history[0] and "val_student_accuracy" in history[0]
    tags = _scalar_tags(str(run / "logs"))
    for tag in ("batch_student_loss", "batch_teacher_ce", "batch_feature_0", "batch_sigma_a_0",
                "batch_rho_a_norm_0", "epoch_student_accuracy", "epoch_teacher_accuracy"):
        assert tag in tags, sorted(tags)
    student = keras.models.load_model(run / "student.keras")
    x = np.zeros((1, 8, 8, 3), "float32")
    assert student(x).shape == (1, 10)


def test_fixed_teacher_is_trained_first_then_frozen(tmp_path):
    config = _config(tmp_path, teacher="fixed", teacher_epochs=1, method="kd")
    pkkd.train(config)
    run = tmp_path / "run"
    pretrained = keras.models.load_model(run / "teacher.keras")
    reference = keras.models.clone_model(pretrained)
    reference.load_weights(run / "teacher_pretraining" / "teacher.weights.h5")
    for got, want in zip(pretrained.weights, reference.weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert (run / "teacher_pretraining" / "DONE").exists()

    # The same weights as --teacher_checkpoint: nothing is trained for the teacher.
    checkpoint = str(run / "teacher_pretraining" / "teacher.weights.h5")
    again = _config(tmp_path / "second", teacher="fixed", method="pkkd",
                    teacher_checkpoint=checkpoint)
    pkkd.train(again)
    assert not (tmp_path / "second" / "run" / "teacher_pretraining").exists()
    final = keras.models.load_model(tmp_path / "second" / "run" / "teacher.keras")
    for got, want in zip(final.weights, reference.weights):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_non_finite_loss_stops_naming_the_step(tmp_path):
    config = _config(tmp_path, method="cnn", learning_rate=1e30, steps_per_epoch=4)
    with pytest.raises(pkkd.NonFiniteLossError, match=r"student_loss became (nan|inf) at epoch 1, step \d"):
        pkkd.train(config)


def test_settings_of_parsed_flags_hold_every_trainer_flag():
    # run.json and summary.json's "flags" come from here.
    settings = trainer_flags.as_dict(_flag_values("--method=kd", "--epochs=7"))
    assert sorted(settings) == trainer_flags.flag_names()
    assert (settings["method"], settings["epochs"]) == ("kd", 7)
