# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`python -m addernet_tf.export`: one run's student to one format (`addernet_tf.export`)."""

import json

from absl import flags, logging

from addernet_tf import cli
from addernet_tf._validate import FORMULATIONS
from addernet_tf.export.formats import FORMATS, OPS, export


def define_flags():
    flags.DEFINE_string("model_dir", None, "A finished trainers.pkkd run (student.keras, "
                        "summary.json).")
    flags.DEFINE_enum("format", "saved_model", FORMATS, "The export format.")
    flags.DEFINE_enum("op", "builtin", OPS, "saved_model: builtin (portable: TensorFlow's own "
                      "ops) or compiled (the Addernet>AdderConv2D kernel; the server must "
                      "load addernet_tf's op library).")
    flags.DEFINE_enum("formulation", "exact", FORMULATIONS, "--op=compiled or "
                      "--format=tflite_adder: exact, or "
                      "max_identity (the adder sums as 2 sum max(x, w) - sum x - sum w: faster "
                      "on CPUs, rounded differently).")
    flags.DEFINE_string("out", None, "Where to write: a directory for saved_model, a .tflite "
                        "file otherwise (its parent directory must exist).")
    flags.DEFINE_integer("calibration_images", 200, "tflite_int8, tflite_adder_int8: train "
                         "images to calibrate on.", lower_bound=1)
    flags.DEFINE_integer("eval_images", 1000, "tflite_int8, tflite_adder, tflite_adder_int8: "
                         "test images on which the file and the float student are compared.",
                         lower_bound=1)
    flags.DEFINE_string("data_dir", None, "tflite_int8, tflite_adder, tflite_adder_int8: the "
                        "tfds data directory, if not the run's own.")
    flags.DEFINE_boolean("json", False, "Print the result as one JSON line (the dict `export` "
                         "returns) instead of sentences.")


# The flags every export (and the QAT export) needs: the first one missing, as one line.
required_flags = cli.required(("model_dir", "must name a finished training run"),
                              ("out", "must be given"))


def rules(values):
    """The first broken rule across the flags, as one line, or None."""
    if values.op != "builtin" and values.format != "saved_model":
        return f"--op={values.op}: only applies to --format=saved_model"
    if values.formulation != "exact" and values.op != "compiled" \
            and values.format != "tflite_adder":
        return (f"--formulation={values.formulation}: only applies to --op=compiled or "
                "--format=tflite_adder")
    return required_flags(values)


def report(result):
    """`export`'s result in sentences."""
    size = f", {result['bytes']:,} bytes" if "bytes" in result else ""
    kind = ("adder custom op" if result["format"].startswith("tflite_adder")
            else "compiled adder op")
    ops = (f" ({kind})" if result.get("op") == "compiled"
           or result["format"].startswith("tflite_adder") else "")
    if result.get("formulation", "exact") != "exact":
        ops = f" ({kind}, {result['formulation']})"
    lines = [f"wrote {result['format']}{ops} to {result['path']}{size}: {result['input']} "
             f"images (0..255) in, {result['output']} probabilities out"]
    if "max_abs_diff" in result:
        n = result["eval_images"]
        lines.append(f"LiteRT (addernet_tf.lite.Interpreter) vs the float student on {n} test "
                     f"images: max |probability difference| {result['max_abs_diff']:.2e}, "
                     f"top-1 agreement {result['agreement']:.2%}")
    elif "agreement" in result:
        n = result["eval_images"]
        lines.append(
            f"int8 top-1 agreement with the float student: {result['agreement']:.2%} "
            f"({round(result['agreement'] * n)}/{n} test images); accuracy int8 "
            f"{result['int8_accuracy']:.2%}, float {result['float_accuracy']:.2%}; "
            f"calibrated on {result['calibration_images']} train images")
    if result.get("widened_ranges"):
        names = result["widened_ranges"]
        lines.append(f"{len(names)} int8 activations had an empty calibrated range (e.g. "
                     f"{names[0]!r}: a ReLU that never fired, or a barely trained layer) and "
                     "got the minimal one; train longer or calibrate on more images if the "
                     "agreement is low")
    return "\n".join(lines)


def main(values):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines while saving
    kwargs = ({"op": values.op, "formulation": values.formulation}
              if values.format == "saved_model" else {})
    if values.format in ("tflite_int8", "tflite_adder_int8"):
        kwargs = dict(calibration_images=values.calibration_images,
                      eval_images=values.eval_images, data_dir=values.data_dir)
    if values.format == "tflite_adder":
        kwargs = dict(formulation=values.formulation, eval_images=values.eval_images,
                      data_dir=values.data_dir)
    result = export(values.model_dir, values.format, values.out, **kwargs)
    print(json.dumps(result, sort_keys=True) if values.json else report(result))


if __name__ == "__main__":
    cli.run("export", define_flags, main, validate=rules)
