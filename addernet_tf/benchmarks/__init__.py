# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Benchmarks that print ratios measured in one run (`python -m addernet_tf.benchmarks.<name>`)."""
