# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`run_layer_test`: the checks every Keras layer of the package must pass.

In the spirit of Keras's own `testing.TestCase.run_layer_test`, written for
ours: a layer class, its constructor arguments and an input shape go in; each
check raises an AssertionError that names the layer and what broke.
"""

import json
import os
import tempfile

import keras
import numpy as np

__all__ = ["run_layer_test"]


def run_layer_test(layer_cls, init_kwargs, input_shape, expected_output_shape,
                   expected_trainable=None, expected_non_trainable=0, seed=0):
    """Builds, calls, serializes and reloads one layer; returns its output on the test input.

    Checks, in order:
      1. `get_config` holds every constructor argument given, is
         JSON-serializable, and `from_config` gives a layer with the same config
         and the same plain attributes (ints, floats, strings, tuples, None);
      2. eager call and `compute_output_shape` agree with
         `expected_output_shape` (batch dimension included);
      3. the weights after building: `expected_trainable` (if given) and
         `expected_non_trainable` variables;
      4. in a functional model the symbolic output has the same shape;
      5. the model saved as `.keras` and loaded back (by the registered name,
         no custom_objects) gives bit-identical outputs and the same config.

    Args:
      layer_cls: the layer class.
      init_kwargs: its constructor arguments (dict).
      input_shape: the test input's shape, batch first (tuple of ints).
      expected_output_shape: the output's shape, batch first.
      expected_trainable, expected_non_trainable: variable counts after building.
      seed: seed of the standard-normal test input.

    Returns:
      The eager output (numpy) of the original layer on the test input.
    """
    name = layer_cls.__name__
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    missing = sorted(set(init_kwargs) - set(config))
    assert not missing, f"{name}: get_config() lacks {missing}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config, f"{name}: from_config(get_config()) changed the config"
    for key in init_kwargs:
        value = getattr(layer, key, None)
        if value is None or isinstance(value, (bool, int, float, str, tuple)):
            assert getattr(clone, key, None) == value, (
                f"{name}: `{key}` is {value!r}, after from_config {getattr(clone, key, None)!r}")

    x = np.random.default_rng(seed).normal(size=input_shape).astype("float32")
    y = np.asarray(layer(x))
    assert y.shape == tuple(expected_output_shape), f"{name}: output {y.shape}"
    assert tuple(layer.compute_output_shape(input_shape)) == tuple(expected_output_shape), (
        f"{name}: compute_output_shape {layer.compute_output_shape(input_shape)}")
    if expected_trainable is not None:
        assert len(layer.trainable_weights) == expected_trainable, (
            f"{name}: {len(layer.trainable_weights)} trainable weights")
    assert len(layer.non_trainable_weights) == expected_non_trainable, (
        f"{name}: {len(layer.non_trainable_weights)} non-trainable weights")

    inputs = keras.Input(input_shape[1:], batch_size=input_shape[0])
    model = keras.Model(inputs, layer_cls.from_config(config)(inputs))
    assert tuple(model.output.shape) == tuple(expected_output_shape), (
        f"{name}: symbolic output {model.output.shape}")
    for source, target in zip(layer.weights, model.layers[-1].weights):
        target.assign(source)
    np.testing.assert_array_equal(model(x), y, err_msg=f"{name}: in a functional model")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x), y, err_msg=f"{name}: after save and load")
    assert type(loaded.layers[-1]) is layer_cls, f"{name}: loaded as {type(loaded.layers[-1])}"
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config(), (
        f"{name}: the config changed in save and load")
    return y
