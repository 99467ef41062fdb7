# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Smoke test of `benchmarks.adder_conv`: it runs to the end, with memory
figures where TensorFlow gives CPU allocator statistics and a one-line note
(never a crash) where it cannot."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from addernet_tf import cli
from addernet_tf.ops import active_backend, kernel_target
from addernet_tf.benchmarks import adder_conv

pytestmark = pytest.mark.skipif(active_backend() != "compiled",
                                reason="the compiled op library is not built")

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return False


TINY = ["--batch", "1", "--inner", "1", "--repeats", "1", "--builtin_inner", "1"]
RATIOS = ("fwd_over_conv", "maxid_fwd_over_conv", "fwdbwd_over_conv", "builtin_over_compiled")


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
        assert row["mem_over_conv"] is None and row["builtin_mem_over_conv"] is None
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


def test_names_the_kernels_target_and_the_conv_isa_cap(monkeypatch, capsys):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    adder_conv.main(["--json", "--conv_max_isa=AVX2", *TINY])
    network = _rows(capsys.readouterr().out)[-1]
    assert network["conv_max_isa"] == "AVX2" and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert network["kernel_target"] == kernel_target() and network["kernel_target"]
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    adder_conv.main(TINY)
    first = capsys.readouterr().out.splitlines()[1]
    assert first == (f"kernels built for {kernel_target()}; conv's oneDNN ISA cap "
                     "(ONEDNN_MAX_CPU_ISA): none")


@pytest.mark.skipif(not _cpu_has("avx2"), reason="the CPU has no AVX2")
def test_the_isa_cap_reaches_onednn():
    # oneDNN reads the cap once, at its first primitive: a fresh process shows it.
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.adder_conv", "--json",
                           "--conv_max_isa=AVX2", *TINY], capture_output=True, text=True,
                          env=env, cwd=REPO, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    isa = [line for line in proc.stdout.splitlines() if line.startswith("onednn_verbose")
           and ",isa:" in line]
    assert isa and all(line.endswith("isa:Intel AVX2") for line in isa), isa[:3]


def test_check_names_the_summed_ratios_over_the_limit():
    network = {"fwd_over_conv": 4.2, "fwdbwd_over_conv": 1.3}
    assert adder_conv.over_limit(network, 4.0) == ["forward 4.20x"]
    assert adder_conv.over_limit(network, 1.0) == ["forward 4.20x", "forward+backward 1.30x"]
    assert adder_conv.over_limit(network, 4.2) == []


def test_check_fails_in_one_line_over_the_limit_and_passes_under_it(monkeypatch, capsys):
    # Times as a spilled kernel gives them: every compiled pass 5x conv's.
    def measure(shape, batch, inner, builtin_inner, repeats):
        times = {}
        for name in ("fwd", "fwdbwd", "dx", "df"):
            times["conv_" + name] = 1e-3
            times["compiled_" + name] = 5e-3
        times.update(maxid_fwd=4e-3, builtin_fwdbwd=0.2)
        return times, {}

    monkeypatch.setattr(adder_conv, "measure_shape", measure)
    with pytest.raises(SystemExit) as exit_:
        adder_conv.main(["--check=4"])
    assert str(exit_.value.code) == ("adder_conv: the network's forward 5.00x and "
                                     "forward+backward 5.00x conv, over the --check limit of 4x")
    adder_conv.main(["--check=5"])
    assert "adder_conv: check passed, the network's forward 5.00x" in capsys.readouterr().out


def test_check_refuses_a_limit_under_one(capsys):
    with pytest.raises(SystemExit) as exit_:
        adder_conv.main(["--check=0.5"])
    assert exit_.value.code == cli.USAGE
    assert "--check=0.5" in capsys.readouterr().err
