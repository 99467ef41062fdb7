# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`addernet_tf.export.qat`: quantization-aware training with tfmot (tf_keras) to an int8 TFLite model.

Everything runs in child processes: the trainer (Keras 3, tests/conftest.py's
shared `digits_ann_run`), `python -m addernet_tf.export.qat` (whose own tfmot child
switches to legacy Keras), the float student on the test split (Keras 3) and
the LiteRT interpreter (an int8 model can abort it). This process never
imports tfmot, tf_keras or Keras. The QAT command and the float student are a
background job (tests/conftest.py): it starts as soon as the trained run is
there, while the tests before this module run.
"""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SIZE = 8

# The digits test split as a client sends it (uint8 pixels), its labels and the
# float student's logits: computed here, apart from addernet_tf.export.qat's own evaluation.
_FLOAT_STUDENT = r"""
import sys
import keras
import numpy as np
from addernet_tf import data

run_dir, out_dir = sys.argv[1:]
mean, std = (np.array(v, np.float32) for v in data.normalization("digits", 8))
images, labels = next(data.load("digits", "test", batch_size=1000, image_size=8)
                      .as_numpy_iterator())
pixels = np.clip(np.round((images * std + mean) * 255), 0, 255).astype(np.uint8)
student = keras.models.load_model(run_dir + "/student.keras", compile=False)
logits = student.predict((pixels / np.float32(255) - mean) / std, verbose=0)
np.save(out_dir + "/pixels.npy", pixels)
np.save(out_dir + "/labels.npy", labels)
np.save(out_dir + "/float_logits.npy", np.asarray(logits, np.float32))
"""

_RUN_INT8 = r"""
import collections, json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1])
index = interpreter.get_input_details()[0]["index"]
images = np.load(sys.argv[2])
interpreter.resize_tensor_input(index, images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, images)
interpreter.invoke()
(source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
out = interpreter.get_tensor(sink["index"])
np.save(sys.argv[3], out)
dtypes = collections.Counter(np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details())
print(json.dumps({"ops": sorted({op["op_name"] for op in interpreter._get_ops_details()}),
                  "input": np.dtype(source["dtype"]).name, "output": np.dtype(sink["dtype"]).name,
                  "shape": list(out.shape), "sums": out.sum(-1).tolist(),
                  "tensor_dtypes": dtypes}))
"""


def _env(base=None):
    env = dict(os.environ if base is None else base, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _qat_job(background, workdir):
    # As tests/export: an adder student without a teacher, ~90% test accuracy.
    run_dir = background.result("digits_ann_run")
    out = workdir / "student_qat.tflite"
    proc = background.run(
        [sys.executable, "-m", "addernet_tf.export.qat", f"--model_dir={run_dir}", f"--out={out}",
         "--epochs=1", "--steps_per_epoch=15", "--json"],
        cwd=REPO, env=_env(background.environ), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    check = background.run([sys.executable, "-c", _FLOAT_STUDENT, run_dir, str(workdir)],
                           cwd=REPO, env=_env(background.environ), timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    return result, str(workdir)


BACKGROUND_JOBS = {"qat_result": _qat_job}


@pytest.fixture(scope="module")
def qat_result(background):
    return background.result("qat_result")


def test_qat_int8_model_is_builtin_int8_and_accurate(qat_result):
    result, workdir = qat_result
    assert result["format"] == "tflite_int8_qat"
    assert os.path.isfile(result["path"]) and os.path.getsize(result["path"]) == result["bytes"]
    assert result["input"] == f"uint8 [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3]"
    assert result["eval_images"] == 360

    # The int8 model on the test split, in an interpreter of our own, against
    # the float student's logits (_FLOAT_STUDENT).
    pixels = os.path.join(workdir, "pixels.npy")
    out = os.path.join(workdir, "int8_probabilities.npy")
    check = subprocess.run([sys.executable, "-c", _RUN_INT8, result["path"], pixels, out],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    model = json.loads(check.stdout.strip().splitlines()[-1])
    labels = np.load(os.path.join(workdir, "labels.npy"))
    float_top1 = np.load(os.path.join(workdir, "float_logits.npy")).argmax(-1)
    int8_top1 = np.load(out).argmax(-1)
    float_accuracy = np.mean(float_top1 == labels)
    int8_accuracy = np.mean(int8_top1 == labels)
    agreement = np.mean(int8_top1 == float_top1)
    print(f"QAT int8 accuracy {int8_accuracy:.4f}, float student {float_accuracy:.4f}, "
          f"agreement {agreement:.4f}")
    assert float_accuracy > 0.8  # the shared run: ~90%, far from chance (0.1)
    assert agreement >= 0.95
    assert int8_accuracy >= float_accuracy - 0.03
    # What addernet_tf.export.qat reports is what it measured.
    assert (result["agreement"], result["qat_int8_accuracy"], result["float_accuracy"]) == (
        pytest.approx(agreement), pytest.approx(int8_accuracy), pytest.approx(float_accuracy))

    assert (model["input"], model["output"]) == ("uint8", "float32")
    assert model["shape"] == [360, 10]
    assert all(abs(s - 1.0) < 0.05 for s in model["sums"])
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in model["ops"]), model["ops"]
    assert {"QUANTIZE", "DEQUANTIZE", "SUB", "MAXIMUM", "SUM"} <= set(model["ops"])
    dtypes = collections.Counter(model["tensor_dtypes"])
    assert dtypes["int8"] > 10 * dtypes.get("float32", 0), dtypes


def test_cli_fails_with_one_line(tmp_path):
    # The command's old name, `addernet_tf.qat`, still runs it.
    proc = subprocess.run(
        [sys.executable, "-m", "addernet_tf.qat", f"--model_dir={tmp_path}",
         f"--out={tmp_path}/m.tflite"], cwd=REPO, env=_env(), capture_output=True, text=True,
        timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "qat: `model_dir`" in proc.stderr and "has no student.keras" in proc.stderr
