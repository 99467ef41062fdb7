# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`adderize`: ordinary Keras CNNs (functional, Sequential, keras.applications) as adder
networks with PKKD taps, paired by position with their tapped teachers."""

import keras
import numpy as np
import pytest

import addernet_tf
import model_batches
import tiny_cnns
from addernet_tf.layers import Adder2D
from addernet_tf.models import adderize_plan, get_model, tap_layers, tap_like
from addernet_tf.opcount import count_ops
from addernet_tf.trainers import losses
from addernet_tf.trainers.distiller import Distiller


def _actions(model, **kwargs):
    return {d.layer: (d.action, d.reason) for d in adderize_plan(model, **kwargs)}


def test_plan_converts_ordinary_conv2d_and_says_why_it_leaves_the_rest():
    plan = _actions(tiny_cnns.residual())
    assert {name: action for name, (action, _) in plan.items()} == {
        "stem": "kept", "with_bn": "adder", "fused_relu": "adder", "depthwise": "left",
        "dilated": "left", "grouped": "left", "pointwise": "adder", "classifier": "left"}
    assert "first" in plan["stem"][1]
    assert "depthwise" in plan["depthwise"][1]
    assert "dilated" in plan["dilated"][1] and "grouped" in plan["grouped"][1]
    assert "dense" in plan["classifier"][1]
    # keep by name; nothing kept
    assert _actions(tiny_cnns.residual(), keep=("first", "pointwise"))["pointwise"][0] == "kept"
    assert _actions(tiny_cnns.residual(), keep=())["stem"][0] == "adder"


def test_conv1d_and_a_convolutional_classifier():
    inputs = keras.Input((16, 4))
    x = keras.layers.Conv1D(4, 3, name="c1d")(inputs)
    x = keras.layers.Reshape((14, 1, 4))(x)
    x = keras.layers.Conv2D(4, 1, name="middle")(x)
    x = keras.layers.Conv2D(3, (14, 1), name="head")(x)
    plan = _actions(keras.Model(inputs, keras.layers.Flatten()(x)))
    assert plan["c1d"][0] == "left" and "2-D" in plan["c1d"][1]
    assert plan["middle"][0] == "adder"
    assert plan["head"] == ("kept", "the classifier (keep='last')")


def test_converted_layers_keep_their_configuration_get_bn_and_taps():
    source = tiny_cnns.residual()
    lines = []
    student = addernet_tf.adderize(source, name="student", print_fn=lines.append)
    assert student.name == "student"
    assert any(line.startswith("adderize: depthwise: left (depthwise") for line in lines)
    adders = {layer.name: layer for layer in student.layers if isinstance(layer, Adder2D)}
    assert sorted(adders) == ["fused_relu", "pointwise", "with_bn"]
    for name, layer in adders.items():
        conv = source.get_layer(name)
        assert (layer.filters, layer.kernel_size, layer.strides, layer.padding) == (
            conv.filters, conv.kernel_size, conv.strides, conv.padding)
    # BN inserted after the adder layers without one, not after with_bn.
    bns = [layer.name for layer in student.layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert "fused_relu_bn" in bns and "pointwise_bn" in bns and "with_bn_bn" not in bns
    assert student.get_layer("fused_relu_activation").activation is keras.activations.relu
    taps = tap_layers(student)
    assert [t.name for t in taps] == ["with_bn_tap", "fused_relu_tap", "pointwise_tap"]
    assert [t.fan_in for t in taps] == [3 * 3 * 8, 3 * 3 * 8, 1 * 1 * 8]
    assert student.output_shape == source.output_shape


def test_teacher_form_is_the_same_function_with_the_same_taps():
    source = tiny_cnns.residual()
    x, _ = model_batches.digits_batch(4, 16)
    teacher = addernet_tf.adderize(source, network="cnn", copy_weights=True)
    np.testing.assert_allclose(teacher(x), source(x), rtol=1e-5, atol=1e-5)
    student = addernet_tf.adderize(source, copy_weights=True)
    assert [t.output.shape for t in tap_layers(student)] == [
        t.output.shape for t in tap_layers(teacher)]
    np.testing.assert_array_equal(student.get_layer("with_bn").kernel,
                                  source.get_layer("with_bn").kernel)
    fresh = addernet_tf.adderize(source)
    assert not np.array_equal(fresh.get_layer("stem").kernel, source.get_layer("stem").kernel)


def test_op_count_of_one_converted_layer_by_hand():
    student = addernet_tf.adderize(tiny_cnns.residual())
    rows = {row.name: row for row in count_ops(student).layers}
    pairs = 16 * 16 * 8 * (3 * 3 * 8)  # outputs × (kh·kw·c_in)
    assert (rows["fused_relu"].kind, rows["fused_relu"].mul) == ("adder", 0)
    assert rows["fused_relu"].add == 2 * pairs
    stem = 16 * 16 * 8 * (3 * 3 * 3)
    assert (rows["stem"].kind, rows["stem"].mul) == ("mult", stem)


def test_bad_models_and_arguments():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed Subclassed: rebuild it functionally"):
        addernet_tf.adderize(Subclassed())
    with pytest.raises(ValueError, match="`keep` must hold .* got 'nope'"):
        addernet_tf.adderize(tiny_cnns.residual(), keep=("nope",))
    with pytest.raises(ValueError, match="`network` must be one of"):
        addernet_tf.adderize(tiny_cnns.residual(), network="mult")
    only_stem = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                                  keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no Conv2D that adderize can convert"):
        addernet_tf.adderize(only_stem)
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="Sequential model that is not built"):
        addernet_tf.adderize(unbuilt)
    inner = tiny_cnns.sequential()
    outer = keras.Sequential([keras.Input((16, 16, 3)), inner])
    with pytest.raises(ValueError, match="nests the model 'sequential'"):
        addernet_tf.adderize(outer)
    with pytest.raises(ValueError, match="'keras:Nope': keras.applications has no 'Nope'"):
        get_model("keras:Nope")
    with pytest.raises(ValueError, match="'tiny_cnns:nope': module 'tiny_cnns' has no"):
        get_model("tiny_cnns:nope")


def test_tap_like_shares_the_original_layers():
    cnn = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="a"),
                            keras.layers.Conv2D(4, 3, name="b"), keras.layers.BatchNormalization(),
                            keras.layers.Conv2D(4, 3, name="c"), keras.layers.Flatten(),
                            keras.layers.Dense(2)])
    student = addernet_tf.adderize(cnn)
    view = tap_like(cnn, student)
    assert [t.name for t in tap_layers(view)] == ["b_tap", "c_tap"]
    assert view.get_layer("b") is cnn.get_layer("b")
    x, _ = model_batches.digits_batch(2, 16)
    np.testing.assert_array_equal(view(x), cnn(x))
    with pytest.raises(ValueError, match="reads layer 'b', which `model` 'other' does not have"):
        tap_like(
            keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3)], name="other"),
            student)


def test_distiller_names_the_first_tap_that_differs():
    student = addernet_tf.adderize(tiny_cnns.residual())
    with pytest.raises(ValueError, match="layer 'fused_relu' of `model` 'residual' has a fused "
                                         "activation.*network='cnn', copy_weights=True"):
        Distiller(student, tiny_cnns.residual(), losses.AttentionLoss())
    with pytest.raises(ValueError,
                       match="the student has no 'block' taps: .*adderize makes 'layer' taps"):
        Distiller(student, tiny_cnns.residual(), losses.AttentionLoss(), tap_kind="block")
    shorter = addernet_tf.adderize(tiny_cnns.residual(), keep=("first", "pointwise"),
                                   network="cnn")
    with pytest.raises(ValueError, match="3 'layer' taps and the teacher 2: tap 2 "
                                         r"\('pointwise_tap'\) is the student's alone"):
        Distiller(student, shorter, losses.AttentionLoss())
    wider = addernet_tf.adderize(tiny_cnns.residual(input_shape=(8, 8, 3)), network="cnn")
    with pytest.raises(ValueError, match=r"'layer' tap 0 differs: student 'with_bn_tap' "
                                         r"\(None, 16, 16, 8\), teacher 'with_bn_tap' "
                                         r"\(None, 8, 8, 8\)"):
        Distiller(student, wider, losses.AttentionLoss())


# One converted layer per model, its adder pairs by hand: OH·OW·filters·(kh·kw·c_in).
# residual with_bn: 16×16 SAME 3×3, 8 → 8. sequential c2: c1's VALID 3×3 leaves
# 14×14, stride 2 SAME → 7×7, 8 → 8. MobileNetV2 (α 0.35) Conv_1: 1×1 at 32/32 = 1×1,
# 112 (= 320·0.35 rounded to a multiple of 8) → 1280 (kept at α < 1).
HAND_COUNTS = {"tiny_cnns:residual": ("with_bn", 16 * 16 * 8 * (3 * 3 * 8)),
               "tiny_cnns:sequential": ("c2", 7 * 7 * 8 * (3 * 3 * 8)),
               "keras:MobileNetV2": ("Conv_1", 1 * 1 * 1280 * (1 * 1 * 112))}


@pytest.mark.parametrize("spec,size", [("tiny_cnns:residual", 16), ("tiny_cnns:sequential", 16),
                                       ("keras:MobileNetV2", 32)])
def test_pkkd_trains_an_adderized_model_on_digits(spec, size):
    keras.utils.set_random_seed(0)
    kwargs = dict(num_classes=10, input_shape=(size, size, 3))
    if spec == "keras:MobileNetV2":  # the smallest width: a few steps on 2 cores
        cnn = keras.applications.MobileNetV2(weights=None, classifier_activation=None,
                                             classes=10, input_shape=(size, size, 3), alpha=0.35)
        # The original CNN is the teacher: Distiller taps its layers in place.
        student, teacher = addernet_tf.adderize(cnn), cnn
        assert sum(isinstance(layer, Adder2D) for layer in student.layers) == 34
    else:
        student = get_model(spec, network="ann", **kwargs)
        teacher = get_model(spec, network="cnn", **kwargs)
    assert tap_layers(student) and not any(isinstance(layer, Adder2D) for layer in teacher.layers)
    layer, pairs = HAND_COUNTS[spec]
    row = {row.name: row for row in count_ops(student).layers}[layer]
    assert (row.kind, row.macs, row.mul, row.add) == ("adder", pairs, 0, 2 * pairs)
    feature_loss = losses.KernelFeatureLoss()
    distiller = Distiller(student, teacher, feature_loss, alpha=1.0, beta=1.0)
    assert distiller.num_taps == len(tap_layers(student))
    distiller.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      keras.optimizers.SGD(0.01, momentum=0.9))
    x, y = model_batches.digits_batch(32, size)
    before = [[w.copy() for w in net.get_weights()] for net in (student, teacher)]
    history = distiller.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["student_loss"])) and np.all(np.isfinite(history["feature"]))
    assert history["feature"][0] > 0
    for net, old in zip((student, teacher), before):
        changed = [not np.array_equal(a, b) for a, b in zip(old, net.get_weights())]
        assert sum(changed) > len(changed) // 2, net.name


def test_trainer_and_export_take_an_adderized_model(tmp_path):
    from addernet_tf.export import formats, litert, serving
    from addernet_tf.export.run import load_student, read_run, uint8_images
    from addernet_tf.trainers import flags as trainer_flags
    from addernet_tf.trainers import pkkd

    run = str(tmp_path / "run")
    config = trainer_flags.defaults(
        dataset="digits", image_size=16, model="tiny_cnns:residual", method="pkkd", epochs=1,
        steps_per_epoch=3, batch_size=16, bn_recalibration_batches=2, verbose=0, model_dir=run)
    summary = pkkd.train(config)
    assert summary["flags"]["model"] == "tiny_cnns:residual"
    # By hand: multiplications of the stem, depthwise, dilated, grouped (2 groups of 4
    # input channels) and dense layers; two additions per adder pair, one per MAC.
    mults = 16 * 16 * 8 * (27 + 9 + 72 + 36) + 16 * 10
    adder_pairs = 2 * 16 * 16 * 8 * 72 + 8 * 8 * 16 * 8
    assert summary["student_ops"]["mul"] == mults
    assert summary["student_ops"]["add"] == mults + 2 * adder_pairs
    out = str(tmp_path / "student.tflite")
    formats.export(run, "tflite", out)
    info = read_run(run)
    images, _ = uint8_images(info, "test", 8, None)
    got = litert.probabilities(out, images, str(tmp_path))
    logits = load_student(run).predict(serving.normalize(images, info), verbose=0)
    want = np.exp(logits - logits.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.log(got), np.log(want), atol=1e-4)


def test_a_keras_application_by_name_is_built_without_weights_and_gives_logits():
    student = get_model("keras:MobileNetV2", num_classes=7, network="ann", input_shape=(32, 32, 3),
                        name="student")
    teacher = get_model("keras:MobileNetV2", num_classes=7, network="cnn", input_shape=(32, 32, 3))
    assert student.name == "student" and student.output_shape == (None, 7)
    assert sum(isinstance(layer, Adder2D) for layer in student.layers) == 34
    assert len(tap_layers(teacher)) == 34
    x, _ = model_batches.digits_batch(2, 32)
    logits = teacher(x)
    assert not np.allclose(np.sum(logits, -1), 1.0)  # no softmax on top
