"""addernet_tf: Adder Neural Networks and PKKD distillation for TensorFlow / Keras 3.

Importing the package loads the compiled adder op (if built) and registers its
gradients, so SavedModels holding the op re-load after `import addernet_tf`.
"""

from addernet_tf import ops

__all__ = ["ops"]
__version__ = "0.1.0"
