# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`Distiller`: the teacher never sees the KD loss; every method trains; both evaluate."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from addernet_tf.models import resnet20, resnet_cifar
from addernet_tf.trainers import losses
from addernet_tf.trainers.distiller import Distiller

SHAPE = (8, 8, 3)


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *SHAPE)).astype("float32"), rng.integers(0, 10, n).astype("int32")


def _pair(seed=0):
    """ResNet-8 (6 layer taps): the Distiller, not the network, is the subject here."""
    keras.utils.set_random_seed(seed)
    return (resnet_cifar(8, 10, "ann", input_shape=SHAPE, name="student"),
            resnet_cifar(8, 10, "cnn", input_shape=SHAPE, name="teacher"))


def _sgd():
    return keras.optimizers.SGD(0.1, momentum=0.9)


def _weights(model):
    return [np.array(w) for w in model.weights]


def test_progressive_teacher_steps_exactly_like_cross_entropy_alone():
    student, teacher = _pair()
    reference = resnet_cifar(8, 10, "cnn", input_shape=SHAPE, name="reference")
    reference.set_weights(teacher.get_weights())
    distiller = Distiller(student, teacher, losses.KernelFeatureLoss(teacher_heads="learn"),
                          alpha=5.0, beta=5.0, teacher_weight_decay=5e-4)
    distiller.compile(_sgd(), _sgd())
    x, y = _batch()
    distiller.train_on_batch(x, y)
    distiller.train_on_batch(x, y)

    optimizer = _sgd()
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses.cross_entropy(y, reference(x, training=True)))
        grads = tape.gradient(loss, reference.trainable_variables)
        grads = [g + 5e-4 * v for g, v in zip(grads, reference.trainable_variables)]
        optimizer.apply_gradients(zip(grads, reference.trainable_variables))
    for got, want in zip(_weights(teacher), _weights(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_kd_loss_would_move_the_teacher_if_it_leaked():
    """Guards the test above: a KD gradient on the teacher is far from zero."""
    student, teacher = _pair()
    x, y = _batch()
    with tf.GradientTape() as tape:
        kd = tf.reduce_mean(losses.kd_loss(student(x), teacher(x, training=True)))
    grads = tape.gradient(kd, teacher.trainable_variables)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in grads if g is not None) > 1e-4


def test_fixed_teacher_and_fixed_teacher_heads_do_not_move():
    student, teacher = _pair()
    feature_loss = losses.KernelFeatureLoss(teacher_heads="fixed")
    distiller = Distiller(student, teacher, feature_loss, alpha=1.0, beta=1.0,
                          teacher_mode="fixed")
    distiller.compile(_sgd())
    before_teacher, before_student = _weights(teacher), _weights(student)
    before_heads = [np.array(w) for h in feature_loss.teacher_heads for w in h.weights]
    student_heads = [np.array(w) for h in feature_loss.student_heads for w in h.weights]
    distiller.train_on_batch(*_batch())
    for got, want in zip(_weights(teacher), before_teacher):
        np.testing.assert_array_equal(got, want)
    for got, want in zip([np.array(w) for h in feature_loss.teacher_heads for w in h.weights],
                         before_heads):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(student), before_student))
    after = [np.array(w) for h in feature_loss.student_heads for w in h.weights]
    assert any(not np.array_equal(a, b) for a, b in zip(after, student_heads))


@pytest.mark.parametrize("method", ["kd", "pkkd", "mmd", "at", "sp", "ann"])
def test_every_method_trains_and_logs(method):
    student, teacher = _pair()
    kwargs = {}
    if method == "ann":
        teacher = None
    elif method != "kd":
        kwargs["feature_loss"] = losses.FEATURE_LOSSES[method]()
        kwargs["beta"] = 1.0
    if teacher is not None:
        kwargs["alpha"] = 1.0
    distiller = Distiller(student, teacher, **kwargs)
    distiller.compile(_sgd(), _sgd() if teacher is not None else None)
    x, y = _batch(16)
    history = distiller.fit(x, y, batch_size=16, epochs=6, verbose=0).history
    assert history["student_ce"][-1] < history["student_ce"][0]  # memorizes 16 images
    assert all(np.isfinite(v) for values in history.values() for v in values)
    if "feature_loss" in kwargs:
        assert "feature_0" in history and "feature_5" in history  # ResNet-8: 6 layer taps
        assert "feature_6" not in history
    if method == "pkkd":
        assert "sigma_a_0" in history and "rho_a_norm_0" in history
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert "student_accuracy" in logs
    assert ("teacher_accuracy" in logs) == (teacher is not None)


def test_inference_is_the_plain_student():
    student, teacher = _pair()
    distiller = Distiller(student, teacher, losses.KernelFeatureLoss(), alpha=1.0, beta=1.0)
    x, _ = _batch()
    np.testing.assert_array_equal(distiller(x), student(x))


@pytest.mark.parametrize("kwargs,message", [
    ({"teacher_mode": "frozen"}, r"`teacher_mode`.*frozen"),
    ({"alpha": -1.0}, r"`alpha`.*-1\.0"),
    ({"beta": float("nan")}, r"`beta`.*nan"),
    ({"temperature": 0.0}, r"`temperature`.*0\.0"),
])
def test_bad_arguments(kwargs, message):
    student, teacher = _pair()
    with pytest.raises(ValueError, match=message):
        Distiller(student, teacher, **kwargs)


def test_feature_loss_needs_a_teacher_and_matching_taps():
    student, teacher = _pair()
    with pytest.raises(ValueError, match="teacher"):
        Distiller(student, None, losses.AttentionLoss())
    other = resnet20(10, "cnn", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="'layer' tap 0 differs: student .* teacher .*16, 16"):
        Distiller(student, other, losses.AttentionLoss())
    with pytest.raises(ValueError, match="teacher_optimizer"):
        Distiller(student, teacher, alpha=1.0).compile(_sgd())


@pytest.mark.parametrize("teacher_mode", ["fixed", "progressive"])
@pytest.mark.parametrize("kernel,rho", [(False, False), (False, True), (True, False),
                                        (True, True)],
                         ids=["kd", "rho_kd", "kernel_kd", "kernel_rho_kd"])
def test_table1_configurations(kernel, rho, teacher_mode):
    keras.utils.set_random_seed(1)
    student = resnet_cifar(8, 10, "ann", input_shape=SHAPE, name="student")
    teacher = resnet_cifar(8, 10, "cnn", input_shape=SHAPE, name="teacher")
    feature_loss = losses.KernelFeatureLoss(kernel=kernel, rho=rho)
    distiller = Distiller(student, teacher, feature_loss, alpha=1.0, beta=1.0,
                          teacher_mode=teacher_mode)
    distiller.compile(_sgd(), _sgd() if teacher_mode == "progressive" else None)
    kinds = {h.map.kind for h in feature_loss.student_heads + feature_loss.teacher_heads}
    assert kinds == ({"laplace", "gaussian"} if kernel else {"identity"})
    assert all((h.rho_layer is not None) == rho for h in feature_loss.student_heads)
    before = _weights(teacher)
    logs = distiller.train_on_batch(*_batch(), return_dict=True)
    assert np.isfinite(logs["feature"]) and logs["feature"] > 0
    moved = any(not np.array_equal(a, b) for a, b in zip(_weights(teacher), before))
    assert moved == (teacher_mode == "progressive")
