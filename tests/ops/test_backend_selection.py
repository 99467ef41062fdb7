# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Which backend `adder_conv2d` uses, and the fallback when the library is missing.

Each case runs in a fresh interpreter: the library is loaded once per process.
"""

import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import warnings
    import numpy as np
    import tensorflow as tf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from addernet_tf.ops import active_backend, adder_conv2d, adder_conv2d_reference
        x = tf.random.stateless_normal([2, 5, 5, 3], seed=[1, 2])
        f = tf.random.stateless_normal([3, 3, 3, 4], seed=[3, 4])
        y = adder_conv2d(x, f, padding="SAME")
        adder_conv2d(x, f)
    np.testing.assert_allclose(y, adder_conv2d_reference(x, f, padding="SAME"), rtol=1e-5)
    ours = [w for w in caught if "addernet_tf" in str(w.message)]
    print(active_backend(), len(ours))
""")


def _probe(**env):
    # ADDERNET_TF_LIBRARY stays: `make bazel-build` points it at the Bazel-built library.
    full_env = {k: v for k, v in os.environ.items() if k != "ADDERNET_TF_BACKEND"}
    full_env.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=full_env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()[-2:]


def test_default_is_the_compiled_library():
    if os.environ.get("ADDERNET_TF_BACKEND", "").lower() == "reference":
        pytest.skip("ADDERNET_TF_BACKEND=reference: the compiled adder op is not expected")
    assert _probe() == ["custom", "0"]


def test_env_var_forces_reference_without_warning():
    assert _probe(ADDERNET_TF_BACKEND="reference") == ["reference", "0"]


def test_missing_library_falls_back_with_one_warning(tmp_path):
    missing = str(tmp_path / "no_such_library.so")
    assert _probe(ADDERNET_TF_LIBRARY=missing) == ["reference", "1"]
