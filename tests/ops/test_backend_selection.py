# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Which backend `adder_conv2d` uses, and the fallback when the library is missing.

Each case runs in a fresh interpreter: the library is loaded once per process.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from addernet_tf.ops import _loader

PROBE = textwrap.dedent("""
    import warnings
    import numpy as np
    import tensorflow as tf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from addernet_tf.ops import active_backend, adder_conv2d, adder_conv2d_builtin
        x = tf.random.stateless_normal([2, 5, 5, 3], seed=[1, 2])
        f = tf.random.stateless_normal([3, 3, 3, 4], seed=[3, 4])
        y = adder_conv2d(x, f, padding="SAME")
        adder_conv2d(x, f)
    np.testing.assert_allclose(y, adder_conv2d_builtin(x, f, padding="SAME"), rtol=1e-5)
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
    if _loader.forced_builtin():
        pytest.skip("ADDERNET_TF_BACKEND=builtin: the compiled adder op is not expected")
    assert _probe() == ["compiled", "0"]


def test_env_var_forces_builtin_without_warning():
    assert _probe(ADDERNET_TF_BACKEND="builtin") == ["builtin", "0"]


@pytest.mark.parametrize("value, forced", [("builtin", True), ("BUILTIN", True),
                                           ("reference", True), ("", False), ("compiled", False)])
def test_builtin_spellings(monkeypatch, value, forced):
    """`reference` is the deprecated spelling of `builtin` (scripts set it)."""
    monkeypatch.setenv("ADDERNET_TF_BACKEND", value)
    assert _loader.forced_builtin() is forced


def test_missing_library_falls_back_with_one_warning(tmp_path):
    missing = str(tmp_path / "no_such_library.so")
    assert _probe(ADDERNET_TF_LIBRARY=missing) == ["builtin", "1"]
