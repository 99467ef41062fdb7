# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Runs a .tflite model on uint8 images; a script, run by `litert.probabilities`.

    python -P litert_child.py MODEL IMAGES.npy OUT.npy CHUNK RUNNER

Only numpy and the LiteRT interpreter: it starts in a second, and an int8
model that aborts the interpreter (SIGABRT in allocate_tensors when a
calibrated range is empty) kills this process, not the caller. Before running
it names, on stderr, the int8 tensors whose range is zero. RUNNER "adder"
runs the model with addernet_tf.lite's Interpreter (loaded by path: numpy and
ctypes only) instead, for models with the adder custom op.
"""

import importlib.util
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def adder_interpreter(model_path):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lite",
                        "interpreter.py")
    spec = importlib.util.spec_from_file_location("adder_interpreter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Interpreter(model_path)


def main(model_path, images_path, out_path, chunk, runner):
    images = np.load(images_path)
    if runner == "adder":
        model = adder_interpreter(model_path)
        np.save(out_path, np.concatenate([model(images[start:start + chunk])
                                          for start in range(0, len(images), chunk)]))
        return
    interpreter = Interpreter(model_path=model_path)
    constant = [t["name"] for t in interpreter.get_tensor_details()
                if t["dtype"] == np.int8 and 0 <= t["quantization"][0] < 1e-6]
    print("constant tensors:", ", ".join(constant), file=sys.stderr, flush=True)
    index = interpreter.get_input_details()[0]["index"]
    results = []
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk]
        interpreter.resize_tensor_input(index, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.save(out_path, np.concatenate(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
