# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The tf_keras side of QAT: a script run by `addernet_tf.export.qat` (with `python -P`).

    python -P qat_child.py STUDENT.npz OUT.tflite EPOCHS STEPS LEARNING_RATE BATCH SEED

Never imports addernet_tf (Keras 3): it loads `addernet_tf/ops/geometry.py`
by path. Rebuilds the student described in STUDENT.npz(.json) as a tf_keras
model (the centered adder with a `QuantizeConfig`), checks its logits, sets
every fake-quant range from the float model, fine-tunes it with tfmot, writes
the int8 TFLite file and prints one JSON line of measurements.
"""

import importlib.util
import json
import os
import sys

import numpy as np

# Keras 3 layers the tf_keras rebuild drops (identities: the distillation taps).
_PASS_THROUGH = ("Tap",)


def _load_geometry():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "ops",
                        "geometry.py")
    spec = importlib.util.spec_from_file_location("addernet_geometry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(npz_path, out, epochs, steps_per_epoch, learning_rate, batch_size, seed):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
    import tf_keras  # pylint: disable=import-outside-toplevel

    geometry = _load_geometry()
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
            self.padding = padding if isinstance(padding, str) else tuple(int(p) for p in padding)
            self.center = np.zeros([filters], np.float32) if center is None else np.asarray(
                center, np.float32)

        def build(self, input_shape):
            self.kernel = self.add_weight(
                name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
                initializer="zeros", trainable=True)
            super().build(input_shape)

        def call(self, inputs):
            return geometry.centered_adder(inputs, self.kernel, self.center, self.kernel_size,
                                           self.strides, self.padding)

        def compute_output_shape(self, input_shape):
            return geometry.output_shape(input_shape, self.filters, self.kernel_size,
                                         self.strides, self.padding)

        def get_config(self):
            config = super().get_config()
            config.update(filters=self.filters, kernel_size=list(self.kernel_size),
                          strides=list(self.strides),
                          padding=self.padding if isinstance(self.padding, str)
                          else list(self.padding),
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


if __name__ == "__main__":
    _npz, _out, _epochs, _steps, _lr, _batch, _seed = sys.argv[1:8]
    main(_npz, _out, int(_epochs), int(_steps), float(_lr), int(_batch), int(_seed))
