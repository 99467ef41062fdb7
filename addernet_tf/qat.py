"""Quantization-aware training (QAT) of a run's student with tfmot, to an int8 TFLite model.

    python -m addernet_tf.qat --model_dir=RUN --out=student_qat.tflite \
        [--epochs=2 --steps_per_epoch=50 --learning_rate=1e-4 --batch_size=32]

`model_dir` is a finished `trainers.pkkd` run (student.keras + summary.json),
as for `addernet_tf.export`. The int8 model has the same interface as
`export --format=tflite_int8`: uint8 RGB images `[N, H, W, 3]` (0..255, at
the run's image size) in, float32 probabilities `[N, K]` out; the run's
normalization `(pixels / 255 − mean) / std` is inside, in front of the
quantized network, and its few float ops are calibrated on train images.

tfmot works only on tf_keras models, and importing it switches the whole
process to legacy Keras (`TF_USE_LEGACY_KERAS=1`). So the work is split over
three processes, none of which mixes Keras 3 and tf_keras:

1. this one (Keras 3, addernet_tf): reads the run, rebuilds its student with
   the builtin-op adders (`export.open_run`, which checks it against the
   run's summary.json) and writes its layer graph,
   weights, the adder centers (see below) and the data (uint8 pixels) to an
   `.npz` in a temporary directory;
2. a child that runs this file as a plain script (never importing
   addernet_tf nor Keras 3): rebuilds the student as a tf_keras functional
   model with the same weights (a tf_keras adder layer made of builtin ops,
   with a `QuantizeConfig`; BN, ReLU, Conv2D, Dense, ... from tf_keras),
   wraps it with `tfmot.quantization.keras.quantize_apply`, fine-tunes it on
   the train split and converts it to int8 TFLite;
3. a child with only the LiteRT interpreter (`export._tflite_probabilities`)
   that runs the int8 model on the test split.

The adder layers are in `export._CenteredAdder`'s int8-friendly form,
`y = −Σ max(x − (w + t), (w − t) − x)` with `t` the following BN's moving
mean spread over the window (that BN's mean then 0), so the fake-quant range
of each adder output covers what varies between images rather than the
layer's large negative mean.

Before fine-tuning, every fake-quant range is set from the float student on
512 train images (tfmot starts them at [-6, 6] and moves them by a slow EMA,
which ruins adder outputs whose spread is tens), and the tf_keras rebuild is
checked against student.keras' logits. Fine-tuning trains the adder weights
with the gradient of that form (TensorFlow's own derivative of max/sum,
not AdderNet's surrogate), BN and the rest as usual, with Adam at
`learning_rate`; tfmot's moving-average quantizers keep adjusting the ranges.
Conversion uses the learned ranges and calibrates only the float input
normalization (`calibration_images` train images).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

__all__ = ["quantize_aware_train"]

_EXPORT_CHUNK = 50
# Keras 3 layers the tf_keras rebuild drops (identities: the distillation taps).
_PASS_THROUGH = ("Tap",)


# ----------------------------------------------------------------------------
# Step 1 (Keras 3 process): the student as plain arrays


def _history_names(node):
    """Layer names that a Keras 3 functional config's inbound node reads, in order."""
    names = []
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            names.append(node["config"]["keras_history"][0])
        else:
            for value in node.values():
                names.extend(_history_names(value))
    elif isinstance(node, (list, tuple)):
        for value in node:
            names.extend(_history_names(value))
    return names


def _layer_names(entries):
    """["a", 0, 0] or [["a", 0, 0], ...] (a functional config's inputs/outputs) -> names."""
    if entries and isinstance(entries[0], str):
        entries = [entries]
    return [entry[0] for entry in entries]


def _describe_student(run, data_dir, calibration_images, path):
    """Writes the rebuilt student (graph, weights, centers) of an `export.Run` and
    the data to `path` (.npz)."""
    from addernet_tf import _atomic, export
    from addernet_tf.layers import Adder2D

    model, info = run.reference, run.info
    config = model.get_config()
    centers = {name: -bn.moving_mean.numpy().astype(np.float32)
               for name, bn in export._batch_norm_after(model).items()}  # pylint: disable=protected-access
    zeroed = {bn.name for bn in export._batch_norm_after(model).values()}  # pylint: disable=protected-access
    layers, arrays = [], {}
    by_name = {layer.name: layer for layer in model.layers}
    for entry in config["layers"]:
        layer = by_name[entry["name"]]
        kind = type(layer).__name__
        spec = {"name": layer.name, "class": kind,
                "inbound": _history_names(entry.get("inbound_nodes", []))}
        if isinstance(layer, Adder2D):
            if layer.data_format != "channels_last":
                raise ValueError(f"QAT supports channels_last adder layers, got {layer.name!r}")
            spec.update(filters=layer.filters, kernel_size=list(layer.kernel_size),
                        strides=list(layer.strides),
                        padding=layer.padding if isinstance(layer.padding, str)
                        else [list(p) if isinstance(p, (tuple, list)) else int(p)
                              for p in layer.padding])
            arrays[f"center/{layer.name}"] = centers.get(
                layer.name, np.zeros([layer.filters], np.float32))
        elif kind == "InputLayer":
            spec["shape"] = list(layer.output.shape[1:])
        else:
            layer_config = layer.get_config()
            for key in ("filters", "kernel_size", "strides", "padding", "use_bias", "units",
                        "axis", "momentum", "epsilon", "center", "scale", "max_value",
                        "negative_slope", "threshold", "pool_size", "data_format"):
                if key in layer_config:
                    value = layer_config[key]
                    spec[key] = list(value) if isinstance(value, tuple) else value
        weights = layer.get_weights()
        if layer.name in zeroed:  # BN after a centered adder: its mean moved into the adder.
            names = [w.path.split("/")[-1] for w in layer.weights]
            weights[names.index("moving_mean")] = np.zeros_like(weights[names.index("moving_mean")])
        spec["weights"] = len(weights)
        for i, value in enumerate(weights):
            arrays[f"weight/{layer.name}/{i}"] = np.asarray(value, np.float32)
        layers.append(spec)

    mean, std = export.run_normalization(info)
    train_images, train_labels = export._uint8_images(  # pylint: disable=protected-access
        info, "train", 10 ** 9, data_dir)
    # The rebuilt student's logits on a few train images: the tf_keras twin must match them.
    probe = train_images[:64]
    reference_logits = model.predict(export._normalize(probe, info),  # pylint: disable=protected-access
                                     batch_size=_EXPORT_CHUNK, verbose=0)
    arrays.update(train_images=train_images, train_labels=train_labels,
                  calibration=train_images[:calibration_images],
                  reference_logits=np.asarray(reference_logits, np.float32))
    np.savez(path, **arrays)
    meta = {"layers": layers, "outputs": _layer_names(config["output_layers"]),
            "inputs": _layer_names(config["input_layers"]),
            "mean": list(map(float, mean)), "std": list(map(float, std)),
            "image_size": info.image_size, "num_classes": info.num_classes}
    _atomic.write_json(path + ".json", meta)


# ----------------------------------------------------------------------------
# Step 2 (tf_keras + tfmot process, this file run as a script)


def _qat_child(npz_path, out, epochs, steps_per_epoch, learning_rate, batch_size, seed):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    import tf_keras
    import tensorflow_model_optimization as tfmot

    tf_keras.utils.set_random_seed(seed)
    quantize = tfmot.quantization.keras
    with open(npz_path + ".json") as f:
        meta = json.load(f)
    arrays = np.load(npz_path)

    class QatAdder(tf_keras.layers.Layer):
        """Adder layer in the centered max form, builtin ops only (tf_keras)."""

        def __init__(self, filters, kernel_size, strides, padding, center=None, **kwargs):
            super().__init__(**kwargs)
            self.filters = int(filters)
            self.kernel_size = tuple(kernel_size)
            self.strides = tuple(strides)
            self.padding = padding if isinstance(padding, str) else [
                tuple(p) if isinstance(p, (list, tuple)) else (p, p) for p in padding]
            self.center = np.zeros([filters], np.float32) if center is None else np.asarray(
                center, np.float32)

        def build(self, input_shape):
            self.kernel = self.add_weight(
                name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
                initializer="zeros", trainable=True)
            super().build(input_shape)

        def _pads(self, height, width):
            if self.padding == "valid":
                return (0, 0), (0, 0)
            if self.padding == "same":
                pads = []
                for size, k, s in zip((height, width), self.kernel_size, self.strides):
                    total = max((-(-size // s) - 1) * s + k - size, 0)
                    pads.append((total // 2, total - total // 2))
                return tuple(pads)
            return tuple(self.padding)

        def call(self, inputs):
            height, width = int(inputs.shape[1]), int(inputs.shape[2])
            (top, bottom), (left, right) = self._pads(height, width)
            x = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            out_h = (height + top + bottom - kh) // sh + 1
            out_w = (width + left + right - kw) // sw + 1
            share = tf.constant(self.center / (kh * kw * int(inputs.shape[-1])), tf.float32)
            upper, lower = self.kernel + share, self.kernel - share
            acc = None
            for i in range(kh):
                for j in range(kw):
                    patch = x[:, i:i + (out_h - 1) * sh + 1:sh,
                              j:j + (out_w - 1) * sw + 1:sw, :, None]
                    term = tf.reduce_sum(tf.maximum(patch - upper[i, j], lower[i, j] - patch),
                                         axis=3)
                    acc = term if acc is None else acc + term
            return acc * -1.0  # NEG has no int8 kernel; MUL does.

        def compute_output_shape(self, input_shape):
            n, height, width, _ = input_shape
            (top, bottom), (left, right) = self._pads(height, width)
            return (n, (height + top + bottom - self.kernel_size[0]) // self.strides[0] + 1,
                    (width + left + right - self.kernel_size[1]) // self.strides[1] + 1,
                    self.filters)

        def get_config(self):
            config = super().get_config()
            config.update(filters=self.filters, kernel_size=list(self.kernel_size),
                          strides=list(self.strides),
                          padding=self.padding if isinstance(self.padding, str)
                          else [list(p) for p in self.padding],
                          center=self.center.tolist())
            return config

    class OutputQuantizeConfig(quantize.QuantizeConfig):
        """Float weights folded by the converter; int8 output (a BN not after a Conv2D)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantize.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    class AdderQuantizeConfig(OutputQuantizeConfig):
        """int8 kernel (per tensor, symmetric) and int8 output (moving-average range)."""

        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, quantize.quantizers.LastValueQuantizer(
                num_bits=8, symmetric=True, narrow_range=False, per_axis=False))]

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

    kinds = {spec["name"]: spec["class"] for spec in meta["layers"]}
    layers_by_name, tensors = {}, {}
    annotate = quantize.quantize_annotate_layer
    for spec in meta["layers"]:
        kind, name = spec["class"], spec["name"]
        inbound = [tensors[n] for n in spec["inbound"]]
        if kind == "InputLayer":
            tensors[name] = tf_keras.Input(shape=spec["shape"], name=name)
            continue
        if kind in _PASS_THROUGH:
            tensors[name] = inbound[0]
            continue
        if kind == "Adder2D":
            layer = annotate(QatAdder(spec["filters"], spec["kernel_size"], spec["strides"],
                                      spec["padding"], arrays[f"center/{name}"], name=name),
                             AdderQuantizeConfig())
        elif kind == "Conv2D":
            layer = tf_keras.layers.Conv2D(spec["filters"], spec["kernel_size"],
                                           strides=spec["strides"], padding=spec["padding"],
                                           use_bias=spec["use_bias"], name=name)
        elif kind == "ZeroPadding2D":
            layer = tf_keras.layers.ZeroPadding2D(spec["padding"], name=name)
        elif kind == "BatchNormalization":
            layer = tf_keras.layers.BatchNormalization(
                axis=spec["axis"], momentum=spec["momentum"], epsilon=spec["epsilon"],
                center=spec["center"], scale=spec["scale"], name=name)
            if kinds[spec["inbound"][0]] != "Conv2D":  # tfmot folds only Conv2D + BN
                layer = annotate(layer, OutputQuantizeConfig())
        elif kind == "ReLU":
            layer = tf_keras.layers.ReLU(max_value=spec.get("max_value"),
                                         negative_slope=spec.get("negative_slope", 0.0),
                                         threshold=spec.get("threshold", 0.0), name=name)
        elif kind == "Add":
            layer = tf_keras.layers.Add(name=name)
        elif kind == "GlobalAveragePooling2D":
            layer = tf_keras.layers.GlobalAveragePooling2D(name=name)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            layer = getattr(tf_keras.layers, kind)(spec["pool_size"], strides=spec["strides"],
                                                   padding=spec["padding"], name=name)
        elif kind == "Flatten":
            layer = tf_keras.layers.Flatten(name=name)
        elif kind == "Dense":
            layer = tf_keras.layers.Dense(spec["units"], use_bias=spec["use_bias"], name=name)
        else:
            raise ValueError(f"QAT cannot rebuild layer {name!r} of type {kind}")
        tensors[name] = layer(inbound if kind == "Add" else inbound[0])
        layers_by_name[name] = layer
    model = tf_keras.Model([tensors[n] for n in meta["inputs"]],
                           [tensors[n] for n in meta["outputs"]])
    for name, layer in layers_by_name.items():
        target = getattr(layer, "layer", layer)  # an annotated layer wraps the real one
        spec = next(s for s in meta["layers"] if s["name"] == name)
        weights = [arrays[f"weight/{name}/{i}"] for i in range(spec["weights"])]
        if weights:
            target.set_weights(weights)

    mean = np.array(meta["mean"], np.float32)
    std = np.array(meta["std"], np.float32)

    def normalize(pixels):
        return (pixels.astype(np.float32) / 255.0 - mean) / std

    train_x = normalize(arrays["train_images"])
    train_y = arrays["train_labels"].astype(np.int32)
    reference = arrays["reference_logits"]
    error = float(np.max(np.abs(model.predict(train_x[:len(reference)], verbose=0) - reference)))
    if not error <= 1e-3 * max(float(np.max(np.abs(reference))), 1.0):
        raise ValueError(f"the tf_keras rebuild of the student differs from student.keras by "
                         f"{error:.3g} on the logits")
    float_logits = model.predict(train_x[:256], verbose=0)
    float_train_accuracy = float(np.mean(float_logits.argmax(-1) == train_y[:256]))

    with quantize.quantize_scope({"QatAdder": QatAdder,
                                  "AdderQuantizeConfig": AdderQuantizeConfig,
                                  "OutputQuantizeConfig": OutputQuantizeConfig}):
        qat_model = quantize.quantize_apply(quantize.quantize_annotate_model(model))
    qat_model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    _initialize_ranges(tf_keras, qat_model, model, layers_by_name, train_x[:512])
    before = qat_model.predict(train_x[:256], verbose=0)
    qat_train_accuracy_before = float(np.mean(before.argmax(-1) == train_y[:256]))
    dataset = (tf.data.Dataset.from_tensor_slices((train_x, train_y))
               .shuffle(len(train_y), seed=seed).repeat().batch(batch_size))
    history = qat_model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0)

    scale = tf.constant(1.0 / (255.0 * std), tf.float32)
    shift = tf.constant(-mean / std, tf.float32)
    size = meta["image_size"]

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8,
                                                name="images")])
    def serve(images):
        logits = qat_model(tf.cast(images, tf.float32) * scale + shift, training=False)
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    calibration = arrays["calibration"]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    flatbuffer = converter.convert()
    with open(out, "wb") as f:
        f.write(flatbuffer)
    print(json.dumps({"float_train_accuracy_rebuilt": float_train_accuracy,
                      "rebuild_max_logit_error": error,
                      "qat_train_accuracy_before": qat_train_accuracy_before,
                      "qat_train_loss": [float(v) for v in history.history["loss"]],
                      "qat_train_accuracy": [float(v) for v in history.history["accuracy"]],
                      "bytes": len(flatbuffer)}))


def _initialize_ranges(tf_keras, qat_model, float_model, layers_by_name, images):
    """Sets every fake-quant range of `qat_model` from the float model on `images`.

    tfmot starts each range at [-6, 6] and moves it by an EMA (decay 0.999),
    far too slowly for adder outputs, whose spread is tens; the kernels'
    ranges are only set in a training step. So before fine-tuning: the input
    range from `images`, each output range from the float layer's outputs
    (widened to include 0), each kernel range ±max|w| (per channel where the
    variable is).
    """
    wrappers = {layer.layer.name: layer for layer in qat_model.layers if hasattr(layer, "layer")}
    outputs = [name for name, wrapper in wrappers.items()
               if any(v.name.endswith(("/output_min:0", "activation_min:0"))
                      for v in wrapper.non_trainable_weights)]
    probe = tf_keras.Model(float_model.inputs,
                           [layers_by_name[name].output for name in outputs])
    values = probe.predict(images, batch_size=64, verbose=0)
    values = values if isinstance(values, list) else [values]
    observed = {name: (min(float(v.min()), 0.0), max(float(v.max()), 0.0))
                for name, v in zip(outputs, values)}
    for layer in qat_model.layers:
        for variable in layer.non_trainable_weights:
            short = variable.name.split("/")[-1].split(":")[0]
            if short in ("quantize_layer_min", "quantize_layer_max"):
                variable.assign(float(images.min()) if short.endswith("min")
                                else float(images.max()))
            elif short in ("output_min", "output_max") or short.endswith(
                    ("activation_min", "activation_max")):  # Dense's linear "activation"
                low, high = observed[layer.layer.name]
                variable.assign(low if short.endswith("_min") else high)
            elif short in ("kernel_min", "kernel_max"):
                kernel = np.abs(next(w for w in layer.trainable_weights
                                    if w.name.endswith("kernel:0")).numpy())
                bound = kernel.max() if variable.shape.rank == 0 else kernel.reshape(
                    -1, kernel.shape[-1]).max(0)
                variable.assign(-bound if short == "kernel_min" else bound)


# ----------------------------------------------------------------------------
# The whole path


def quantize_aware_train(model_dir, out, epochs=2, steps_per_epoch=50, learning_rate=1e-4,
                         batch_size=32, calibration_images=200, eval_images=1000,
                         data_dir=None, seed=0):
    """Fine-tunes a run's student with QAT (tfmot, tf_keras) and writes an int8 TFLite model.

    Args:
      model_dir: a finished `trainers.pkkd` run (opened and checked by
        `export.open_run`).
      out: the .tflite file (its directory must exist and be writable);
        written whole or not at all.
      epochs, steps_per_epoch, batch_size: the QAT fine-tuning (positive ints).
      learning_rate: Adam's learning rate (positive).
      calibration_images: train images that calibrate the float input
        normalization in front of the quantized network.
      eval_images: test images on which int8 and float are compared.
      data_dir: the tfds data directory, if not the run's own.
      seed: shuffling and initialization seed.

    Returns:
      dict: "format" ("tflite_int8_qat"), "path", "bytes", "input", "output",
      "eval_images", "float_accuracy" (the float student, Keras 3),
      "qat_int8_accuracy", "agreement" (top-1 with the float student),
      "epochs", "steps_per_epoch", "learning_rate", "qat_train_loss" and
      "qat_train_accuracy" (per epoch), "qat_train_accuracy_before" (the
      fake-quantized model on 256 train images before fine-tuning),
      "rebuild_max_logit_error" (tf_keras rebuild vs student.keras).

    Raises:
      ValueError: a bad argument or run.
      RuntimeError: the QAT child or the int8 interpreter fails.
    """
    from addernet_tf import _atomic, export

    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                        ("batch_size", batch_size), ("calibration_images", calibration_images),
                        ("eval_images", eval_images)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}")
    out = export._check_out(out, "tflite_int8")  # pylint: disable=protected-access
    run = export.open_run(model_dir)
    student, info = run.student, run.info
    data_dir = info.data_dir if data_dir is None else data_dir
    with tempfile.TemporaryDirectory(prefix="addernet_qat_") as workdir:
        npz = os.path.join(workdir, "student.npz")
        _describe_student(run, data_dir, calibration_images, npz)
        candidate = os.path.join(workdir, "qat.tflite")
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--_child", npz, candidate, str(epochs),
             str(steps_per_epoch), repr(float(learning_rate)), str(batch_size), str(seed)],
            capture_output=True, text=True, env=env, cwd=workdir)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the QAT process failed ({last})")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        images, labels = export._uint8_images(  # pylint: disable=protected-access
            info, "test", eval_images, data_dir)
        quantized = export._tflite_probabilities(  # pylint: disable=protected-access
            candidate, images, workdir).argmax(-1)
        reference = student.predict(export._normalize(images, info),  # pylint: disable=protected-access
                                    batch_size=_EXPORT_CHUNK, verbose=0).argmax(-1)
        with open(candidate, "rb") as f:
            flatbuffer = f.read()
    _atomic.write_bytes(out, flatbuffer)
    return {"format": "tflite_int8_qat", "path": out, "bytes": len(flatbuffer),
            **export._interface(info),  # pylint: disable=protected-access
            "eval_images": len(images), "float_accuracy": float(np.mean(reference == labels)),
            "qat_int8_accuracy": float(np.mean(quantized == labels)),
            "agreement": float(np.mean(quantized == reference)),
            "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "learning_rate": float(learning_rate), "qat_train_loss": child["qat_train_loss"],
            "qat_train_accuracy": child["qat_train_accuracy"],
            "qat_train_accuracy_before": child["qat_train_accuracy_before"],
            "rebuild_max_logit_error": child["rebuild_max_logit_error"]}


# ----------------------------------------------------------------------------
# Command line


def _main(argv):
    from absl import flags, logging

    logging.set_verbosity(logging.WARNING)
    values = flags.FLAGS
    if len(argv) > 1:
        sys.exit(f"qat: unexpected arguments {argv[1:]}")
    if not values.model_dir:
        sys.exit("qat: --model_dir must name a finished training run")
    if not values.out:
        sys.exit("qat: --out must be given")
    try:
        result = quantize_aware_train(
            values.model_dir, values.out, epochs=values.epochs,
            steps_per_epoch=values.steps_per_epoch, learning_rate=values.learning_rate,
            batch_size=values.batch_size, calibration_images=values.calibration_images,
            eval_images=values.eval_images, data_dir=values.data_dir)
    except (ValueError, RuntimeError, OSError) as e:
        sys.exit(f"qat: {(str(e).splitlines() or [type(e).__name__])[0]}")
    if values.json:
        print(json.dumps(result, sort_keys=True))
    else:
        n = result["eval_images"]
        print(f"wrote QAT int8 TFLite to {result['path']}, {result['bytes']:,} bytes: "
              f"{result['input']} images (0..255) in, {result['output']} probabilities out\n"
              f"accuracy on {n} test images: QAT int8 {result['qat_int8_accuracy']:.2%}, "
              f"float student {result['float_accuracy']:.2%}; top-1 agreement "
              f"{result['agreement']:.2%}")


def _run():
    from absl import app, flags

    flags.DEFINE_string("model_dir", None, "A finished trainers.pkkd run.")
    flags.DEFINE_string("out", None, "The int8 .tflite file to write.")
    flags.DEFINE_integer("epochs", 2, "QAT fine-tuning epochs.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", 50, "Batches per QAT epoch.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate for QAT.", lower_bound=0.0)
    flags.DEFINE_integer("batch_size", 32, "QAT batch size.", lower_bound=1)
    flags.DEFINE_integer("calibration_images", 200, "Train images calibrating the input "
                         "normalization.", lower_bound=1)
    flags.DEFINE_integer("eval_images", 1000, "Test images to evaluate on.", lower_bound=1)
    flags.DEFINE_string("data_dir", None, "The tfds data directory, if not the run's own.")
    flags.DEFINE_boolean("json", False, "Print the result as one JSON line.")
    app.run(_main)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        # Run as a plain script: addernet_tf (Keras 3) is never imported here.
        sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(
            os.path.abspath(__file__))]
        _npz, _out, _epochs, _steps, _lr, _batch, _seed = sys.argv[2:9]
        _qat_child(_npz, _out, int(_epochs), int(_steps), float(_lr), int(_batch), int(_seed))
    else:
        _run()
