# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The progress line and the σ-bound warning (`trainers.monitoring`)."""

import io
import math

import pytest

from addernet_tf.trainers.monitoring import ProgressLine, SigmaBoundWarning, closest_to_bounds, feature_health

LOGS = {"student_loss": 2.5, "student_ce": 2.0, "kd": 0.25, "feature": 0.5,
        "student_accuracy": 0.5, "teacher_ce": 1.0, "teacher_accuracy": 0.75,
        "val_student_accuracy": 0.625, "val_teacher_accuracy": 0.875,
        **{f"sigma_a_{i}": 1.0 for i in range(18)}, **{f"rho_a_norm_{i}": 4.0 for i in range(18)},
        **{f"feature_{i}": 0.1 for i in range(18)}}


def test_one_line_per_epoch_with_what_a_person_watches(capsys):
    line = ProgressLine(epochs=3, steps=5, verbose=2)
    line.on_epoch_begin(0)
    for step in range(5):
        line.on_train_batch_end(step, LOGS)
    line.on_epoch_end(0, LOGS)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("epoch 1/3 - ")
    for shown in ("loss 2.5000", "ce 2.0000", "kd 0.2500", "feat 0.5000", "acc 0.5000",
                  "val_acc 0.6250", "teacher_ce 1.0000", "teacher_acc 0.7500",
                  "teacher_val_acc 0.8750"):
        assert shown in out[0], shown
    assert "sigma" not in out[0] and "rho" not in out[0] and "feature_" not in out[0]


def test_silent_at_verbose_0(capsys):
    line = ProgressLine(epochs=1, steps=2, verbose=0)
    line.on_epoch_begin(0)
    line.on_train_batch_end(0, LOGS)
    line.on_epoch_end(0, LOGS)
    assert capsys.readouterr().out == ""


def test_progress_bar_hides_the_per_tap_scalars(capsys):
    line = ProgressLine(epochs=1, steps=2, verbose=1)
    line.on_epoch_begin(0)
    line.on_train_batch_end(0, LOGS)
    line.on_train_batch_end(1, LOGS)
    line.on_epoch_end(0, LOGS)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "val_acc" in out and "sigma" not in out and "rho" not in out


def test_sigma_near_a_bound_warns_once_in_one_line():
    stream = io.StringIO()
    warning = SigmaBoundWarning(stream=stream)
    healthy = {"sigma_a_0": 2.0, "sigma_c_0": 1.0, "sigma_a_1": 0.5}
    warning.on_epoch_end(0, healthy)
    assert stream.getvalue() == ""
    warning.on_epoch_end(1, dict(healthy, sigma_a_0=1.5e3, sigma_a_1=9e-4))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "epoch 2" in lines[0] and "sigma_a_0=1.5e+03" in lines[0] and "sigma_a_1=0.0009" in lines[0]
    warning.on_epoch_end(2, dict(healthy, sigma_a_0=1e4, sigma_a_1=1e-4))  # named already
    assert len(stream.getvalue().splitlines()) == 1
    warning.on_epoch_end(3, dict(healthy, sigma_c_0=999.0))  # 999 is over 10x below 1e4: fine
    assert len(stream.getvalue().splitlines()) == 1


def test_closest_to_bounds_picks_the_worst_sigma():
    epochs = [{"sigma_a_0": 2.0, "sigma_c_0": "1.0", "feature": 3.0},
              {"sigma_a_0": 5e3, "sigma_c_0": 1e-3, "rho_a_norm_0": 1e-9}]
    factor, name, value = closest_to_bounds(epochs)
    # 1e4 / 5e3 = 2 beats 1e-3 / 1e-4 = 10; ‖ρ‖ is not a σ.
    assert (name, value) == ("sigma_a_0", 5e3) and factor == pytest.approx(2.0)
    assert closest_to_bounds([{"feature": 1.0}]) == (math.inf, None, None)
    # A cell history.csv could not fill (or a σ that is not a number) is skipped.
    assert closest_to_bounds([{"sigma_a_0": "", "sigma_a_1": "None", "sigma_c_0": "4.0"}]) == (
        pytest.approx(min(4.0 / 1e-4, 1e4 / 4.0)), "sigma_c_0", 4.0)


def test_feature_health_reads_history_rows():
    rows = [{"epoch": "0", "feature": "36.0", "sigma_a_0": "1.5"},
            {"epoch": "1", "feature": "30.0", "sigma_a_0": "0.02"},
            {"epoch": "2", "feature": "9.0", "sigma_a_0": "3.0"}]
    health = feature_health(rows)
    assert health["l_mid_ratio"] == pytest.approx(9.0 / 36.0)
    assert (health["sigma_name"], health["sigma_value"]) == ("sigma_a_0", 0.02)
    assert health["sigma_factor"] == pytest.approx(0.02 / 1e-4)
    # One epoch, or a method without a feature loss: no ratio, no σ.
    assert feature_health(rows[:1])["l_mid_ratio"] is None
    assert feature_health([{"feature": "nan"}, *rows])["l_mid_ratio"] == pytest.approx(0.25)
    assert feature_health([{"epoch": "0", "kd": "1.0"}, {"epoch": "1", "kd": "0.5"}]) == {
        "l_mid_ratio": None, "sigma_factor": math.inf, "sigma_name": None, "sigma_value": None}
