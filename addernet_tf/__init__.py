"""addernet_tf: Adder Neural Networks and PKKD distillation for TensorFlow / Keras 3.

Importing the package loads the compiled adder op (if built) and registers its
gradients, so SavedModels holding the op re-load after `import addernet_tf`.
The Keras parts (`layers`, `models`, `opcount`) load on first use.
"""

import importlib

from addernet_tf import ops

__all__ = ["ops", "layers", "models", "opcount"]
__version__ = "0.1.0"

_LAZY = ("layers", "models", "opcount")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"addernet_tf.{name}")
    raise AttributeError(f"module 'addernet_tf' has no attribute {name!r}")
