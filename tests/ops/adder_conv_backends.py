# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The two adder conv2d backends under test, by name.

"compiled" is the op library's kernels, "builtin" the twin made of TensorFlow's
builtin ops. When the library cannot be loaded, tests that ask for "compiled"
FAIL, unless ADDERNET_TF_BACKEND=builtin says this installation is meant to
run without it (then they are skipped).
"""

import pytest

BACKENDS = ["compiled", "builtin"]


def compiled_op():
    """`adder_conv2d_compiled`, or fail/skip the calling test if it can't run."""
    # Imported lazily so the builtin tests run while the library is missing.
    from addernet_tf import ops  # pylint: disable=import-outside-toplevel
    from addernet_tf.ops import _loader  # pylint: disable=import-outside-toplevel
    if _loader.forced_builtin():
        pytest.skip("ADDERNET_TF_BACKEND=builtin: the compiled adder op is not expected")
    backend = ops.active_backend()
    if backend != "compiled":
        pytest.fail(f"the compiled adder op library is not loadable (active backend: {backend!r}); "
                    "set ADDERNET_TF_BACKEND=builtin to skip the compiled-op tests")
    from addernet_tf.ops.adder_conv2d import adder_conv2d_compiled  # pylint: disable=import-outside-toplevel
    return adder_conv2d_compiled


def builtin_op():
    from addernet_tf.ops.adder_conv2d_builtin import adder_conv2d_builtin  # pylint: disable=import-outside-toplevel
    return adder_conv2d_builtin


def get(name):
    return compiled_op() if name == "compiled" else builtin_op()
