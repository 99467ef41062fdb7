# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Training entry points (`python -m trainers.<name>`): the PKKD trainer and tuner live here."""

import addernet_tf  # noqa: E402,F401  (TensorFlow imported without its start-up noise first)
