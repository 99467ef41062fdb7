# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Deprecated: QAT moved to `addernet_tf.export.qat`.

`python -m addernet_tf.qat` still runs it, with the same flags.
"""

from addernet_tf import cli
from addernet_tf.export.qat import define_flags, main, quantize_aware_train, rules

__all__ = ["quantize_aware_train"]

if __name__ == "__main__":
    cli.run("qat", define_flags, main, validate=rules)
