# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""TensorFlow's start-up noise kept off the terminal (`addernet_tf._quiet`)."""

import os
import subprocess
import sys

from addernet_tf import _quiet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796191286.624752    3526 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796191286.625139    3526 cudart_stub.cc:31] Could not find cuda drivers",
    "E0000 00:00:1796191291.040550    3526 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]
KEPT = [
    "E0000 00:00:1796191291.040550    3526 op_kernel.cc:1830] OP_REQUIRES failed",
    "Traceback (most recent call last):",
    "UserWarning: something the user should see",
]


def test_filter_drops_the_start_up_lines_only():
    assert all(_quiet._NOISE.match(line) for line in NOISE)
    assert not any(_quiet._NOISE.match(line) for line in KEPT)


def _stderr_of(code, **env):
    environ = dict(os.environ, PYTHONPATH=REPO, **env)
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env=environ, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_importing_the_package_prints_no_start_up_noise():
    lines = _stderr_of("import trainers.pkkd; import tensorflow as tf; print(tf.constant(1) + 1)")
    assert not [line for line in lines if _quiet._NOISE.match(line)], lines
    # What a user opts into with ADDERNET_TF_TF_LOGS=1 is TensorFlow's own output, untouched.
    loud = _stderr_of("import addernet_tf", ADDERNET_TF_TF_LOGS="1")
    assert [line for line in loud if _quiet._NOISE.match(line)], (
        "this TensorFlow printed nothing at start-up: the quiet test above proves nothing here")
