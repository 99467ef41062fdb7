# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Every student loss against an independent reference written from its definition.

The expectations here never come from `trainers.losses`: each loss is written
again in NumPy (float64) from the formulas (paper Eq. 7, 8, 11–14; Hinton's KD;
NST, AT, SP as defined in the literature), and the distiller's update is checked
against `tf.GradientTape` on a plain-TF rewrite of the whole student loss.
`trainers.losses` is imported only for the objects under test.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from addernet_tf.layers import Tap
from addernet_tf.models import resnet_cifar, with_taps
from addernet_tf.trainers import losses  # the objects under test, never the expectations
from addernet_tf.trainers.distiller import Distiller

FEATURE_LIMIT = 1e15  # inputs are clipped to ±this before the map
STD_FLOOR = 1e-6  # floor of the input's per-channel std
MAP_VARIANCE_FLOOR = 1e-10  # times the channel's mean square, added to its variance
MAX_EXPONENT = 10.0


# --- NumPy references ---------------------------------------------------------

def ref_log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ref_cross_entropy(labels, logits):
    return -ref_log_softmax(logits)[np.arange(len(labels)), np.asarray(labels)]


def ref_kd(student_logits, teacher_logits, temperature):
    """T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) per example."""
    log_p_t = ref_log_softmax(np.asarray(teacher_logits, np.float64) / temperature)
    log_p_s = ref_log_softmax(np.asarray(student_logits, np.float64) / temperature)
    return temperature ** 2 * (np.exp(log_p_t) * (log_p_t - log_p_s)).sum(axis=-1)


def ref_input_standardize(y):
    """Clip to ±1e15, then (y − mean_c) / max(std_c, 1e-6) over (N, H, W), population std."""
    y = np.clip(np.asarray(y, np.float64), -FEATURE_LIMIT, FEATURE_LIMIT)
    mean = y.mean(axis=(0, 1, 2))
    std = np.sqrt(((y - mean) ** 2).mean(axis=(0, 1, 2)))
    return (y - mean) / np.maximum(std, STD_FLOOR)


def ref_map(z, kind, sigma, direction="rising", m=MAX_EXPONENT):
    """Eq. 7 (gaussian, e = z/(2σ²)) or Eq. 8 (laplace, e = z/σ), capped: 1/(exp(−e) + exp(−m))."""
    if kind == "identity":
        return z
    e = z / (2.0 * sigma ** 2) if kind == "gaussian" else z / sigma
    if direction == "falling":
        e = -e
    with np.errstate(over="ignore"):
        return 1.0 / (np.exp(-e) + np.exp(-m))


def ref_head(y, kind, sigma, rho_kernel, direction="rising"):
    r = ref_map(ref_input_standardize(y), kind, sigma, direction)
    return r if rho_kernel is None else r @ np.asarray(rho_kernel, np.float64)


def ref_map_standardize(r):
    """(r − mean_c) / sqrt(var_c + 1e-10·E_c[r²]) over (N, H, W), population variance."""
    mean = r.mean(axis=(0, 1, 2))
    var = ((r - mean) ** 2).mean(axis=(0, 1, 2))
    return (r - mean) / np.sqrt(var + MAP_VARIANCE_FLOOR * (r ** 2).mean(axis=(0, 1, 2)) + 1e-30)


def ref_l_mid(student_features, teacher_features, *, kernel, sigma_a, sigma_c, rho_a, rho_c,
              standardize_maps, direction="rising"):
    """PKKD's L_mid: (per example [N], per tap [M] batch means)."""
    terms = []
    for i, (s, t) in enumerate(zip(student_features, teacher_features)):
        r_s = ref_head(s, "laplace" if kernel else "identity", sigma_a[i], rho_a[i], direction)
        r_t = ref_head(t, "gaussian" if kernel else "identity", sigma_c[i], rho_c[i], direction)
        if standardize_maps:  # + (1 − E[r̂²]) of each side, per channel: 0 unless a map is flat
            r_s, r_t = ref_map_standardize(r_s), ref_map_standardize(r_t)
            shortfall = (2.0 - (r_s ** 2).mean(axis=(0, 1, 2)) - (r_t ** 2).mean(axis=(0, 1, 2)))
            terms.append(((r_s - r_t) ** 2).mean(axis=(1, 2, 3)) + shortfall.mean())
        else:
            terms.append(((r_s - r_t) ** 2).mean(axis=(1, 2, 3)))
    terms = np.stack(terms)  # [M, N]
    return terms.sum(axis=0), terms.mean(axis=1)


def _unit(v, axis=-1):
    return v / np.linalg.norm(v, axis=axis, keepdims=True)


def ref_nst(student_features, teacher_features, degree=2, offset=0.0):
    """Squared MMD between the per-example sets of L2-normalized channel vectors."""
    terms = []
    for s, t in zip(student_features, teacher_features):
        per_example = []
        for a, b in zip(np.asarray(s, np.float64), np.asarray(t, np.float64)):
            fs = _unit(a.reshape(-1, a.shape[-1]).T)  # [C, HW]
            ft = _unit(b.reshape(-1, b.shape[-1]).T)

            def k(u, v):
                return np.mean((u @ v.T + offset) ** degree)

            per_example.append(k(fs, fs) + k(ft, ft) - 2.0 * k(fs, ft))
        terms.append(per_example)
    terms = np.array(terms)
    return terms.sum(axis=0), terms.mean(axis=1)


def ref_attention(student_features, teacher_features, p=2.0):
    """‖Q_s − Q_t‖₂ with Q = normalize(Σ_c |A_c|^p) flattened, per example."""
    terms = []
    for s, t in zip(student_features, teacher_features):
        def q(a):
            a = np.asarray(a, np.float64)
            return _unit((np.abs(a) ** p).sum(axis=-1).reshape(len(a), -1))

        terms.append(np.linalg.norm(q(s) - q(t), axis=-1))
    terms = np.array(terms)
    return terms.sum(axis=0), terms.mean(axis=1)


def ref_similarity(student_features, teacher_features):
    """‖G_s − G_t‖_F² / N², G = A·Aᵀ rows L2-normalized; each example carries the value."""
    terms = []
    for s, t in zip(student_features, teacher_features):
        n = len(s)

        def g(a):
            a = np.asarray(a, np.float64).reshape(n, -1)
            return _unit(a @ a.T)

        terms.append(np.full(n, ((g(s) - g(t)) ** 2).sum() / n ** 2))
    terms = np.array(terms)
    return terms.sum(axis=0), terms.mean(axis=1)


# --- helpers ------------------------------------------------------------------

TAP_SHAPES = [(4, 4, 3), (2, 2, 5), (3, 3, 4)]


def _taps(shapes):
    """Free-standing `Tap` layers with symbolic outputs of the given shapes."""
    taps = []
    for i, shape in enumerate(shapes):
        tap = Tap(i, fan_in=9 * shape[-1])
        tap(keras.Input(shape))
        taps.append(tap)
    return taps


def _features(n, shapes, seed, skewed):
    """Random student (adder-like, −|normal|·k when `skewed`) and teacher features."""
    rng = np.random.default_rng(seed)
    student, teacher = [], []
    for shape in shapes:
        if skewed:
            student.append(-np.abs(rng.normal(size=(n, *shape))) * 7.0 - 3.0)
        else:
            student.append(rng.normal(size=(n, *shape)) * 2.0 + 0.5)
        teacher.append(rng.normal(size=(n, *shape)) * 3.0 - 1.0)
    return ([f.astype("float32") for f in student], [f.astype("float32") for f in teacher])


def _random_unit_columns(rng, c):
    return _unit(rng.normal(size=(c, c)), axis=0).astype("float32")


def _kernel_loss(shapes=TAP_SHAPES, *, sigma_a=None, sigma_c=None, rho_seed=None, **kwargs):
    """A configured `KernelFeatureLoss`, with the given σ per tap and random unit-column ρ.

    Returns the loss and the (σa, σc, ρa, ρc) it holds, read back for the reference.
    """
    loss = losses.KernelFeatureLoss(**kwargs)
    loss.configure(_taps(shapes), _taps(shapes))
    rng = np.random.default_rng(rho_seed)
    for heads, sigmas in ((loss.student_heads, sigma_a), (loss.teacher_heads, sigma_c)):
        for head, shape, i in zip(heads, shapes, range(len(shapes))):
            if sigmas is not None and head.map.log_sigma is not None:
                head.map.log_sigma.assign(math.log(sigmas[i]))
            if rho_seed is not None and head.rho_layer is not None:
                head.rho_layer.kernel.assign(_random_unit_columns(rng, shape[-1]))
    return loss, _held(loss)


def _held(loss):
    def sigmas(heads):
        return [None if h.map.log_sigma is None else math.exp(float(h.map.log_sigma))
                for h in heads]

    def rhos(heads):
        return [None if h.rho_layer is None else np.array(h.rho_layer.kernel) for h in heads]

    return dict(sigma_a=sigmas(loss.student_heads), sigma_c=sigmas(loss.teacher_heads),
                rho_a=rhos(loss.student_heads), rho_c=rhos(loss.teacher_heads))


def _assert_loss(got, want, rtol=1e-4, atol=1e-5):
    per_example, per_tap = got
    np.testing.assert_allclose(np.array(per_example), want[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.array(per_tap), want[1], rtol=rtol, atol=atol)


# --- 1. cross-entropy and KD --------------------------------------------------

def test_cross_entropy_matches_reference():
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(16, 7)) * 6.0).astype("float32")
    labels = rng.integers(0, 7, 16)
    got = losses.cross_entropy(labels, logits)
    assert got.shape == (16,)
    np.testing.assert_allclose(np.array(got), ref_cross_entropy(labels, logits),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0, 10.0])
def test_kd_loss_matches_reference(temperature):
    rng = np.random.default_rng(1)
    student = (rng.normal(size=(12, 6)) * 4.0).astype("float32")
    teacher = (rng.normal(size=(12, 6)) * 4.0).astype("float32")
    got = np.array(losses.kd_loss(student, teacher, temperature))
    want = ref_kd(student, teacher, temperature)
    assert got.shape == (12,)
    assert want.min() > 1e-3  # far enough from 0 that a wrong factor shows
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.array(losses.kd_loss(teacher, teacher, temperature)), 0.0,
                               atol=1e-5)


# --- 2. PKKD's L_mid ----------------------------------------------------------

@pytest.mark.parametrize("direction", ["rising", "falling"])
@pytest.mark.parametrize("standardize_maps", [True, False])
@pytest.mark.parametrize("kernel,rho", [(True, True), (True, False), (False, True),
                                        (False, False)])
@pytest.mark.parametrize("skewed", [True, False], ids=["skewed", "symmetric"])
def test_kernel_feature_loss_matches_reference(kernel, rho, standardize_maps, direction, skewed):
    sigma_a, sigma_c = [0.7, 2.5, 1.3], [1.6, 0.8, 1.1]
    loss, held = _kernel_loss(kernel=kernel, rho=rho, standardize_maps=standardize_maps,
                              direction=direction, sigma_a=sigma_a, sigma_c=sigma_c, rho_seed=3)
    if kernel:  # the σ set above are the ones in use
        np.testing.assert_allclose(held["sigma_a"], sigma_a, rtol=1e-6)
        np.testing.assert_allclose(held["sigma_c"], sigma_c, rtol=1e-6)
    if rho:  # a random ρ, not the identity it starts as
        assert all(not np.allclose(w, np.eye(len(w)), atol=0.1) for w in held["rho_a"])
    s, t = _features(6, TAP_SHAPES, seed=4, skewed=skewed)
    want = ref_l_mid(s, t, kernel=kernel, standardize_maps=standardize_maps,
                     direction=direction, **held)
    got = loss(s, t)
    assert got[0].shape == (6,) and got[1].shape == (len(TAP_SHAPES),)
    # relative to the loss' scale: unstandardized maps reach exp(10)
    _assert_loss(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want[0]).max())))


def test_kernel_feature_loss_matches_reference_at_sigma_bounds_and_constant_features():
    """σ at its bounds (1e-4: step maps; 1e4: nearly linear maps), a constant channel."""
    shapes = [(3, 3, 4), (2, 2, 3)]
    loss, held = _kernel_loss(shapes, sigma_a=[1e-4, 1e4], sigma_c=[1e4, 1e-2], rho_seed=5)
    s, t = _features(5, shapes, seed=6, skewed=True)
    s[1][..., 0] = -4.0  # a dead channel
    want = ref_l_mid(s, t, kernel=True, standardize_maps=True, **held)
    # float32 resolves 1 + z/1e4 to a relative 6e-4 of its variation: 1% here.
    _assert_loss(loss(s, t), want, rtol=1e-2, atol=1e-2)


BANDWIDTH_PAIRS = [(1.0, 1.0), (2.0, 1.0), (0.5, 2.0), (4.0, 0.6), (0.3, 0.5), (8.0, 3.0)]


def _same_and_opposite(sigma_a, sigma_c, skewed, standardize_maps, direction):
    """Mean L_mid (ρ off) of a student equal to the teacher, and of one opposite to it."""
    loss, _ = _kernel_loss(rho=False, sigma_a_init=sigma_a, sigma_c_init=sigma_c,
                           standardize_maps=standardize_maps, direction=direction)
    _, t = _features(8, TAP_SHAPES, seed=7, skewed=False)
    if skewed:  # adder-like outputs, on both sides
        t = [-np.abs(f) * 3.0 for f in t]
    same, _ = loss(t, t)
    opposite, _ = loss([-f for f in t], t)
    return float(tf.reduce_mean(same)), float(tf.reduce_mean(opposite))


@pytest.mark.parametrize("direction", ["rising", "falling"])
@pytest.mark.parametrize("skewed", [True, False], ids=["skewed", "symmetric"])
@pytest.mark.parametrize("sigma_a,sigma_c", BANDWIDTH_PAIRS)
def test_matching_features_score_better_than_opposite_ones(sigma_a, sigma_c, skewed, direction):
    """standardize_maps=True: for any bandwidths, in both directions."""
    same, opposite = _same_and_opposite(sigma_a, sigma_c, skewed, True, direction)
    assert same < opposite


def test_plain_mse_can_prefer_opposite_features_when_bandwidths_differ():
    """standardize_maps=False (Eq. 13 read literally): with σa ≠ 2σc² the two maps differ in
    scale, and an opposite student can score better than an equal one. Seen here in 5 of the
    24 (pair, features, direction) cases of the test above; two of them pinned."""
    same, opposite = _same_and_opposite(1.0, 1.0, True, False, "falling")
    assert same > 2.0 * opposite
    same, opposite = _same_and_opposite(0.5, 2.0, False, False, "rising")
    assert same > opposite
    # ... while with the default standardized maps the same cases are ordered right
    for args in ((1.0, 1.0, True, True, "falling"), (0.5, 2.0, False, True, "rising")):
        same, opposite = _same_and_opposite(*args)
        assert same < opposite


@pytest.mark.parametrize("direction", ["rising", "falling"])
@pytest.mark.parametrize("standardize_maps", [True, False])
@pytest.mark.parametrize("rho", [False, True])
@pytest.mark.parametrize("sigma_c", [0.5, 0.8, 1.0, 2.0])
def test_matched_bandwidths_and_identical_inputs_give_zero(sigma_c, rho, standardize_maps,
                                                           direction):
    sigma_a = 2.0 * sigma_c ** 2
    loss, _ = _kernel_loss(rho=rho, sigma_a_init=sigma_a, sigma_c_init=sigma_c,
                           standardize_maps=standardize_maps, direction=direction)
    if rho:  # the same random ρ on both sides
        rng = np.random.default_rng(8)
        for s_head, t_head, shape in zip(loss.student_heads, loss.teacher_heads, TAP_SHAPES):
            w = _random_unit_columns(rng, shape[-1])
            s_head.rho_layer.kernel.assign(w)
            t_head.rho_layer.kernel.assign(w)
    s, t = _features(6, TAP_SHAPES, seed=9, skewed=True)
    mismatched, _ = loss(s, t)
    per_example, per_tap = loss(t, t)
    scale = 1.0 if standardize_maps else float(np.max([np.mean(np.square(
        ref_map(ref_input_standardize(f), "gaussian", sigma_c, direction))) for f in t]))
    np.testing.assert_allclose(np.array(per_example), 0.0, atol=1e-6 * scale)
    np.testing.assert_allclose(np.array(per_tap), 0.0, atol=1e-6 * scale)
    assert float(tf.reduce_min(mismatched)) > 1e-3 * scale


def _correlation_per_channel(a, b):
    a = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
    b = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
    return np.array([np.corrcoef(a[:, c], b[:, c])[0, 1] for c in range(a.shape[1])])


def test_standardized_identity_maps_score_two_minus_two_correlation():
    """kernel=False, rho=False: per channel, the batch mean of L_mid is 2 − 2·corr (to 1e-10)."""
    shapes = [(8, 8, 4), (4, 4, 6)]
    loss, _ = _kernel_loss(shapes, kernel=False, rho=False, standardize_maps=True)
    rng = np.random.default_rng(10)
    t = [(rng.normal(size=(8, *shape)) * 3.0 + 1.0).astype("float32") for shape in shapes]
    independent = [(-np.abs(rng.normal(size=f.shape)) * 5.0).astype("float32") for f in t]
    mixed = [(0.6 * f + 2.0 * rng.normal(size=f.shape)).astype("float32") for f in t]
    positive = [(2.5 * f - 7.0).astype("float32") for f in t]
    negative = [(-0.3 * f + 4.0).astype("float32") for f in t]
    for student, expect in ((independent, 2.0), (mixed, None), (positive, 0.0),
                            (negative, 4.0)):
        _, per_tap = loss(student, t)
        want = [np.mean(2.0 - 2.0 * _correlation_per_channel(s, f))
                for s, f in zip(student, t)]
        np.testing.assert_allclose(np.array(per_tap), want, rtol=1e-4, atol=1e-5)
        if expect is not None:
            tolerance = 0.15 if expect == 2.0 else 1e-4  # independent: sampling noise
            np.testing.assert_allclose(np.array(per_tap), expect, atol=tolerance)


def _constant_and_unrelated_scores():
    """Per-tap L_mid (defaults: kernel, ρ, standardized maps) of three students against one
    teacher: constant features, unrelated features, and unrelated features with σa = 1e4."""
    shapes = [(8, 8, 4)]
    rng = np.random.default_rng(11)
    t = [(rng.normal(size=(8, *shapes[0])) * 3.0).astype("float32")]
    unrelated = [(-np.abs(rng.normal(size=t[0].shape)) * 5.0).astype("float32")]
    constant = [np.broadcast_to(-np.arange(1.0, 5.0, dtype="float32") * 3.0, t[0].shape)]
    loss, _ = _kernel_loss(shapes)
    flat_loss, _ = _kernel_loss(shapes, sigma_a=[1e4], rho_seed=12)
    return (float(loss(constant, t)[1][0]), float(loss(unrelated, t)[1][0]),
            float(flat_loss(unrelated, t)[1][0]))


def test_constant_student_maps_score_no_better_than_unrelated_ones():
    """A constant student map standardizes to 0 and scores 2 per channel, as unrelated
    features do; with σa at its bound (1e4) the map is nearly linear, still not flat."""
    constant, unrelated, flat = _constant_and_unrelated_scores()
    np.testing.assert_allclose(constant, 2.0, atol=1e-4)
    np.testing.assert_allclose(unrelated, 2.0, atol=0.15)
    np.testing.assert_allclose(flat, 2.0, atol=0.15)


# --- 3. NST ("MMD"), AT, SP -----------------------------------------------------

@pytest.mark.parametrize("degree,offset", [(2, 0.0), (3, 0.5), (1, 0.0)])
def test_nst_matches_reference(degree, offset):
    s, t = _features(5, TAP_SHAPES, seed=13, skewed=True)
    kwargs = {} if (degree, offset) == (2, 0.0) else dict(degree=degree, offset=offset)
    got = losses.NSTLoss(**kwargs)(s, t)
    want = ref_nst(s, t, degree, offset)
    assert want[0].min() > 1e-3 or degree == 1
    _assert_loss(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_attention_matches_reference(p):
    s, t = _features(5, TAP_SHAPES, seed=14, skewed=True)
    got = (losses.AttentionLoss() if p == 2.0 else losses.AttentionLoss(p=p))(s, t)
    _assert_loss(got, ref_attention(s, t, p), rtol=1e-4, atol=1e-6)


def test_similarity_matches_reference():
    s, t = _features(6, TAP_SHAPES, seed=15, skewed=True)
    got = losses.SimilarityLoss()(s, t)
    want = ref_similarity(s, t)
    assert want[1].min() > 1e-3
    _assert_loss(got, want, rtol=1e-4, atol=1e-7)


# --- 4. the Distiller's student loss and step -----------------------------------

SHAPE, CLASSES, BATCH = (8, 8, 3), 5, 6
ALPHA, BETA, TEMPERATURE, LR = 0.7, 1.9, 3.0, 0.05


def _models(seed):
    keras.utils.set_random_seed(seed)
    # ResNet-8: six layer taps, enough for a dropped or misweighted one to show.
    student = resnet_cifar(8, CLASSES, "ann", input_shape=SHAPE, adaptive_eta=None,
                           name="student")
    teacher = resnet_cifar(8, CLASSES, "cnn", input_shape=SHAPE, name="teacher")
    return student, teacher


def _batch(seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(BATCH, *SHAPE)).astype("float32"),
            rng.integers(0, CLASSES, BATCH).astype("int32"))


def _perturb_heads(feature_loss, seed):
    """σ ≠ 1 and random unit-column ρ on both sides, so nothing is the identity."""
    rng = np.random.default_rng(seed)
    for heads in (feature_loss.student_heads, feature_loss.teacher_heads):
        for head in heads:
            head.map.log_sigma.assign(math.log(rng.uniform(0.5, 2.5)))
            head.rho_layer.kernel.assign(_random_unit_columns(rng, head.rho_layer.kernel.shape[0]))


def _reference_feature(method, s_features, t_features, feature_loss):
    if method == "pkkd":
        return ref_l_mid(s_features, t_features, kernel=True, standardize_maps=True,
                         **_held(feature_loss))
    return {"mmd": ref_nst, "at": ref_attention, "sp": ref_similarity}[method](
        s_features, t_features)


@pytest.mark.parametrize("method", ["pkkd", "mmd", "at", "sp"])
def test_distiller_logs_equal_reference_loss(method):
    student, teacher = _models(20)
    feature_loss = losses.FEATURE_LOSSES[method]()
    distiller = Distiller(student, teacher, feature_loss, alpha=ALPHA, beta=BETA,
                          temperature=TEMPERATURE)
    distiller.compile(keras.optimizers.SGD(LR), keras.optimizers.SGD(LR))
    if method == "pkkd":
        _perturb_heads(feature_loss, 21)
    x, y = _batch(22)
    # the step's own forward pass, before the step changes the weights
    s_logits, s_features = with_taps(student)(x, training=True)
    t_logits, t_features = with_taps(teacher)(x, training=True)
    s_features = [np.array(f) for f in s_features]
    t_features = [np.array(f) for f in t_features]
    assert len(s_features) == 6
    ce = ref_cross_entropy(y, s_logits)
    kd = ref_kd(s_logits, t_logits, TEMPERATURE)
    feature, per_tap = _reference_feature(method, s_features, t_features, feature_loss)

    logs = distiller.train_on_batch(x, y, return_dict=True)
    rtol = 1e-4  # float32 through 8 layers, two forward passes (seen: ~2e-6)
    np.testing.assert_allclose(logs["student_loss"],
                               np.mean(ce + ALPHA * kd + BETA * feature), rtol=rtol)
    np.testing.assert_allclose(logs["student_ce"], np.mean(ce), rtol=rtol)
    np.testing.assert_allclose(logs["kd"], np.mean(kd), rtol=rtol)
    np.testing.assert_allclose(logs["teacher_ce"], np.mean(ref_cross_entropy(y, t_logits)),
                               rtol=rtol)
    np.testing.assert_allclose(logs["feature"], np.mean(feature), rtol=rtol)
    np.testing.assert_allclose([logs[f"feature_{i}"] for i in range(6)], per_tap,
                               rtol=rtol, atol=1e-6)
    # the total is exactly the weighted sum of the logged (and checked) terms, and each
    # term is large enough that a wrong weight, a missing T² or a dropped tap shows
    total = logs["student_ce"] + ALPHA * logs["kd"] + BETA * logs["feature"]
    np.testing.assert_allclose(logs["student_loss"], total, rtol=1e-5)
    assert min(logs["student_ce"], ALPHA * logs["kd"], BETA * logs["feature"]) > 1e-3 * total
    assert min(per_tap) > 1e-3 * np.sum(per_tap) or method == "sp"


# plain-TF rewrite of the student loss (independent of trainers.losses)

def _tf_input_standardized(y):
    """Per-channel batch standardization with the statistics held constant in the gradient."""
    y = tf.clip_by_value(y, -FEATURE_LIMIT, FEATURE_LIMIT)
    mean = tf.stop_gradient(tf.reduce_mean(y, axis=[0, 1, 2]))
    std = tf.stop_gradient(tf.sqrt(tf.reduce_mean(tf.square(y - mean), axis=[0, 1, 2])))
    return (y - mean) / tf.maximum(std, STD_FLOOR)


def _tf_map_standardized(r):
    """Per-channel batch standardization with the statistics in the gradient."""
    mean = tf.reduce_mean(r, axis=[0, 1, 2])
    var = tf.reduce_mean(tf.square(r - mean), axis=[0, 1, 2])
    return (r - mean) / tf.sqrt(var + tf.stop_gradient(
        MAP_VARIANCE_FLOOR * tf.reduce_mean(tf.square(r), axis=[0, 1, 2])) + 1e-30)


def _tf_head(y, exponent_scale, rho_kernel):
    e = _tf_input_standardized(y) * exponent_scale
    kernel_map = 1.0 / (tf.exp(-e) + math.exp(-MAX_EXPONENT))
    return tf.einsum("nhwc,cd->nhwd", kernel_map, rho_kernel)


def _tf_student_loss(y, s_logits, s_features, t_logits, t_features, s_heads, t_heads):
    log_p = tf.nn.log_softmax(s_logits)
    ce = -tf.reduce_sum(tf.one_hot(y, CLASSES) * log_p, axis=-1)
    log_ps = tf.nn.log_softmax(s_logits / TEMPERATURE)
    log_pt = tf.nn.log_softmax(t_logits / TEMPERATURE)
    kd = TEMPERATURE ** 2 * tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1)
    feature = 0.0
    for s, t, s_head, t_head in zip(s_features, t_features, s_heads, t_heads):
        sigma_a = tf.exp(s_head.map.log_sigma)  # Laplace: e = z / σa
        sigma_c = tf.exp(t_head.map.log_sigma)  # Gaussian-alike: e = z / (2σc²)
        r_s = _tf_map_standardized(_tf_head(s, 1.0 / sigma_a, s_head.rho_layer.kernel))
        r_t = _tf_map_standardized(_tf_head(t, 0.5 / tf.square(sigma_c),
                                            t_head.rho_layer.kernel))
        shortfall = 2.0 - tf.reduce_mean(tf.square(r_s), [0, 1, 2]) - tf.reduce_mean(
            tf.square(r_t), [0, 1, 2])
        feature = feature + tf.reduce_mean(tf.square(r_s - r_t), axis=[1, 2, 3]) + tf.reduce_mean(
            shortfall)
    return tf.reduce_mean(ce + ALPHA * kd + BETA * feature)


def test_distiller_student_step_is_sgd_on_reference_loss():
    student, teacher = _models(30)
    feature_loss = losses.KernelFeatureLoss()
    distiller = Distiller(student, teacher, feature_loss, alpha=ALPHA, beta=BETA,
                          temperature=TEMPERATURE)
    distiller.compile(keras.optimizers.SGD(LR, momentum=0.0), keras.optimizers.SGD(LR))
    _perturb_heads(feature_loss, 31)
    x, y = _batch(32)
    s_heads, t_heads = feature_loss.student_heads, feature_loss.teacher_heads
    variables = list(student.trainable_variables) + [
        v for h in s_heads for v in (h.map.log_sigma, h.rho_layer.kernel)]
    # the distiller trains exactly these: the student and its heads (teacher heads fixed)
    assert {id(v) for v in variables} == {id(v) for v in distiller._student_variables()}
    before = [np.array(v) for v in variables]
    t_logits, t_features = with_taps(teacher)(x, training=True)
    with tf.GradientTape() as tape:
        s_logits, s_features = with_taps(student)(x, training=True)
        loss = _tf_student_loss(y, s_logits, s_features, t_logits, t_features, s_heads, t_heads)
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads)

    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["student_loss"], float(loss), rtol=2e-3)
    rho_ids = {id(h.rho_layer.kernel) for h in s_heads}
    checked = 0
    for v, w, g in zip(variables, before, grads):
        want = w - LR * np.array(g)
        if id(v) in rho_ids:  # the UnitNorm(axis=0) constraint follows the update
            want = want / np.linalg.norm(want, axis=0, keepdims=True)
        scale = max(float(np.abs(LR * np.array(g)).max()), 1e-6)
        np.testing.assert_allclose(np.array(v), want, rtol=0, atol=max(1e-2 * scale, 1e-6),
                                   err_msg=v.path)
        checked += float(np.abs(LR * np.array(g)).max()) > 1e-5
    assert checked > len(variables) // 2  # the step really moved most variables
