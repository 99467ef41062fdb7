# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The checkout's benchmarks: `python -m benchmarks.<name>` from the repository root.

`adder_conv_gpu` lives here: it builds the CUDA sources of custom_ops/ and needs
no TensorFlow, so it belongs to the checkout. The others are installed as
`addernet_tf.benchmarks` and reached here under their short names. Code imports
`addernet_tf.benchmarks`, never this alias. Nothing here imports TensorFlow.
"""

import os as _os

_ROOT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
__path__ = [_os.path.join(_ROOT, "benchmarks"), _os.path.join(_ROOT, "addernet_tf", "benchmarks")]
