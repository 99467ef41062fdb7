# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The two adder conv2d backends under test, by name.

"custom" is the compiled op. When its library cannot be loaded, tests that ask
for it FAIL, unless ADDERNET_TF_BACKEND=reference says this installation is
meant to run without it (then they are skipped).
"""

import os

import pytest

BACKENDS = ["custom", "reference"]


def custom_op():
    """`adder_conv2d_custom`, or fail/skip the calling test if it can't run."""
    if os.environ.get("ADDERNET_TF_BACKEND", "").lower() == "reference":
        pytest.skip("ADDERNET_TF_BACKEND=reference: the compiled adder op is not expected")
    # Imported lazily so the reference tests run while the custom op is missing.
    from addernet_tf import ops  # pylint: disable=import-outside-toplevel
    backend = ops.active_backend()
    if backend != "custom":
        pytest.fail(f"the compiled adder op library is not loadable (active backend: {backend!r}); "
                    "set ADDERNET_TF_BACKEND=reference to skip the custom-op tests")
    from addernet_tf.ops.adder_conv import adder_conv2d_custom  # pylint: disable=import-outside-toplevel
    return adder_conv2d_custom


def reference_op():
    from addernet_tf.ops.adder_conv_ref import adder_conv2d_reference  # pylint: disable=import-outside-toplevel
    return adder_conv2d_reference


def get(name):
    return custom_op() if name == "custom" else reference_op()
