# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`benchmarks.pkkd_health`: the three health checks on a tiny real run."""

import math

import pytest

from addernet_tf.benchmarks import pkkd_health
from tests import tiny_model
from addernet_tf.trainers import flags as trainer_flags


def _config(tmp_path, **overrides):
    return trainer_flags.defaults(**{**dict(
        dataset="digits", image_size=8, model=tiny_model.SPEC, epochs=2, steps_per_epoch=2,
        batch_size=16, verbose=0, model_dir=str(tmp_path / "x")), **overrides})


def test_tiny_run_reports_every_check(tmp_path):
    report = pkkd_health.measure(_config(tmp_path), other_seed=1, health_dir=str(tmp_path))
    assert (tmp_path / "seed1" / "teacher.keras").exists() and (tmp_path / "seed0").exists()
    for key in ("sigma_pass", "l_mid_pass", "teacher_pass"):
        assert isinstance(report[key], bool)
    assert len(report["epochs"]) == 2 and len(report["eval_gap"]) == 2
    for key in ("l_mid_first_epoch", "l_mid_last_epoch", "l_mid_own_teacher",
                "l_mid_other_teacher"):
        assert math.isfinite(report[key]) and report[key] > 0, key
    assert report["l_mid_pass"] == (report["l_mid_last_epoch"]
                                    <= 0.5 * report["l_mid_first_epoch"])
    assert report["teacher_pass"] == (report["l_mid_own_teacher"]
                                      < report["l_mid_other_teacher"])
    closest = report["sigma_closest"]
    assert closest["name"].startswith("sigma_") and closest["factor_to_bound"] >= 1.0
    assert len(pkkd_health._lines(report)) == 4


@pytest.mark.parametrize("overrides,other_seed,message", [
    ({"method": "kd"}, 1, "--method=kd"),
    ({}, 0, "--other_seed=0"),
])
def test_refuses_what_it_cannot_measure(tmp_path, overrides, other_seed, message):
    with pytest.raises(ValueError, match=message):
        pkkd_health.measure(_config(tmp_path, **overrides), other_seed, str(tmp_path))
