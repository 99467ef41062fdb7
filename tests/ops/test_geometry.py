# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`addernet_tf.ops.geometry` against TensorFlow's own convolution geometry and a plain loop."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from addernet_tf.ops import geometry

SIZES = list(itertools.product(range(1, 10), range(1, 5), range(1, 4)))  # size, kernel, stride


def test_same_and_valid_sizes_match_conv2d():
    for size, kernel, stride in SIZES:
        x = tf.zeros([1, size, 1, 1])
        f = tf.zeros([kernel, 1, 1, 1])
        same = tf.nn.conv2d(x, f, [stride, 1], "SAME").shape[1]
        before, after = geometry.same_paddings(size, kernel, stride)
        assert after - before in (0, 1) and min(before, after) >= 0
        assert geometry.output_size(size + before + after, kernel, stride) == same
        # SAME = these explicit pads in TensorFlow's own conv.
        explicit = tf.nn.conv2d(x + 1.0, f + 1.0, [stride, 1],
                                [[0, 0], [before, after], [0, 0], [0, 0]])
        np.testing.assert_array_equal(explicit, tf.nn.conv2d(x + 1.0, f + 1.0, [stride, 1], "SAME"))
        if kernel <= size:
            assert geometry.output_size(size, kernel, stride) == tf.nn.conv2d(
                x, f, [stride, 1], "VALID").shape[1]


def test_same_paddings_takes_tensors():
    for size, kernel, stride in SIZES:
        pads = geometry.same_paddings(tf.constant(size), kernel, stride, maximum=tf.maximum)
        assert [int(p) for p in pads] == list(geometry.same_paddings(size, kernel, stride))


@pytest.mark.parametrize("padding, sizes, expected", [
    ("valid", (5, 6), ((0, 0), (0, 0))),
    ("same", (5, 6), ((1, 1), (0, 1))),
    ((2, 1), (5, 6), ((2, 2), (1, 1))),
])
def test_layer_paddings(padding, sizes, expected):
    assert geometry.layer_paddings(padding, sizes, (3, 3), (2, 2)) == expected


def test_window_sum_visits_every_window_once():
    rng = np.random.default_rng(0)
    xpad = rng.normal(size=(2, 7, 8, 3))
    (kh, kw), (sh, sw) = (3, 2), (2, 3)
    out_h, out_w = geometry.output_size(7, kh, sh), geometry.output_size(8, kw, sw)
    weights = rng.normal(size=(kh, kw))
    got = geometry.window_sum(xpad, (kh, kw), (sh, sw), (out_h, out_w),
                              lambda patch, i, j: patch * weights[i, j])
    expected = np.zeros((2, out_h, out_w, 3))
    for oh, ow, i, j in itertools.product(range(out_h), range(out_w), range(kh), range(kw)):
        expected[:, oh, ow] += xpad[:, oh * sh + i, ow * sw + j] * weights[i, j]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_centered_adder_is_the_adder_plus_its_center():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    center = rng.normal(size=4).astype(np.float32) * 10
    y = geometry.centered_adder(tf.constant(x), tf.constant(w), center, (3, 3), (2, 1), (1, 1))
    xpad = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]).astype(np.float64)
    expected = np.zeros((2, 3, 6, 4))
    for oh, ow in itertools.product(range(3), range(6)):
        window = xpad[:, oh * 2:oh * 2 + 3, ow:ow + 3, :, None]
        expected[:, oh, ow] = -np.abs(window - w).sum(axis=(1, 2, 3)) + center
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("padding, explicit", [
    ("valid", "VALID"), ("same", "SAME"), ((2, 1), [[0, 0], [2, 2], [1, 1], [0, 0]])])
def test_output_shape_matches_conv2d(padding, explicit):
    for height, width, strides in ((7, 8, (2, 2)), (5, 9, (1, 3)), (6, 6, (3, 1))):
        conv = tf.nn.conv2d(tf.zeros([2, height, width, 3]), tf.zeros([3, 2, 3, 5]), strides,
                            explicit)
        assert geometry.output_shape((2, height, width, 3), 5, (3, 2), strides,
                                     padding) == tuple(conv.shape)
