# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""SavedModel round trip. For the compiled op the reload runs in a fresh process
that only imports `addernet_tf`, proving that import re-registers the op and
its gradients."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Loads the SavedModel at argv[1], runs it (and its gradients) on argv[2]
# (an .npz with x and dy), writes y, dx, df to argv[3].
RELOAD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    import addernet_tf  # noqa: F401 (registers the op)

    module = tf.saved_model.load(sys.argv[1])
    data = np.load(sys.argv[2])
    x = tf.constant(data["x"])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = module(x)
    dx, df = tape.gradient(y, [x, module.filters], output_gradients=tf.constant(data["dy"]))
    np.savez(sys.argv[3], y=y.numpy(), dx=dx.numpy(), df=df.numpy())
""")


class AdderModule(tf.Module):

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.filters = tf.Variable(
            np.random.default_rng(0).standard_normal((3, 3, 2, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 7, 6, 2], tf.float32)])
    def __call__(self, x):
        return self.op(x, self.filters, strides=(2, 1), padding="SAME")


def outputs(module, x, dy):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = module(x)
    dx, df = tape.gradient(y, [x, module.filters], output_gradients=tf.constant(dy))
    return {"y": y.numpy(), "dx": dx.numpy(), "df": df.numpy()}


def test_saved_model_round_trip(backend, backend_name, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 6, 2)).astype(np.float32)
    dy = rng.standard_normal((3, 4, 6, 4)).astype(np.float32)
    module = AdderModule(backend)
    expected = outputs(module, x, dy)
    tf.saved_model.save(module, str(tmp_path / "model"))

    if backend_name == "compiled":
        np.savez(tmp_path / "in.npz", x=x, dy=dy)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "model"),
                               str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                              env=env, timeout=300, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reloaded = dict(np.load(tmp_path / "out.npz"))
    else:
        reloaded = outputs(tf.saved_model.load(str(tmp_path / "model")), x, dy)

    for key, value in expected.items():
        np.testing.assert_allclose(reloaded[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
