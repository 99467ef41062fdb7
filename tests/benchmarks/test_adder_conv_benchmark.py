# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Smoke test of `benchmarks.adder_conv`: it runs to the end, with memory
figures where TensorFlow gives CPU allocator statistics and a one-line note
(never a crash) where it cannot."""

import json
import math

import pytest
import tensorflow as tf

from addernet_tf import cli
from addernet_tf.ops import active_backend
from benchmarks import adder_conv

pytestmark = pytest.mark.skipif(active_backend() != "custom",
                                reason="the compiled op library is not built")

TINY = ["--batch", "1", "--inner", "1", "--repeats", "1", "--reference_inner", "1"]
RATIOS = ("fwd_over_conv", "fwdbwd_over_conv", "reference_over_custom")


def _rows(out):
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) == len(adder_conv.RESNET20_SHAPES) + 1
    for row in rows:
        for key in RATIOS:
            assert math.isfinite(row[key]) and row[key] > 0, (row["shape"], key)
    return rows


def test_runs_without_cpu_memory_stats(monkeypatch, capsys):
    def refuse(device):
        raise ValueError(f"Cannot reset memory stats for device '{device}'")

    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", refuse)
    adder_conv.main(["--json", *TINY])
    captured = capsys.readouterr()
    for row in _rows(captured.out)[:-1]:
        assert row["mem_over_conv"] is None and row["reference_mem_over_conv"] is None
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "Cannot reset memory stats" in notes[0]


def test_table_says_so_without_cpu_memory_stats(monkeypatch, capsys):
    def refuse(device):
        raise ValueError(f"Cannot reset memory stats for device '{device}'")

    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", refuse)
    adder_conv.main(TINY)
    out = capsys.readouterr().out
    assert "n/a" in out
    assert sum(line.startswith("note: no memory figures") for line in out.splitlines()) == 1


def test_memory_figures_where_tensorflow_gives_them(capsys):
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        tf.config.experimental.get_memory_info("CPU:0")
    except (ValueError, RuntimeError) as err:
        pytest.skip(f"this TensorFlow gives no CPU memory statistics: {err}")
    adder_conv.main(["--json", *TINY])
    captured = capsys.readouterr()
    for row in _rows(captured.out)[:-1]:
        assert row["mem_over_conv"] is not None and row["mem_over_conv"] >= 0
    assert "note:" not in captured.err


def test_bad_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        adder_conv.main(["--batch=0"])
    assert exit_.value.code == cli.USAGE
    assert capsys.readouterr().err.strip() == "adder_conv: --batch=0: 0 is not a positive integer"
