# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Model builders: each network as a CNN teacher (`network="cnn"`) or an ANN student (`"ann"`).

Every builder returns a functional `keras.Model` from `[N, H, W, C]` images
(channels last) to `[N, num_classes]` logits, with `Tap` layers marking the
features PKKD distills (`tap_layers`, `with_taps`). The CNN and the ANN of a
network share one builder, so they have the same layers, parameter counts and
taps; only each non-stem convolution is `Conv2D` in one and `Adder2D` in the other.
"""

from addernet_tf._validate import NETWORKS
from addernet_tf.models.adderize import adderize, adderize_plan, tap_like
from addernet_tf.models.external import external_model, external_problem, is_external
from addernet_tf.models.resnet_cifar import resnet20, resnet32, resnet56, resnet_cifar
from addernet_tf.models.resnet_imagenet import resnet18, resnet50
from addernet_tf.models.taps import tap_layers, with_taps
from addernet_tf.models.vgg_small import vgg_small

__all__ = [
    "resnet20", "resnet32", "resnet56", "resnet_cifar", "vgg_small", "resnet18", "resnet50",
    "MODELS", "get_model", "tap_layers", "with_taps", "NETWORKS", "adderize", "adderize_plan",
    "tap_like", "model_name_problem", "is_external",
]

MODELS = {
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "vgg_small": vgg_small,
    "resnet18": resnet18,
    "resnet50": resnet50,
}


def model_name_problem(name):
    """Why `get_model` cannot build `name` (one line, without the name), or None."""
    if is_external(name):
        return external_problem(name)
    if not isinstance(name, str) or name not in MODELS:
        return f"must be one of {', '.join(MODELS)}, 'keras:<application>' or 'module:function'"
    return None


def get_model(name, /, **kwargs):
    """Builds the model registered in `MODELS` under `name`, or an external one.

    Args:
      name: a key of `MODELS`, or `"keras:<application>"` / `"module:function"`
        (a CNN built and `adderize`d: `external_model`). Positional; `name=`
        in kwargs names the model.
      **kwargs: the builder's arguments (`num_classes`, `network`, `input_shape`, ...).

    Returns:
      The builder's `keras.Model`.
    """
    problem = model_name_problem(name)
    if problem:
        raise ValueError(f"`name` {name!r}: {problem}")
    if is_external(name):
        return external_model(name, **kwargs)
    return MODELS[name](**kwargs)
