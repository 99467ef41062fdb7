"""Training entry points (`python -m trainers.<name>`): the PKKD trainer and tuner live here."""

import addernet_tf  # noqa: E402,F401  (TensorFlow imported without its start-up noise first)
