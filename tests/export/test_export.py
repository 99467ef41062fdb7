# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`addernet_tf.export`: one tiny digits run, exported in every format.

The SavedModel must serve from a process that never imports addernet_tf and
match the Keras student; the float TFLite model must match it in
`ai_edge_litert`; the int8 model must agree with the float student on >= 97%
of the test split. The int8 model only ever runs in child processes: a badly
calibrated one can abort the interpreter (SIGABRT).

The exports return probabilities, and a trained student's are saturated: the
top class near 1, the others down to 1e-7, where an absolute tolerance on
probabilities sees next to nothing. So they are compared as log-probabilities
with the student's log-softmax (its logits up to a per-image constant).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
from absl import flags

from addernet_tf import _atomic, cli, data, export, lite
from addernet_tf.export import __main__ as export_cli
from addernet_tf.export import int8, litert
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SIZE = 8

# TensorFlow's native log lines, printed before absl starts whatever
# TF_CPP_MIN_LOG_LEVEL says; everything else on stderr is the command's.
_TF_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl::"
    r"|To enable the following instructions)")


def _train(model_dir, **overrides):
    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd"])
    config = types.SimpleNamespace(**{name: values[name].value for name in values})
    settings = dict(dataset="digits", image_size=IMAGE_SIZE, model="resnet20", batch_size=16,
                    verbose=0, model_dir=str(model_dir))
    settings.update(overrides)
    for name, value in settings.items():
        setattr(config, name, value)
    pkkd.train(config)
    return str(model_dir)


# float32 exp underflows below about -87 (-103 with subnormals): log-probabilities
# above this are compared value for value, those below only as "tiny".
_LOG_FLOOR = -60.0


def _log_softmax(logits):
    """float64 log-softmax: the log-probabilities a float32 softmax rounds."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _log_probability_error(probabilities, expected_log_probabilities):
    """max |log p − expected| over the entries above `_LOG_FLOOR` (nearly all of them).

    `probabilities`: float32 [n, K] from an export; entries whose expected
    log-probability is below the floor (none, for the shared run) must be tiny.
    """
    expected = np.asarray(expected_log_probabilities, np.float64)
    comparable = expected > _LOG_FLOOR
    assert comparable.mean() >= 0.99, "saturated logits: compare them before the softmax"
    assert np.all(probabilities[~comparable] <= np.exp(_LOG_FLOOR + 1.0))
    with np.errstate(divide="ignore"):
        actual = np.log(probabilities.astype(np.float64))
    return float(np.max(np.abs(actual - expected)[comparable]))


@pytest.fixture(scope="module")
def run_dir(digits_ann_run):
    # tests/conftest.py: an adder student without a teacher, 600 steps, ~90%
    # test accuracy: enough margin between classes for the int8 agreement to
    # mean something (a chance-level student's ReLUs can be dead on every
    # calibration image). Shared with tests/export_qat; nothing here writes to it.
    return digits_ann_run


@pytest.fixture(scope="module")
def test_split():
    """The digits test split as a client would send it: uint8 [360, 8, 8, 3], labels."""
    mean, std = (np.array(v) for v in data.normalization("digits", IMAGE_SIZE))
    ds = data.load("digits", "test", batch_size=1000, image_size=IMAGE_SIZE)
    images, labels = next(ds.as_numpy_iterator())
    pixels = np.clip(np.round((images * std + mean) * 255), 0, 255).astype(np.uint8)
    return pixels, labels


_STUDENT_LOGITS = r"""
import sys
import keras
import numpy as np
import addernet_tf
from addernet_tf import data, ops

run_dir, images_path, out_path = sys.argv[1:]
mean, std = (np.array(v, np.float32) for v in data.normalization("digits", 8))
student = keras.models.load_model(run_dir + "/student.keras", compile=False)
logits = student.predict((np.load(images_path) / np.float32(255) - mean) / std, verbose=0)
np.save(out_path, np.asarray(logits, np.float32))
print(ops.active_backend())
"""


@pytest.fixture(scope="module")
def keras_logits(run_dir, test_split, tmp_path_factory):
    """Logits of the saved student.keras on the test pixels, normalized as the run's data was.

    {backend: float32 [360, 10]} for "compiled" (the compiled op, when built) and
    "builtin" (`ADDERNET_TF_BACKEND=builtin`: the builtin-op twin, the
    graph the exports hold). The two differ by float32 reassociation in sums
    of hundreds of |x - w| terms, ~1e-4 on logits here.
    """
    work = tmp_path_factory.mktemp("keras")
    np.save(work / "images.npy", test_split[0])
    children = {}
    for backend in ("compiled", "builtin"):  # side by side: each mostly uses one core
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("ADDERNET_TF_BACKEND", None)
        if backend == "builtin":
            env["ADDERNET_TF_BACKEND"] = "builtin"
        out = work / f"{backend}.npy"
        children[out] = subprocess.Popen(
            [sys.executable, "-c", _STUDENT_LOGITS, run_dir, str(work / "images.npy"),
             str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    result = {}
    try:
        for out, child in children.items():
            stdout, stderr = child.communicate(timeout=120)
            assert child.returncode == 0, stderr[-3000:]
            result[stdout.split()[-1]] = np.load(out)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return result


@pytest.fixture(scope="module")
def saved_model(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved_model") / "student"
    return export.export_saved_model(run_dir, out)


_SERVE_WITHOUT_ADDERNET = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, images_path, out_path = sys.argv[1:]
loaded = tf.saved_model.load(path)
serve = loaded.signatures["serving_default"]
spec = serve.structured_input_signature[1]["images"]
outputs = serve(images=tf.constant(np.load(images_path)))
np.save(out_path, outputs["probabilities"].numpy())
print(json.dumps({"dtype": spec.dtype.name, "shape": spec.shape.as_list(),
                  "outputs": sorted(outputs), "addernet": "addernet_tf" in sys.modules}))
"""


@pytest.fixture(scope="module")
def served_probabilities(saved_model, test_split, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    np.save(work / "images.npy", test_split[0])
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_WITHOUT_ADDERNET, saved_model["path"],
         str(work / "images.npy"), str(work / "probabilities.npy")],
        cwd=str(work), capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1]), np.load(work / "probabilities.npy")


def test_saved_model_serves_uint8_images_without_addernet(saved_model, served_probabilities,
                                                          keras_logits):
    info, probabilities = served_probabilities
    assert info == {"dtype": "uint8", "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 3],
                    "outputs": ["probabilities"], "addernet": False}
    assert probabilities.shape == (360, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    errors = {backend: _log_probability_error(probabilities, _log_softmax(logits))
              for backend, logits in keras_logits.items()}
    print(f"max |log p - log_softmax(keras logits)|: {errors}")
    # The same layers (the builtin twin) as the loaded student: float32 rounding
    # only, in sums of hundreds of terms (measured 3-4e-5, logits |z| <= 12).
    assert errors["builtin"] <= 1e-4
    # The compiled op sums in another order (see keras_logits; measured 1.7e-4).
    assert max(errors.values()) <= 5e-4
    # And the probabilities as a client reads them.
    for backend, logits in keras_logits.items():
        tolerance = 1e-5 if backend == "builtin" else 1e-4
        assert np.max(np.abs(probabilities - np.exp(_log_softmax(logits)))) <= tolerance
    # Built on the builtin twin: no trace of the compiled op in the graph.
    with open(os.path.join(saved_model["path"], "saved_model.pb"), "rb") as f:
        assert b"Addernet" not in f.read()
    assert saved_model["input"] == f"uint8 [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3]"
    assert saved_model["output"] == "float32 [N, 10]"


def _interpreter(path, batch):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [batch, IMAGE_SIZE, IMAGE_SIZE, 3])
    interpreter.allocate_tensors()
    return interpreter


def test_tflite_float_is_builtin_and_matches_saved_model(run_dir, tmp_path, test_split,
                                                         served_probabilities, keras_logits,
                                                         monkeypatch):
    renames = []
    monkeypatch.setattr(_atomic, "_hook", lambda stage, tmp, final: renames.append(
        (stage, os.path.dirname(tmp), os.path.exists(final), final)))
    result = export.export_tflite(run_dir, tmp_path / "student.tflite")
    assert result["format"] == "tflite" and result["bytes"] == os.path.getsize(result["path"])
    # Written whole beside its final name, then renamed into place: a kill leaves no torn file.
    assert [r for r in renames if r[3] == result["path"]] == [
        ("written", str(tmp_path), False, result["path"])]
    images = test_split[0]
    interpreter = _interpreter(result["path"], len(images))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops
    assert {"ABS", "SUB", "SUM"} <= ops  # the adder layers, as builtin arithmetic
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert source["dtype"] == np.uint8 and list(source["shape_signature"]) == [-1, 8, 8, 3]
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    probabilities = interpreter.get_tensor(sink["index"])
    assert probabilities.dtype == np.float32 and probabilities.shape == (360, 10)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    with np.errstate(divide="ignore"):
        served = np.log(served_probabilities[1].astype(np.float64))
    errors = (_log_probability_error(probabilities, served),
              _log_probability_error(probabilities, _log_softmax(keras_logits["builtin"])))
    print(f"max |log p_tflite - log p_saved_model|, |... - log_softmax(keras)|: {errors}")
    # TFLite's kernels round differently from TensorFlow's; the graph is the
    # same (measured 5e-5).
    assert max(errors) <= 2e-4
    # What that bound allows in probability: |Δp| = p·|e^{Δlog p} − 1| ≤ e^{2e-4} − 1
    # (measured 0.6–1.2e-5 on different CPUs).
    assert np.max(np.abs(probabilities - served_probabilities[1])) <= np.expm1(2e-4)


# Inspects and runs the int8 model, in a child process (SIGABRT, see above).
_RUN_INT8 = r"""
import collections, json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

path, images_path, out_path = sys.argv[1:]
images = np.load(images_path)
interpreter = Interpreter(model_path=path)
index = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(index, images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, images)
interpreter.invoke()
(source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
np.save(out_path, interpreter.get_tensor(sink["index"]))
dtypes = collections.Counter(np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details())
print(json.dumps({"ops": sorted({op["op_name"] for op in interpreter._get_ops_details()}),
                  "input": np.dtype(source["dtype"]).name, "output": np.dtype(sink["dtype"]).name,
                  "tensor_dtypes": dtypes}))
"""


def _run_cli(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "addernet_tf.export", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    own = [line for line in proc.stderr.splitlines()
           if line.strip() and not _TF_NATIVE_LOG.match(line)]
    return proc, own


def _tflite_int8_cli_job(background, workdir):
    # The CLI export (calibration, conversion, evaluation: the slowest export
    # here), run in the background beside the tests before it.
    run_dir = background.result("digits_ann_run")
    out = workdir / "student_int8.tflite"
    env = dict(background.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    proc = background.run([sys.executable, "-m", "addernet_tf.export", f"--model_dir={run_dir}",
                           "--format=tflite_int8", f"--out={out}", "--json"],
                          cwd=REPO, env=env, timeout=600)
    return proc, out


BACKGROUND_JOBS = {"tflite_int8_cli": _tflite_int8_cli_job}


@pytest.fixture(scope="module")
def tflite_int8_cli(background):
    """(the finished `python -m addernet_tf.export --format=tflite_int8 --json`
    process on `run_dir`, the path it was asked to write)."""
    return background.result("tflite_int8_cli")


def test_tflite_int8_agrees_with_float_student(tflite_int8_cli, tmp_path, test_split,
                                               keras_logits):
    proc, out = tflite_int8_cli
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["format"], result["path"]) == ("tflite_int8", str(out))
    assert (result["calibration_images"], result["eval_images"]) == (200, 360)
    assert result["agreement"] >= 0.97, result
    print(f"int8 agreement {result['agreement']:.4f}, accuracy int8 "
          f"{result['int8_accuracy']:.4f} / float {result['float_accuracy']:.4f}")

    # Checked again here, from the file, with an interpreter of our own.
    images, labels = test_split
    np.save(tmp_path / "images.npy", images)
    check = subprocess.run(
        [sys.executable, "-c", _RUN_INT8, str(out), str(tmp_path / "images.npy"),
         str(tmp_path / "int8.npy")], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    model = json.loads(check.stdout.splitlines()[-1])
    assert (model["input"], model["output"]) == ("uint8", "float32")
    assert {"QUANTIZE", "DEQUANTIZE", "SUB", "MAXIMUM", "SUM"} <= set(model["ops"])
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in model["ops"])
    # Everything between the input cast and the output is int8 (int32: biases, indices).
    assert model["tensor_dtypes"].get("float32", 0) <= 2, model["tensor_dtypes"]
    top1 = np.load(tmp_path / "int8.npy").argmax(-1)
    float_top1 = next(iter(keras_logits.values())).argmax(-1)
    agreement = np.mean(top1 == float_top1)
    assert agreement == pytest.approx(result["agreement"])
    assert np.mean(top1 == labels) == pytest.approx(result["int8_accuracy"])


def test_tflite_adder_int8_runs_the_int8_op_and_agrees_with_float_student(
        run_dir, tmp_path, test_split, keras_logits):
    # The API (the CLI's wiring is the same for every format: tests above);
    # 100 calibration images keep the test short.
    out = tmp_path / "student_adder_int8.tflite"
    result = export.export(run_dir, "tflite_adder_int8", out, calibration_images=100)
    assert (result["format"], result["path"]) == ("tflite_adder_int8", str(out))
    assert (result["calibration_images"], result["eval_images"]) == (100, 360)
    assert result["bytes"] == os.path.getsize(out)
    # The target: int8 top-1 agreement >= 97% on a trained student.
    assert result["agreement"] >= 0.97, result
    print(f"tflite_adder_int8 agreement {result['agreement']:.4f}, accuracy int8 "
          f"{result['int8_accuracy']:.4f} / float {result['float_accuracy']:.4f}")
    flatbuffer = out.read_bytes()
    ops = lite.adder_ops(flatbuffer)
    adders = [layer for layer in keras.models.load_model(
        os.path.join(run_dir, "student.keras"), compile=False)._flatten_layers()
        if type(layer).__name__ == "Adder2D"]
    assert len(ops) == len(adders) > 0
    # ResNet-20's 9 residual ADDs (with their ReLUs) folded into an op each.
    assert sorted(len(op["inputs"]) for op in ops) == [4] * (len(ops) - 9) + [5] * 9
    # Checked again from the file: its top-1 against the student's logits.
    images, labels = test_split
    with lite.Interpreter(str(out), num_threads=2) as model:
        probabilities = model(images)
    top1 = probabilities.argmax(-1)
    assert np.mean(top1 == keras_logits["builtin"].argmax(-1)) == pytest.approx(
        result["agreement"], abs=2 / len(images))
    assert np.mean(top1 == labels) == pytest.approx(result["int8_accuracy"])
    report = export_cli.report(result).splitlines()
    assert report[0].startswith(f"wrote tflite_adder_int8 (adder custom op) to {out}, ")
    assert report[1].startswith("int8 top-1 agreement with the float student: ")


def test_int8_form_of_the_adder_layers_matches_in_float(run_dir, test_split):
    student = export.load_student(run_dir)
    centered = int8.int8_friendly(student)
    adders = [layer for layer in centered.layers if isinstance(layer, int8.CenteredAdder)]
    assert len(adders) == 20 and all(np.any(layer.center != 0) for layer in adders)
    mean, std = (np.array(v, np.float32) for v in data.normalization("digits", IMAGE_SIZE))
    images = (test_split[0][:64] / np.float32(255) - mean) / std
    expected = student.predict(images, verbose=0)
    np.testing.assert_allclose(centered.predict(images, verbose=0), expected,
                               atol=1e-4 * np.abs(expected).max())


def test_load_student_auto_and_builtin_agree(run_dir, test_split):
    info = export.read_run(run_dir)
    recorded = data.normalization("digits", IMAGE_SIZE)  # the trainer writes it to summary.json
    assert info == export.RunInfo(run_dir, "digits", IMAGE_SIZE, "resnet20", "ann", 10, None,
                                  recorded)
    assert export.run_normalization(info) == recorded
    with pytest.raises(ValueError, match="`implementation` must be"):
        export.load_student(run_dir, "fast")
    auto, builtin = export.load_student(run_dir, "auto"), export.load_student(run_dir)
    assert [w.path for w in builtin.weights] == [w.path for w in auto.weights]
    assert not any(getattr(layer, "implementation", "builtin") != "builtin"
                   for layer in builtin.layers)
    images = test_split[0][:16].astype(np.float32) / 255
    expected = auto.predict(images, verbose=0)
    np.testing.assert_allclose(builtin.predict(images, verbose=0), expected,
                               atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("make,kwargs,message", [
    (lambda tmp, run: tmp / "nowhere", {}, "is not a directory"),
    (lambda tmp, run: tmp, {}, "has no student.keras"),
    (lambda tmp, run: run, dict(format="onnx"), "`format` must be one of"),
    (lambda tmp, run: run, dict(out="{tmp}/missing/model.tflite"), "does not exist"),
    (lambda tmp, run: run, dict(out="{tmp}/model.bin"), "must end in .tflite"),
    (lambda tmp, run: run, dict(format="tflite_int8", calibration_images=0),
     "`calibration_images` must be a positive int"),
], ids=["missing_dir", "no_student", "format", "out_parent", "out_suffix", "calibration"])
def test_bad_arguments_raise_one_line(make, kwargs, message, tmp_path, run_dir):
    kwargs = dict(kwargs)
    out = kwargs.pop("out", "{tmp}/model.tflite").replace("{tmp}", str(tmp_path))
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        export.export(make(tmp_path, run_dir), kwargs.pop("format", "tflite"), out, **kwargs)
    assert "\n" not in str(error.value)


# How any program's usage errors and failures become one line: tests/test_cli.py.
# Here, once, that the export command is wired to it; the messages themselves
# are the API's (test_bad_arguments_raise_one_line) and the rules' below.
def test_cli_fails_with_one_line(tmp_path):
    proc, own = _run_cli(f"--model_dir={tmp_path}", "--format=onnx", f"--out={tmp_path}/m.onnx",
                         timeout=120)
    assert proc.returncode == cli.USAGE
    assert "Traceback" not in proc.stderr
    assert own == ["export: --format=onnx: must be one of saved_model, tflite, tflite_int8, "
                   "tflite_adder, tflite_adder_int8"], (
        proc.stderr[-2000:])


@pytest.mark.parametrize("model_dir, out, problem", [
    (None, "m.tflite", "--model_dir must name a finished training run"),
    ("run", None, "--out must be given"), ("run", "m.tflite", None)])
def test_cli_rules_name_the_missing_flag(model_dir, out, problem):
    values = types.SimpleNamespace(model_dir=model_dir, out=out, format="tflite", op="builtin",
                                   formulation="exact")
    assert export_cli.rules(values) == problem


def test_cli_rules_keep_the_compiled_op_to_saved_models():
    values = types.SimpleNamespace(model_dir="run", out="m.tflite", format="tflite",
                                   op="compiled", formulation="exact")
    assert export_cli.rules(values) == "--op=compiled: only applies to --format=saved_model"
    values.format, values.out = "saved_model", "m"
    assert export_cli.rules(values) is None
    values.formulation = "max_identity"
    assert export_cli.rules(values) is None
    values.op = "builtin"
    assert export_cli.rules(values) == ("--formulation=max_identity: only applies to "
                                        "--op=compiled or --format=tflite_adder")
    values.format, values.out = "tflite_adder", "m.tflite"
    assert export_cli.rules(values) is None


# The max identity's LiteRT kernel is tested op by op in tests/lite (and measured
# at 3.2e-4 in log-probability here, 1.8e-5 in probability); one export suffices.
@pytest.mark.parametrize("formulation", ["exact"])
def test_tflite_adder_runs_the_custom_op_and_matches_saved_model(
        run_dir, tmp_path, test_split, served_probabilities, keras_logits, formulation):
    out = tmp_path / "student_adder.tflite"
    result = export.export(run_dir, "tflite_adder", out, formulation=formulation,
                           eval_images=100)
    assert result["format"] == "tflite_adder" and result["bytes"] == os.path.getsize(out)
    assert result["eval_images"] == 100 and result["formulation"] == formulation
    flatbuffer = out.read_bytes()
    ops = lite.adder_ops(flatbuffer)
    # resnet20: 18 adder convolutions and 2 adder shortcuts (the stem stays a conv).
    assert len(ops) == len([layer for layer in keras.models.load_model(
        os.path.join(run_dir, "student.keras"), compile=False)._flatten_layers()
        if type(layer).__name__ == "Adder2D"]) > 0
    assert {op["attrs"]["formulation"] for op in ops} == {formulation}
    # Each adder layer is followed by its BN: all 20 took it (and a ReLU) as their epilogue,
    # and 9 of them a residual block's ADD too, its shortcut as a 5th input.
    assert sorted(len(op["inputs"]) for op in ops) == [4] * (len(ops) - 9) + [5] * 9
    with lite.Interpreter(str(out), num_threads=2) as model:
        probabilities = model(test_split[0])
    assert probabilities.shape == (360, 10)
    # The parity target, against the portable SavedModel: |Δp| <= 1e-4.
    assert np.max(np.abs(probabilities - served_probabilities[1])) <= 1e-4
    error = _log_probability_error(probabilities, _log_softmax(keras_logits["compiled"]))
    print(f"{formulation}: max |log p_tflite_adder - log_softmax(keras)| = {error:.2e}, "
          f"export's check {result['max_abs_diff']:.2e}")
    assert error <= (2e-4 if formulation == "exact" else 2e-3)
    assert result["max_abs_diff"] <= 1e-4 and result["agreement"] >= 0.99


_SERVE_COMPILED = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, library, images_path, out_path = sys.argv[1:]
try:
    tf.saved_model.load(path)
    without = "loaded"
except Exception as e:  # the op is not registered yet
    without = str(e)
tf.load_op_library(library)
serve = tf.saved_model.load(path).signatures["serving_default"]
np.save(out_path, serve(images=tf.constant(np.load(images_path)))["probabilities"].numpy())
print(json.dumps({"without_library": without, "addernet": "addernet_tf" in sys.modules}))
"""


def test_saved_model_with_the_compiled_op(run_dir, tmp_path, test_split, served_probabilities):
    result = export.export_saved_model(run_dir, tmp_path / "compiled", op="compiled")
    assert result["op"] == "compiled"
    with open(os.path.join(result["path"], "saved_model.pb"), "rb") as f:
        assert b"Addernet>AdderConv2D" in f.read()
    np.save(tmp_path / "images.npy", test_split[0])
    library = os.path.join(REPO, "addernet_tf", "ops", "_adder_ops.so")
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_COMPILED, result["path"], library,
         str(tmp_path / "images.npy"), str(tmp_path / "probabilities.npy")],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.splitlines()[-1])
    assert info["addernet"] is False
    assert "Addernet>AdderConv2D" in info["without_library"]
    builtin = served_probabilities[1]
    compiled = np.load(tmp_path / "probabilities.npy")
    # Two summation orders of the same float32 sums (measured in the builtin test: 1.7e-4
    # between the compiled op and the twin in log-probability).
    assert _log_probability_error(compiled, np.log(builtin)) <= 5e-4
    assert np.max(np.abs(compiled - builtin)) <= 1e-4


def test_saved_model_with_the_max_identity(run_dir, tmp_path, test_split, served_probabilities):
    import tensorflow as tf
    with pytest.raises(ValueError, match=r"`formulation` 'max_identity' needs op='compiled'"):
        export.export_saved_model(run_dir, tmp_path / "no", formulation="max_identity")
    with pytest.raises(ValueError, match=r"`formulation`.*'fast'"):
        export.export_saved_model(run_dir, tmp_path / "no", op="compiled", formulation="fast")
    result = export.export_saved_model(run_dir, tmp_path / "maxid", op="compiled",
                                       formulation="max_identity")
    assert (result["op"], result["formulation"]) == ("compiled", "max_identity")
    with open(os.path.join(result["path"], "saved_model.pb"), "rb") as f:
        graph = f.read()
    assert b"Addernet>AdderConv2D" in graph and b"max_identity" in graph
    serve = tf.saved_model.load(result["path"]).signatures["serving_default"]
    probabilities = serve(images=tf.constant(test_split[0]))["probabilities"].numpy()
    # The same sums rounded another way: as close to the builtin graph's as the exact op is.
    assert np.max(np.abs(probabilities - served_probabilities[1])) <= 1e-4


def _dead_relu_int8_model(path):
    """An int8 model whose ReLU never fires on its calibration images."""
    import tensorflow as tf

    weights = tf.constant(np.linspace(0.5, 1.5, 9, dtype=np.float32).reshape(1, 1, 3, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, 2, 2, 3], tf.uint8)])
    def serve(images):
        x = tf.cast(images, tf.float32) / 255.0
        dead = tf.nn.relu(tf.nn.conv2d(x, weights, 1, "VALID") - 10.0)
        return tf.nn.softmax(tf.reduce_mean(tf.nn.conv2d(dead, weights, 1, "VALID") + x, [1, 2]))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.integers(0, 256, (1, 2, 2, 3), dtype=np.uint8)] for _ in range(10))
    with open(path, "wb") as f:
        f.write(converter.convert())


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
def test_int8_model_that_does_not_run_gives_one_line(tmp_path):
    images = np.zeros((3, 2, 2, 3), np.uint8)
    _dead_relu_int8_model(tmp_path / "dead.tflite")
    with pytest.raises(RuntimeError, match="zero range in calibration") as error:
        litert.probabilities(str(tmp_path / "dead.tflite"), images, str(tmp_path))
    assert "\n" not in str(error.value)
    (tmp_path / "garbage.tflite").write_bytes(b"not a model" * 10)
    with pytest.raises(RuntimeError, match="^the TFLite interpreter failed") as error:
        litert.probabilities(str(tmp_path / "garbage.tflite"), images, str(tmp_path))
    assert "\n" not in str(error.value)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
def test_empty_activation_ranges_get_the_minimal_one_and_the_model_runs(tmp_path):
    _dead_relu_int8_model(tmp_path / "dead.tflite")
    dead = (tmp_path / "dead.tflite").read_bytes()
    fixed, raised = int8.floor_activation_scales(dead)
    assert raised and all("Relu" in name for name in raised), raised
    (tmp_path / "fixed.tflite").write_bytes(fixed)
    images = np.random.default_rng(1).integers(0, 256, (40, 2, 2, 3), dtype=np.uint8)
    got = litert.probabilities(str(tmp_path / "fixed.tflite"), images, str(tmp_path))
    # The float model, by hand: the ReLU never fires (x <= 1, weights sum < 10),
    # so the output is softmax over channels of each image's spatial mean of x.
    mean = (images.astype(np.float64) / 255.0).mean(axis=(1, 2))
    want = np.exp(mean) / np.exp(mean).sum(-1, keepdims=True)
    assert np.max(np.abs(got - want)) <= 0.01
    assert np.mean(got.argmax(-1) == want.argmax(-1)) >= 0.95
    # Raised once, the model is left as it is.
    again, none = int8.floor_activation_scales(fixed)
    assert none == [] and again == fixed


def test_export_report_names_the_widened_ranges():
    result = {"format": "tflite_int8", "path": "s.tflite", "bytes": 10, "input": "uint8",
              "output": "float32", "eval_images": 4, "agreement": 1.0, "int8_accuracy": 0.5,
              "float_accuracy": 0.5, "calibration_images": 8}
    assert "minimal" not in export_cli.report(dict(result, widened_ranges=[]))
    line = export_cli.report(dict(result, widened_ranges=["relu_3", "relu_4"])).splitlines()[-1]
    assert line.startswith("2 int8 activations had an empty calibrated range (e.g. 'relu_3'")


def test_cnn_run_exports_with_conv_layers(tmp_path, test_split):
    import tensorflow as tf

    # 60 steps: with fewer, BN's moving statistics are still near their
    # initial values and the logits reach hundreds (probabilities one-hot).
    run = _train(tmp_path / "cnn", method="cnn", epochs=1, steps_per_epoch=60)
    info = export.read_run(run)
    assert (info.network, info.model, info.num_classes) == ("cnn", "resnet20", 10)
    with pytest.raises(ValueError, match=r"says method=ann \(an adder student\) but \S+ has no "
                                         r"Adder2D layer$"):
        export.read_run(_copy_run(run, tmp_path / "as_ann", method="ann"))
    result = export.export_saved_model(run, tmp_path / "saved_model")
    served = tf.saved_model.load(result["path"]).signatures["serving_default"](
        images=tf.constant(test_split[0]))["probabilities"].numpy()
    mean, std = (np.array(v, np.float32) for v in data.normalization("digits", IMAGE_SIZE))
    student = keras.models.load_model(os.path.join(run, "student.keras"), compile=False)
    logits = student.predict((test_split[0] / np.float32(255) - mean) / std, verbose=0)
    error = _log_probability_error(served, _log_softmax(logits))
    print(f"cnn: max |log p - log_softmax(keras logits)|: {error:.3g}")
    assert error <= 1e-5


def test_report_names_the_adder_custom_op_and_its_parity():
    result = {"format": "tflite_adder", "path": "/x/m.tflite", "bytes": 99, "input": "uint8",
              "output": "float32", "formulation": "max_identity", "eval_images": 360,
              "max_abs_diff": 4.4e-6, "agreement": 1.0}
    text = export_cli.report(result)
    assert "wrote tflite_adder (adder custom op, max_identity)" in text
    assert "max |probability difference| 4.40e-06, top-1 agreement 100.00%" in text
    result["formulation"] = "exact"
    assert "wrote tflite_adder (adder custom op) to" in export_cli.report(result)


def test_tflite_adder_that_disagrees_with_the_student_is_not_written(run_dir, tmp_path,
                                                                     monkeypatch):
    real = litert.probabilities
    monkeypatch.setattr(litert, "probabilities", lambda *a, **k: real(*a, **k)[:, ::-1])
    out = tmp_path / "wrong.tflite"
    with pytest.raises(RuntimeError, match="differ from the student's by up to .* not written"):
        export.export_tflite_adder(run_dir, out, eval_images=20)
    assert not out.exists()


def test_report_sentences():
    result = {"format": "tflite_int8", "path": "/x/m.tflite", "bytes": 1234,
              "input": "uint8 [N, 8, 8, 3]", "output": "float32 [N, 10]",
              "calibration_images": 200, "eval_images": 360, "agreement": 355 / 360,
              "int8_accuracy": 0.9, "float_accuracy": 0.91}
    text = export_cli.report(result)
    assert "1,234 bytes" in text and "98.61% (355/360 test images)" in text


# ----------------------------------------------------------------------------
# Export checks what it loads and writes whole files (issue 20)


def _copy_run(run_dir, target, **flag_edits):
    """A copy of a run (no logs, no weight files) with `flag_edits` made in its summary.json."""
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("logs", "*.weights.h5"))
    if flag_edits:
        path = os.path.join(target, "summary.json")
        with open(path) as f:
            summary = json.load(f)
        summary["flags"].update(flag_edits)
        with open(path, "w") as f:
            json.dump(summary, f)
    return str(target)


def _keep_half(path):
    with open(path, "rb") as f:
        whole = f.read()
    with open(path, "wb") as f:
        f.write(whole[:len(whole) // 2])


@pytest.fixture(scope="module")
def edited_runs(run_dir, tmp_path_factory):
    """Copies of the shared run: three whose summary.json no longer describes their
    student.keras, and three with a damaged file."""
    base = tmp_path_factory.mktemp("edited")
    runs = {"method": _copy_run(run_dir, base / "method", method="cnn"),
            "model": _copy_run(run_dir, base / "model", model="resnet32"),
            "image_size": _copy_run(run_dir, base / "image_size", image_size=16)}
    runs["summary_torn"] = _copy_run(run_dir, base / "summary_torn")
    _keep_half(os.path.join(runs["summary_torn"], "summary.json"))
    runs["summary_garbage"] = _copy_run(run_dir, base / "summary_garbage")
    with open(os.path.join(runs["summary_garbage"], "summary.json"), "wb") as f:
        f.write(b"\x8b\x00garbage\xff")
    runs["student_torn"] = _copy_run(run_dir, base / "student_torn")
    _keep_half(os.path.join(runs["student_torn"], "student.keras"))
    return runs


@pytest.mark.parametrize("name,message", [
    ("method", "{summary} says method=cnn (a conv student) but {student} has 20 Adder2D layers"),
    ("model", "{summary} says model=resnet32 but {student} is not a resnet32: its layer "
              "'stage2_block1_conv1' is Adder2D [(3, 3, 16, 32)], where Adder2D "
              "[(3, 3, 16, 16)] is due"),
    ("image_size", "{summary} says image_size=16 (16×16×3 images) but {student} takes 8×8×3 "
                   "images"),
    ("summary_torn", "the run's summary {summary} is not valid JSON"),
    ("summary_garbage", "the run's summary {summary} is not valid JSON"),
    ("student_torn", "{student} is not a whole Keras file"),
], ids=["method", "model", "image_size", "summary_torn", "summary_garbage", "student_torn"])
def test_run_that_does_not_hold_together_is_refused_in_one_line(edited_runs, name, message):
    run = edited_runs[name]
    with pytest.raises(ValueError) as error:
        export.read_run(run)
    assert str(error.value).startswith(message.format(
        summary=os.path.join(run, "summary.json"), student=os.path.join(run, "student.keras")))
    assert "\n" not in str(error.value)


def test_export_refuses_an_adder_student_whose_summary_says_cnn(edited_runs, tmp_path):
    # The case: this used to write a TFLite model that agreed with the
    # student on 0 of 8 images. (The command prints this error as its one line.)
    with pytest.raises(ValueError) as error:
        export.export(edited_runs["method"], "tflite", tmp_path / "student.tflite")
    assert re.fullmatch(r"\S+/summary\.json says method=cnn \(a conv student\) but "
                        r"\S+/student\.keras has 20 Adder2D layers", str(error.value))
    assert not os.listdir(tmp_path)


def test_qat_opens_the_run_as_export_does(edited_runs, tmp_path):
    from addernet_tf.export import qat

    for name in ("method", "summary_torn"):
        with pytest.raises(ValueError) as expected:
            export.read_run(edited_runs[name])
        with pytest.raises(ValueError) as error:
            qat.quantize_aware_train(edited_runs[name], tmp_path / "qat.tflite")
        assert str(error.value) == str(expected.value)
    assert not os.listdir(tmp_path)


def _unwritable_folder(tmp_path):
    """A folder in which this process cannot create a file: a read-only one, or,
    for root (whom permission bits don't stop), a read-only system folder."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (str(folder), "/sys", "/proc"):
        probe = os.path.join(candidate, ".addernet-write-probe")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        except OSError:
            return candidate
        os.remove(probe)
    pytest.skip("every folder is writable here (root, with /sys and /proc writable)")


@pytest.mark.parametrize("format_name,name", [("saved_model", "student"),
                                              ("tflite", "student.tflite")])
@pytest.mark.parametrize("where", ["read_only", "under_a_file"])
def test_out_that_cannot_be_written_is_refused_before_loading(run_dir, tmp_path, monkeypatch,
                                                              format_name, name, where):
    def load(model_dir):
        raise AssertionError("the run was loaded before `out` was checked")

    monkeypatch.setattr(export, "open_run", load, raising=False)
    if where == "read_only":
        parent, problem = _unwritable_folder(tmp_path), "is not writable"
    else:
        parent, problem = str(tmp_path / "notes.txt"), "is a file, not a folder"
        (tmp_path / "notes.txt").write_text("not a folder")
    out = os.path.join(parent, name)
    with pytest.raises(ValueError) as error:
        export.export(run_dir, format_name, out)
    assert str(error.value).startswith(f"`out` {out!r}: its directory {parent!r} {problem}")
    assert "\n" not in str(error.value)


def test_saved_model_export_replaces_what_a_killed_export_left(run_dir, tmp_path, monkeypatch):
    import tensorflow as tf

    out = tmp_path / "student"
    # What an export killed inside the save leaves: at `out`, a folder without
    # saved_model.pb (older versions wrote there directly) ...
    (out / "variables").mkdir(parents=True)
    (out / "variables" / "variables.index").write_bytes(b"\0" * 16)
    # ... and beside it, the temporary folder of this version's writer.
    (tmp_path / ".student.tmp-4242-0123abcd" / "variables").mkdir(parents=True)
    # Another export's .tflite being written beside it is not a leftover of this one.
    (tmp_path / ".student.tmp-4343-0123abcd.tflite").write_bytes(b"\0")
    renames = []
    monkeypatch.setattr(_atomic, "_hook", lambda stage, tmp, final: renames.append(
        (stage, os.path.dirname(tmp), final)))
    result = export.export_saved_model(run_dir, out)
    assert renames == [("written", str(tmp_path), str(out))]
    assert sorted(os.listdir(tmp_path)) == [".student.tmp-4343-0123abcd.tflite", "student"]
    serve = tf.saved_model.load(result["path"]).signatures["serving_default"]
    probabilities = serve(images=tf.zeros([2, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8))
    probabilities = probabilities["probabilities"].numpy()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
