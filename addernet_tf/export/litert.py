# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A .tflite model's outputs, computed by LiteRT in a child process (`litert_child.py`)."""

import os
import subprocess
import sys

import numpy as np

__all__ = ["CHUNK", "probabilities"]

# Images per interpreter call: the adder layers' [N, OH, OW, C, O]
# intermediates grow with N.
CHUNK = 50
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "litert_child.py")


def probabilities(model_path, images, workdir, runner="interpreter"):
    """Runs a .tflite model on uint8 `images` `[n, H, W, 3]`; float32 `[n, K]`.

    `runner`: "interpreter" (LiteRT's Python Interpreter, builtin ops) or
    "adder" (`addernet_tf.lite.Interpreter`, the adder custom op registered).

    Raises:
      RuntimeError: the interpreter failed or was killed; for an int8 model
        with zero-range tensors, the message names one and says why.
    """
    images_path = os.path.join(workdir, "images.npy")
    out_path = os.path.join(workdir, "probabilities.npy")
    np.save(images_path, images)
    proc = subprocess.run([sys.executable, "-P", _CHILD, os.fspath(model_path), images_path,
                           out_path, str(CHUNK), runner], capture_output=True, text=True)
    if proc.returncode == 0:
        return np.load(out_path)
    if proc.returncode < 0:
        failure = f"was killed by signal {-proc.returncode}"
    else:
        failure = f"failed ({(proc.stderr.strip().splitlines() or ['no message'])[-1]})"
    constant = [line.split(":", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("constant tensors:")]
    names = sorted((name for name in (constant or [""])[0].split(", ") if name),
                   key=lambda name: name.startswith("arith.constant"))  # activations first
    hint = (f"; {len(names)} int8 tensors had a zero range in calibration (e.g. {names[0]!r}): a "
            "ReLU that never fires on the calibration images does this, so train the student "
            "longer or calibrate on more images") if names else ""
    name = os.path.basename(os.fspath(model_path))
    raise RuntimeError(f"the TFLite interpreter {failure} running {name}{hint}")
