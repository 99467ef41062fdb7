# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Export the student of a finished training run: SavedModel, TFLite float, int8, adder op.

    python -m addernet_tf.export --model_dir=RUN --format=saved_model --out=export/student
    python -m addernet_tf.export --model_dir=RUN --format=tflite --out=student.tflite
    python -m addernet_tf.export --model_dir=RUN --format=tflite_int8 --out=student_int8.tflite
    python -m addernet_tf.export --model_dir=RUN --format=tflite_adder --out=student_adder.tflite
    python -m addernet_tf.export --model_dir=RUN --format=tflite_adder_int8 \
        --out=student_adder_int8.tflite

Every format has one interface: uint8 RGB images `[N, H, W, 3]` (0..255, at
the run's image size) in, float32 probabilities `[N, K]` out, the run's
normalization inside. The graphs use the builtin-op twin of the adder
convolution, so they run without addernet_tf, except `--op=compiled`
SavedModels and `tflite_adder` and `tflite_adder_int8` files (the
`Addernet>AdderConv2D` custom op, run by `addernet_tf.lite.Interpreter`).
docs/DESIGN.md ("Export") has the
choices behind them.

Modules: `run` (reading a finished run), `serving` (the serving graph),
`int8` (adder layers that quantize), `litert` (running a .tflite file in a
child process), `formats` (the export functions), `qat` (quantization-aware
training, through `qat_child`), `__main__` (the command line).
"""

from addernet_tf.export.formats import (FORMATS, export, export_saved_model, export_tflite,
                                        export_tflite_adder, export_tflite_adder_int8)
from addernet_tf.export.run import (Run, RunInfo, load_student, open_run, read_run, read_summary,
                                    run_normalization)

__all__ = [
    "FORMATS", "RunInfo", "Run", "open_run", "read_summary", "run_normalization", "read_run",
    "load_student", "export_saved_model", "export_tflite", "export_tflite_adder",
    "export_tflite_adder_int8", "export",
]
