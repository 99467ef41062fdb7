# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The checkout's command names: `python -m trainers.pkkd` runs `addernet_tf.trainers.pkkd`.

Only for commands typed in the repository root, as the README writes them. The
installed package is `addernet_tf.trainers` (`python -m addernet_tf.trainers.pkkd`
from anywhere); code imports that name, never this one, so that no module is
loaded twice under two names.
"""

import os as _os

import addernet_tf  # noqa: F401  (TensorFlow imported without its start-up noise first)

__path__ = [_os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))),
                          "addernet_tf", "trainers")]
