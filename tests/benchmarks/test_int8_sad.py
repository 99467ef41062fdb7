# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`python -m benchmarks.int8_sad` builds, checks the int8 kernel against a scalar loop, reports."""

import json
import math
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_int8_sad_runs_checked_and_reports_ratios():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.int8_sad", "--batch", "1",
                           "--repeats", "1", "--json"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    assert set(results) == {"r20 16ch@32", "r20 32ch@16", "r20 64ch@8"}
    for r in results.values():
        assert r["checked"] == "1"  # the binary exits non-zero on any mismatch
        assert "psadbw" in r["isa"] or r["isa"].startswith("portable")
        assert math.isclose(float(r["float_over_int8"]),
                            float(r["float_s"]) / float(r["int8_s"]), rel_tol=1e-2)
