# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Smoke test of `benchmarks.train_step`: a tiny run prints one JSON line of sane ratios."""

import json
import math

import pytest

from addernet_tf import cli
from addernet_tf.ops import active_backend
from addernet_tf.benchmarks import train_step


def _positive_finite(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.skipif(active_backend() != "compiled", reason="the compiled op library is not built")
def test_tiny_run_prints_one_json_line_of_positive_finite_ratios(capsys):
    train_step.main(["--json", "--image_size", "8", "--batch_size", "4", "--steps", "1",
                     "--repeats", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])

    assert result["benchmark"] == "train_step"
    assert (result["model"], result["batch_size"], result["image_size"]) == ("resnet20", 4, 8)
    assert (result["steps"], result["repeats"]) == (1, 1)
    assert result["backend"] == "compiled"
    assert result["losses_finite"] is True
    assert result["baseline"] == "pkkd_cnn"
    assert set(result["configs"]) == {"pkkd_ann", "pkkd_cnn", "kd_ann", "ann", "cnn"}
    for name in ("pkkd_ann", "kd_ann", "ann", "cnn"):
        ratio = result[f"{name}_time_over_baseline"]
        assert _positive_finite(ratio), (name, ratio)
        assert ratio == result["configs"][name]["time_over_baseline"]
    for key in ("ann_over_cnn", "pkkd_ann_over_ann", "pkkd_ann_over_kd_ann", "pkkd_cnn_over_cnn"):
        assert _positive_finite(result[key]), (key, result[key])
    for name, config in result["configs"].items():
        for key in ("seconds_per_step", "images_per_s", "time_over_baseline"):
            assert _positive_finite(config[key]), (name, key, config[key])
        assert config["spread"] == 0.0  # one repeat
    assert result["configs"]["pkkd_cnn"]["time_over_baseline"] == 1.0
    split = result["pkkd_ann_split"]
    assert set(split) == {"student_ann", "teacher_and_logit_kd", "kernel_heads_and_feature_loss"}
    assert math.isclose(sum(split.values()), 1.0, rel_tol=1e-9)


def test_rejects_a_non_positive_size(capsys):
    with pytest.raises(SystemExit) as exit_:
        train_step.main(["--steps", "0"])
    assert exit_.value.code == cli.USAGE
    assert capsys.readouterr().err.strip() == "train_step: --steps=0: 0 is not a positive integer"
