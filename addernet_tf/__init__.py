# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""addernet_tf: Adder Neural Networks and PKKD distillation for TensorFlow / Keras 3.

Importing the package loads the compiled adder op (if built), registers its
gradients and registers the Keras layers, so SavedModels holding the op and
`.keras` files holding our layers load after `import addernet_tf`.
`models`, `opcount` and `adderize` (any Keras CNN as an adder network) load
on first use.
"""

import importlib

from addernet_tf._quiet import quiet_start

quiet_start()  # before the first TensorFlow import below

from addernet_tf import layers, ops  # noqa: E402

__all__ = ["ops", "layers", "models", "opcount", "adderize"]
__version__ = "0.1.0"

_LAZY = ("models", "opcount")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"addernet_tf.{name}")
    if name == "adderize":
        return importlib.import_module("addernet_tf.models.adderize").adderize
    raise AttributeError(f"module 'addernet_tf' has no attribute {name!r}")
