# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`lite.finalize(fold=True)`: the MUL/ADD/SUB and ReLU after a float adder op become the
op's epilogue (addernet_tf/lite/epilogue.py), and the LiteRT kernel applies it.

Every model here is checked against a float64 NumPy reference written in the
test, with and without the fold; the fold's own bookkeeping (which ops went,
what the epilogue holds) is checked against the ops the test wrote.
"""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from addernet_tf import lite
from addernet_tf.ops import adder_conv2d
from tests.lite.test_litert_op import _convert, npref

H, W, C = 8, 6, 5
RNG = np.random.default_rng(11)
F1 = RNG.normal(size=(3, 3, C, 8)).astype(np.float32)
F2 = RNG.normal(size=(3, 3, 8, 6)).astype(np.float32)
F3 = RNG.normal(size=(1, 1, 6, 4)).astype(np.float32)
F4 = RNG.normal(size=(3, 3, 4, 3)).astype(np.float32)
S1, T1 = RNG.uniform(-0.2, 0.2, 8).astype(np.float32), RNG.normal(size=8).astype(np.float32)
S2 = np.array([-0.1, 0.03, -0.06, 0.1, -0.04, 0.06], np.float32)
T2 = RNG.normal(size=6).astype(np.float32)
T3 = RNG.normal(size=4).astype(np.float32)
PIXEL = RNG.normal(size=(H, W, 8)).astype(np.float32)
# A residual block on 8 channels, and a two-branch one (both branches adders) on 6 -> 4.
F5 = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)
S5, T5 = RNG.uniform(-0.1, 0.1, 8).astype(np.float32), RNG.normal(size=8).astype(np.float32)
F6 = RNG.normal(size=(3, 3, 6, 4)).astype(np.float32)
S6, T6 = RNG.uniform(-0.05, 0.05, 4).astype(np.float32), RNG.normal(size=4).astype(np.float32)


def _chain(formulation):
    """Six adder layers, each followed by a different chain that folds."""
    def fn(x):
        def adder(h, f, strides=1):
            return adder_conv2d(h, tf.constant(f), strides=strides, padding="SAME",
                                formulation=formulation)
        # BN-like (scales of both signs) + ReLU: MUL, ADD with ReLU fused.
        h1 = tf.nn.relu(adder(x, F1) * S1 + T1)
        # A residual block: BN, the shortcut's ADD, ReLU.
        h = tf.nn.relu(adder(h1, F5) * S5 + T5 + h1)
        # A [1, 1, 1, O] scale, a subtracted shift, then ReLU6.
        h = tf.nn.relu6(adder(h, F2, 2) * S2.reshape(1, 1, 1, -1) - T2)
        # Two adder branches added, then a ReLU: one takes the other as its residual.
        h = tf.nn.relu(adder(h, F3) * 0.05 + (adder(h, F6) * S6 + T6))
        # A constant minus the output (SUB, reversed), and the graph's output.
        return {"y": T3[:3] - adder(h, F4)}
    return fn


def _chain_reference(x):
    """The output and the pre-clamp values of the ReLU6 layer."""
    h1 = np.maximum(npref.forward(x, F1, 1, "SAME") * S1 + T1, 0)
    h = np.maximum(npref.forward(h1, F5, 1, "SAME") * S5 + T5 + h1, 0)
    before = npref.forward(h, F2, 2, "SAME") * S2 - T2
    h = np.clip(before, 0, 6)
    h = np.maximum(npref.forward(h, F3, 1, "SAME") * 0.05 + npref.forward(h, F6, 1, "SAME") * S6
                   + T6, 0)
    return T3[:3] - npref.forward(h, F4, 1, "SAME"), before


def _blocked(x):
    """Adder outputs the fold must leave alone (three filters: the converter merges equal ops)."""
    a = adder_conv2d(x, tf.constant(F1), padding="SAME")
    # Read twice (a residual-style fork).
    forked = a * S1 + a
    # Scaled by a tensor the graph computes.
    b = adder_conv2d(x, tf.constant(-F1), padding="SAME") * tf.reduce_mean(x)
    # A per-pixel constant, not a per-channel one.
    c = adder_conv2d(x, tf.constant(F1 / 2), padding="SAME") + PIXEL
    return {"y": tf.concat([forked, b, c], axis=-1)}


def _blocked_reference(x):
    a, b, c = (npref.forward(x, f, 1, "SAME") for f in (F1, -F1, F1 / 2))
    return np.concatenate([a * S1 + a, b * x.mean(), c + PIXEL],
                          axis=-1)


def _ops(flatbuffer):
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    found = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        found.append(code.customCode.decode() if code.customCode else
                     names[max(code.builtinCode, code.deprecatedBuiltinCode)])
    return found


def _epilogues(flatbuffer):
    """{filter shape: (epilogue float32 [2 O + 2] or None, has a residual)} of the adder ops."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    graph = model.subgraphs[0]
    found = {}
    for op in lite.adder_ops(flatbuffer):
        key = tuple(int(d) for d in graph.tensors[op["inputs"][1]].shape)
        if len(op["inputs"]) == 3:
            found[key] = (None, False)
            continue
        buffer = model.buffers[graph.tensors[op["inputs"][3]].buffer]
        found[key] = (np.frombuffer(flatbuffer[buffer.offset:buffer.offset + buffer.size],
                                    np.float32), len(op["inputs"]) == 5)
    return found


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """{(formulation, fold): finalized flatbuffer} of `_chain`."""
    if lite.load_error() is not None:
        pytest.fail(f"the LiteRT runner must load in this suite: {lite.load_error()}")
    work = tmp_path_factory.mktemp("epilogue")
    built = {}
    for formulation in ("exact", "max_identity"):
        converted = _convert(_chain(formulation), tf.TensorSpec([None, H, W, C], tf.float32),
                             str(work / formulation))
        for fold in (True, False):
            built[formulation, fold] = lite.finalize(converted, fold=fold)
    return built


def _run(flatbuffer, x, path, threads=1):
    path.write_bytes(flatbuffer)
    with lite.Interpreter(str(path), num_threads=threads) as model:
        return model(x).astype(np.float64)


@pytest.mark.parametrize("formulation", ["exact", "max_identity"])
def test_folded_chains_match_the_reference_and_the_unfolded_model(chain, formulation, tmp_path):
    x = np.random.default_rng(12).normal(size=(3, H, W, C)).astype(np.float32)
    want, before = _chain_reference(x)
    # The ReLU6 clamps at both ends.
    assert (before < 0).any() and (before > 6).any()
    folded = _run(chain[formulation, True], x, tmp_path / "folded.tflite", threads=2)
    unfolded = _run(chain[formulation, False], x, tmp_path / "unfolded.tflite")
    # Sums of up to 72 terms ~1 through two float32 layers: a few ulps of 1e2.
    tolerance = dict(rtol=1e-4, atol=1e-3) if formulation == "max_identity" else \
        dict(rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(folded, want, **tolerance)
    np.testing.assert_allclose(unfolded, want, **tolerance)


def test_the_fold_removes_the_chains_and_writes_their_epilogues(chain):
    folded, unfolded = chain["exact", True], chain["exact", False]
    assert _ops(folded) == ["Addernet>AdderConv2D"] * 6, _ops(folded)
    assert sorted(set(_ops(unfolded)) - {"Addernet>AdderConv2D"}) >= ["ADD", "MUL"]
    assert len(_ops(unfolded)) >= 6 + 10, _ops(unfolded)
    assert set(_epilogues(unfolded).values()) == {(None, False)}
    with pytest.raises(ValueError, match="finalized already"):
        lite.finalize(folded)
    got = _epilogues(folded)
    inf = np.float32(np.inf)

    def check(f, lo_hi, scale, shift, residual):
        values, has_residual = got[f.shape]
        np.testing.assert_array_equal(values[:2], lo_hi)
        np.testing.assert_allclose(values[2:], np.concatenate([scale, shift]), rtol=1e-6)
        assert has_residual == residual, f.shape

    check(F1, [0, inf], S1, T1, False)
    check(F5, [0, inf], S5, T5, True)
    check(F2, [0, 6], S2, -T2, False)
    check(F4, [-inf, inf], -np.ones(3), T3[:3], False)
    # Of the two branches, the first to be walked takes the ADD (and its ReLU).
    (_, r3), (_, r6) = got[F3.shape], got[F6.shape]
    assert r3 != r6
    check(F3, [0, inf] if r3 else [-inf, inf], np.full(4, 0.05), np.zeros(4), r3)
    check(F6, [0, inf] if r6 else [-inf, inf], S6, T6, r6)


def test_outputs_read_twice_or_scaled_by_computed_or_per_pixel_values_stay(tmp_path):
    converted = _convert(_blocked, tf.TensorSpec([None, H, W, C], tf.float32), str(tmp_path))
    folded, unfolded = lite.finalize(converted), lite.finalize(converted, fold=False)
    assert _ops(folded) == _ops(unfolded)
    assert set(_epilogues(folded).values()) == {(None, False)} and len(lite.adder_ops(folded)) == 3
    x = np.random.default_rng(13).normal(size=(2, H, W, C)).astype(np.float32)
    np.testing.assert_allclose(_run(folded, x, tmp_path / "m.tflite"),
                               _blocked_reference(x), rtol=1e-5, atol=2e-4)


def _patched(flatbuffer, edit):
    """`flatbuffer` with the first adder op's epilogue rewritten by edit(values, shape) in place."""
    data = bytearray(flatbuffer)
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    index = lite.adder_ops(flatbuffer)[0]["inputs"][3]
    buffer = model.buffers[model.subgraphs[0].tensors[index].buffer]
    values = np.frombuffer(data, np.float32, buffer.size // 4, buffer.offset)
    shape = schema.Model.GetRootAs(data, 0).Subgraphs(0).Tensors(index).ShapeAsNumpy()
    edit(values, shape)  # both views into `data`
    return bytes(data)


@pytest.mark.parametrize("edit,message", [
    (lambda v, s: v.__setitem__(slice(0, 2), [1.0, 0.5]), "the epilogue needs lo <= hi"),
    (lambda v, s: v.__setitem__(2, np.nan), "the epilogue needs lo <= hi"),
    (lambda v, s: v.__setitem__(-1, np.inf), "the epilogue needs lo <= hi"),
    (lambda v, s: s.__setitem__(0, s[0] - 1),
     r"the 4th input must have shape \[2 O \+ 2\] \(float32\)"),
], ids=["lo_above_hi", "nan_scale", "inf_shift", "short"])
def test_a_bad_epilogue_fails_the_run_and_says_why(chain, edit, message, tmp_path):
    bad = _patched(chain["exact", True], edit)
    (tmp_path / "bad.tflite").write_bytes(bad)
    x = np.ones((1, H, W, C), np.float32)
    with lite.Interpreter(str(tmp_path / "bad.tflite")) as model:
        with pytest.raises(RuntimeError, match="Addernet>AdderConv2D: " + message):
            model(x)
