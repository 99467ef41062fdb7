# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""TensorFlow's start-up noise kept off the terminal.

Importing TensorFlow prints INFO lines (oneDNN, CPU features, "Could not find
cuda drivers") from C++ before its logging is configured, so
`TF_CPP_MIN_LOG_LEVEL` cannot hide them, and a CPU-only machine then gets an
error line from the failed CUDA initialization. `quiet_start()` imports
TensorFlow and lists its devices with the process's stderr (file descriptor 2)
sent to a temporary file, then writes back every captured line that is not
one of those. It also sets `TF_CPP_MIN_LOG_LEVEL=2` unless the user has set
it. `ADDERNET_TF_TF_LOGS=1` turns all of this off.
"""

import os
import re
import sys
import tempfile

__all__ = ["quiet_start"]

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} .*"  # absl INFO lines
    r"|E\d{4} .*cuda_(platform|executor|diagnostics)\.cc.*(cuInit|CUDA|kernel driver).*"
    r"|W\d{4} .*cuda.*"
    r"|To enable the following instructions: .*in other operations, rebuild TensorFlow.*"
    r")")


def quiet_start():
    """Imports TensorFlow without its start-up noise (once; no-op if already imported)."""
    if os.environ.get("ADDERNET_TF_TF_LOGS") == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, notebooks)
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if line.strip() and not _NOISE.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)
