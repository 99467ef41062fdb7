# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`trainers.study`: statistics checked by hand, failed runs kept, a killed study resumed."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests import tiny_model
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd, study

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T_975 = {1: 12.706204736174707, 2: 4.302652729749464}  # Student's t, two-sided 95%


def _row(seed, accuracy, status="finished", reason=None):
    return dict(seed=seed, status=status, test_accuracy=accuracy, val_accuracy=None,
                reason=reason)


def test_statistics_and_paired_differences_by_hand():
    runs = {"ann": [_row(0, 0.80), _row(1, 0.70), _row(2, 0.75)],
            "pkkd": [_row(0, 0.85), _row(1, None, "failed", "stopped on a non-finite loss"),
                     _row(2, 0.79)],
            "cnn": [_row(0, 0.90), _row(1, 0.92), _row(2, 0.94)]}
    out = study.summarize(runs, baseline="ann")
    ann = out["ann"]["test_accuracy"]
    assert ann["n"] == 3 and ann["mean"] == pytest.approx(0.75)
    assert ann["std"] == pytest.approx(0.05)  # sqrt(((.05)^2 + (.05)^2 + 0) / 2)
    assert (ann["min"], ann["max"]) == (0.70, 0.80)
    pk = out["pkkd"]
    assert pk["test_accuracy"]["n"] == 2 and pk["test_accuracy"]["mean"] == pytest.approx(0.82)
    assert len(pk["runs"]) == 3 and pk["runs"][1]["status"] == "failed"  # kept in the table
    diff = pk["difference_to_baseline"]
    assert diff["seeds"] == [0, 2]  # seed 1 failed: not paired
    d = [0.05, 0.04]
    mean, std = sum(d) / 2, math.sqrt(sum((x - 0.045) ** 2 for x in d))
    half = T_975[1] * std / math.sqrt(2)
    assert diff["mean"] == pytest.approx(mean) and diff["std"] == pytest.approx(std)
    assert diff["ci95"] == pytest.approx([mean - half, mean + half])
    cnn = out["cnn"]["difference_to_baseline"]
    diffs = [0.10, 0.22, 0.19]
    m = sum(diffs) / 3
    s = math.sqrt(sum((x - m) ** 2 for x in diffs) / 2)
    assert cnn["ci95"] == pytest.approx([m - T_975[2] * s / math.sqrt(3),
                                         m + T_975[2] * s / math.sqrt(3)])
    assert "difference_to_baseline" not in out["ann"]


def _tiny(tmp_path):
    return vars(trainer_flags.defaults(dataset="digits", image_size=8, model=tiny_model.SPEC,
                                       epochs=1, steps_per_epoch=2, batch_size=16, verbose=0,
                                       model_dir=str(tmp_path / "runs")))


def test_failed_runs_are_listed_with_their_reason(tmp_path):
    def train(config):
        if config.method == "kd" and config.seed == 1:
            raise pkkd.NonFiniteLossError("student_loss became nan at epoch 1, step 2")
        if config.method == "kd" and config.seed == 0:
            raise RuntimeError("out of memory\nmore lines")
        return dict(student_test_accuracy=0.5 + config.seed / 10, student_val_accuracy=0.4)

    out = study.run_study(_tiny(tmp_path), methods=["ann", "kd"], seeds=[0, 1],
                          study_dir=str(tmp_path / "s"), baseline="ann", train=train)
    kd = out["variants"]["kd"]
    assert [r["status"] for r in kd["runs"]] == ["failed", "failed"]
    assert kd["runs"][0]["reason"] == "RuntimeError: out of memory"
    assert "non-finite loss" in kd["runs"][1]["reason"]
    assert kd["test_accuracy"]["n"] == 0 and kd["difference_to_baseline"]["n"] == 0
    saved = json.loads((tmp_path / "s" / "study.json").read_text())
    assert saved["variants"]["ann"]["test_accuracy"]["mean"] == pytest.approx(0.55)
    table = (tmp_path / "s" / "study.md").read_text()
    assert "| kd | – | – | – | 0 | 2 |" in table and "kd, seed 0: RuntimeError" in table


class _Killed(BaseException):
    pass


def test_a_killed_study_resumes_without_retraining_finished_runs(tmp_path):
    config, study_dir = _tiny(tmp_path), str(tmp_path / "s")
    trained = []

    def killed_at_third(settings):
        if len(trained) == 2:
            raise _Killed()
        summary = pkkd.train(settings)
        trained.append((settings.method, settings.seed, summary.get("already_finished")))
        return summary

    with pytest.raises(_Killed):
        study.run_study(config, methods=["cnn", "ann"], seeds=[0, 1], study_dir=study_dir,
                        train=killed_at_third)
    assert not os.path.exists(os.path.join(study_dir, "study.json"))
    trained.clear()

    def counting(settings):
        summary = pkkd.train(settings)
        trained.append((settings.method, settings.seed, bool(summary.get("already_finished"))))
        return summary

    out = study.run_study(config, methods=["cnn", "ann"], seeds=[0, 1], study_dir=study_dir,
                          baseline="cnn", train=counting)
    assert trained == [("cnn", 0, True), ("cnn", 1, True), ("ann", 0, False), ("ann", 1, False)]
    for name in ("cnn", "ann"):
        assert out["variants"][name]["test_accuracy"]["n"] == 2
        for seed in (0, 1):
            run = os.path.join(study_dir, name, f"seed{seed}")
            assert os.path.exists(os.path.join(run, "summary.json"))
            _check_png(os.path.join(run, "report", "accuracy.png"))  # each run's own
    # The study's pictures, written when it ended: curves, bars, and the PCA
    # panels of the cnn and ann students.
    for name in ("curves.png", "accuracy.png", "features.png"):
        _check_png(os.path.join(study_dir, "report", name))
    from PIL import Image
    with Image.open(os.path.join(study_dir, "report", "features.png")) as image:
        assert image.width > 1.6 * image.height  # two panels side by side


def _check_png(path):
    from PIL import Image
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert 300 <= image.width <= 4000 and 200 <= image.height <= 3000, (path, image.size)


def test_table1_ablation_runs_the_eight_rows():
    rows = study.variants([], "table1")
    assert len(rows) == 8
    assert rows["kd_fixed"] == dict(method="pkkd", kernel=False, rho=False, teacher="fixed")
    assert rows["kernel_rho_kd_progressive"] == dict(method="pkkd", kernel=True, rho=True,
                                                     teacher="progressive")


@pytest.mark.parametrize("kwargs, expected", [
    (dict(methods=["cnn", "distill"]), "--methods=cnn,distill: each must be one of"),
    (dict(baseline="mmd"), "--baseline=mmd: not among the studied variants"),
])
def test_bad_settings_are_one_line_before_any_training(kwargs, expected, tmp_path):
    settings = dict(dict(methods=["cnn", "ann"], seeds=[0], study_dir=str(tmp_path / "s"),
                         train=lambda config: pytest.fail("trained")), **kwargs)
    with pytest.raises(ValueError) as error:
        study.run_study(_tiny(tmp_path), **settings)
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


# How usage errors become one line: tests/test_cli.py; here the study's wiring, once.
@pytest.mark.parametrize("args, expected", [
    (["--seeds=0,x"], "study: --seeds=0,x: must be ints"),
])
def test_cli_bad_flags_are_one_line(args, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "addernet_tf.trainers.study", "--dataset=digits",
         f"--study_dir={tmp_path / 's'}", *args], cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(expected), result.stderr[-500:]
