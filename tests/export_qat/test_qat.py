"""`addernet_tf.qat`: quantization-aware training with tfmot (tf_keras) to an int8 TFLite model.

Everything runs in child processes: the trainer (Keras 3, tests/conftest.py's
shared `digits_ann_run`), `python -m addernet_tf.qat` (whose own tfmot child
switches to legacy Keras) and the LiteRT interpreter (an int8 model can abort
it). This process never imports tfmot, tf_keras or Keras. The QAT command is a
background job (tests/conftest.py): it starts as soon as the trained run is
there, while the tests before this module run.
"""

import collections
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SIZE = 8

_RUN_INT8 = r"""
import collections, json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1])
index = interpreter.get_input_details()[0]["index"]
images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
interpreter.resize_tensor_input(index, images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, images)
interpreter.invoke()
(source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
out = interpreter.get_tensor(sink["index"])
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
        [sys.executable, "-m", "addernet_tf.qat", f"--model_dir={run_dir}", f"--out={out}",
         "--epochs=1", "--steps_per_epoch=15", "--json"],
        cwd=REPO, env=_env(background.environ), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


BACKGROUND_JOBS = {"qat_result": _qat_job}


@pytest.fixture(scope="module")
def qat_result(background):
    return background.result("qat_result")


def test_qat_int8_model_is_builtin_int8_and_accurate(qat_result):
    result = qat_result
    assert result["format"] == "tflite_int8_qat"
    assert os.path.isfile(result["path"]) and os.path.getsize(result["path"]) == result["bytes"]
    assert result["input"] == f"uint8 [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3]"
    assert result["eval_images"] == 360
    print(f"QAT int8 accuracy {result['qat_int8_accuracy']:.4f}, float student "
          f"{result['float_accuracy']:.4f}, agreement {result['agreement']:.4f}")
    assert result["float_accuracy"] > 0.5
    assert result["qat_int8_accuracy"] > 0.3  # chance is 0.1

    check = subprocess.run([sys.executable, "-c", _RUN_INT8, result["path"]], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    model = json.loads(check.stdout.strip().splitlines()[-1])
    assert (model["input"], model["output"]) == ("uint8", "float32")
    assert model["shape"] == [4, 10]
    assert all(abs(s - 1.0) < 0.05 for s in model["sums"])
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in model["ops"]), model["ops"]
    assert {"QUANTIZE", "DEQUANTIZE", "SUB", "MAXIMUM", "SUM"} <= set(model["ops"])
    dtypes = collections.Counter(model["tensor_dtypes"])
    assert dtypes["int8"] > 10 * dtypes.get("float32", 0), dtypes


def test_cli_fails_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "addernet_tf.qat", f"--model_dir={tmp_path}",
         f"--out={tmp_path}/m.tflite"], cwd=REPO, env=_env(), capture_output=True, text=True,
        timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "qat: `model_dir`" in proc.stderr and "has no student.keras" in proc.stderr
