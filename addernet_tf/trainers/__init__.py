# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Training: the PKKD trainer, its flags and losses, the tuner, studies and reports.

Commands: `python -m addernet_tf.trainers.<name>`, or `python -m trainers.<name>` in a checkout."""
