# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Input pipelines: digits (real, offline), tfds sets through `tfds.testing.mock_data`,
the validation carve, downloads (probe and fail-fast errors) for a data set that is not
prepared, and argument checks.

No test reaches the network: an autouse fixture points the download probe
(ADDERNET_TF_DOWNLOAD_PROBE) at a local port that refuses connections, for this
process and the child processes it starts."""

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from addernet_tf import data

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465])
CIFAR_STD = np.array([0.2023, 0.1994, 0.2010])
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def closed_port():
    """A local TCP port that refuses connections: bound (so nothing else takes it), never
    listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch, closed_port):
    """Any download probe goes to the closed local port, so nothing is ever downloaded."""
    monkeypatch.setenv("ADDERNET_TF_DOWNLOAD_PROBE", f"127.0.0.1:{closed_port}")
    monkeypatch.delenv("ADDERNET_TF_NO_DOWNLOAD", raising=False)
    return closed_port


def _digests(images):
    """One hashable key per image, to compare splits example by example."""
    return [np.round(image, 4).tobytes() for image in images]


def _arrays(ds):
    """All (images, labels) of an unbatched or batched dataset as numpy arrays."""
    images, labels = zip(*ds.as_numpy_iterator())
    if np.ndim(labels[0]) == 0:
        return np.stack(images), np.array(labels)
    return np.concatenate(images), np.concatenate(labels)


# ----------------------------------------------------------------------------
# digits


@pytest.mark.parametrize("split,image_size", [("train", None), ("test", None), ("test", 16)])
def test_digits_shapes_dtypes_labels(split, image_size):
    info = data.dataset_info("digits", image_size)
    images, labels = _arrays(data.load("digits", split, batch_size=100, image_size=image_size))
    expected = info.train_examples if split == "train" else info.test_examples
    assert images.shape == (expected,) + info.image_shape
    assert info.image_shape == ((image_size or 32),) * 2 + (3,)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert labels.min() == 0 and labels.max() == info.num_classes - 1 == 9
    # Gray repeated to three channels.
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_digits_split_is_stratified_disjoint_and_fixed():
    _, labels, train_idx, test_idx = data._digits_split()
    assert (len(train_idx), len(test_idx)) == (1437, 360)
    assert not set(train_idx) & set(test_idx)
    assert set(train_idx) | set(test_idx) == set(range(1797))
    np.testing.assert_allclose(np.bincount(labels[test_idx]) / np.bincount(labels), 0.2, atol=0.01)
    # The split never depends on `seed`; an unshuffled load follows it.
    _, test_a = _arrays(data.load("digits", "test", batch_size=64, seed=1))
    _, test_b = _arrays(data.load("digits", "test", batch_size=64, seed=2))
    np.testing.assert_array_equal(test_a, labels[test_idx])
    np.testing.assert_array_equal(test_a, test_b)


def test_digits_train_split_is_normalized_per_channel():
    images, _ = _arrays(data.load("digits", "train", batch_size=None, augment=False, shuffle=False))
    pixels = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(pixels.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(pixels.std(0), 1.0, atol=1e-5)
    # The test split uses the train split's statistics: close, not exact.
    test, _ = _arrays(data.load("digits", "test", batch_size=None))
    assert abs(test.mean()) < 0.1 and abs(test.std() - 1) < 0.1


def test_digits_augmentation_translates_and_keeps_shape():
    kwargs = dict(batch_size=None, image_size=16, shuffle=False)
    plain, labels = _arrays(data.load("digits", "train", augment=False, **kwargs))
    moved, moved_labels = _arrays(data.load("digits", "train", augment=True, seed=0, **kwargs))
    assert moved.shape == plain.shape and moved.dtype == np.float32
    np.testing.assert_array_equal(labels, moved_labels)
    changed = np.any(moved != plain, axis=(1, 2, 3))
    assert changed.mean() > 0.5
    # A pure shift by at most 16 // 16 = 1 pixel, background (raw 0) filling in.
    background = plain.min()
    padded = np.pad(plain, [(0, 0), (1, 1), (1, 1), (0, 0)], constant_values=background)
    candidates = np.stack([padded[:, dy:dy + 16, dx:dx + 16] for dy in range(3) for dx in range(3)])
    assert np.all(np.any(np.all(np.isclose(candidates, moved), axis=(2, 3, 4)), axis=0))


def test_seed_reproduces_and_each_epoch_redraws():
    def first_batch(ds):
        return next(iter(ds))

    a = data.load("digits", "train", batch_size=32, seed=7)
    b = data.load("digits", "train", batch_size=32, seed=7)
    xa, ya = first_batch(a)
    xb, yb = first_batch(b)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    x2, y2 = first_batch(a)  # a second epoch: new order, new crops
    assert not np.array_equal(ya, y2)
    # Under `repeat`, the second pass is reshuffled too.
    repeated = data.load("digits", "test", batch_size=None, seed=7, repeat=True, shuffle=True)
    labels = np.array([y for _, y in repeated.take(720).as_numpy_iterator()])
    assert not np.array_equal(labels[:360], labels[360:])
    np.testing.assert_array_equal(np.sort(labels[:360]), np.sort(labels[360:]))


def test_batching_options():
    unbatched = data.load("digits", "test", batch_size=None)
    assert unbatched.element_spec[0].shape == (32, 32, 3)
    assert unbatched.element_spec[1].shape == ()
    dropped = data.load("digits", "test", batch_size=100, drop_remainder=True)
    assert dropped.element_spec[0].shape == (100, 32, 32, 3)
    assert len(list(dropped)) == 3  # 360 examples
    kept = data.load("digits", "test", batch_size=100)
    assert kept.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert [len(y) for _, y in kept] == [100, 100, 100, 60]


# ----------------------------------------------------------------------------
# The validation carve, on digits (real data, offline)


def _unshuffled(split, validation_split, **kwargs):
    kwargs = dict(dict(batch_size=None, augment=False, shuffle=False), **kwargs)
    return _arrays(data.load("digits", split, validation_split=validation_split, **kwargs))


@pytest.mark.parametrize("validation_split", [0.1, 0.25])
def test_digits_validation_partitions_the_train_split(validation_split):
    info = data.dataset_info("digits", validation_split=validation_split)
    assert info.validation_examples == round(validation_split * 1437)
    assert info.train_examples + info.validation_examples == 1437 and info.test_examples == 360
    pool, pool_labels = _unshuffled("train", 0.0)
    train, train_labels = _unshuffled("train", validation_split)
    valid, valid_labels = _unshuffled("validation", validation_split)
    test, _ = _unshuffled("test", validation_split)
    assert len(train) == info.train_examples and len(valid) == info.validation_examples
    assert valid.shape[1:] == info.image_shape and valid_labels.dtype == np.int32
    # The two parts are disjoint and together exactly the whole train split; test is apart.
    train_keys, valid_keys, test_keys = map(set, map(_digests, (train, valid, test)))
    assert len(train_keys) == len(train) and len(valid_keys) == len(valid)
    assert not train_keys & valid_keys and not (train_keys | valid_keys) & test_keys
    assert train_keys | valid_keys == set(_digests(pool))
    labels_of = dict(zip(_digests(pool), pool_labels))
    assert [labels_of[key] for key in _digests(valid)] == list(valid_labels)
    # Indices too; "train" keeps the train split's order, less the carved examples.
    _, labels, train_idx, test_idx = data._digits_split()
    valid_idx = data._digits_indices("validation", validation_split)
    rest_idx = data._digits_indices("train", validation_split)
    assert not set(valid_idx) & set(rest_idx) and not set(valid_idx) & set(test_idx)
    np.testing.assert_array_equal(rest_idx, [i for i in train_idx if i not in set(valid_idx)])
    np.testing.assert_array_equal(valid_labels, labels[valid_idx])
    # Stratified: every class, in the train split's proportions.
    counts = np.bincount(valid_labels, minlength=10)
    expected = np.bincount(labels[train_idx]) * validation_split
    assert counts.min() > 0 and np.all(np.abs(counts - expected) <= 1)


def test_digits_validation_ignores_seed_and_is_deterministic():
    keys = {}
    for seed in (0, 1, 2):
        for split in ("train", "validation"):
            images, _ = _arrays(data.load("digits", split, batch_size=64, seed=seed,
                                          shuffle=True, augment=False, validation_split=0.2))
            keys[seed, split] = set(_digests(images))
    for seed in (1, 2):
        assert keys[seed, "train"] == keys[0, "train"]
        assert keys[seed, "validation"] == keys[0, "validation"]
        assert not keys[seed, "train"] & keys[0, "validation"]
    # Recomputed from scratch, the carve is the same.
    before = data._digits_indices("validation", 0.2)
    data._digits_indices.cache_clear()
    np.testing.assert_array_equal(data._digits_indices("validation", 0.2), before)


def test_digits_validation_is_read_like_test():
    """No augmentation and no shuffling by default: any seed gives the same stream, the
    train split's images with their test-time preprocessing."""
    a, a_labels = _arrays(data.load("digits", "validation", batch_size=50, validation_split=0.2,
                                    seed=3))
    b, b_labels = _arrays(data.load("digits", "validation", batch_size=50, validation_split=0.2,
                                    seed=4, repeat=True).take(6))
    np.testing.assert_array_equal(a, b[:len(a)])  # 287 examples, then the same again
    np.testing.assert_array_equal(a_labels, b_labels[:len(a)])
    np.testing.assert_array_equal(a[:300 - len(a)], b[len(a):])
    plain, _ = _unshuffled("validation", 0.2)
    np.testing.assert_array_equal(a, plain)
    # Asked for, it is shuffled and augmented like "train".
    moved, _ = _unshuffled("validation", 0.2, augment=True, seed=0)
    assert moved.shape == plain.shape and not np.array_equal(moved, plain)
    # The normalization does not depend on the carve.
    assert data.normalization("digits") == data.normalization("digits", 32)


def test_validation_carve_sizes_and_fallback():
    # At least one example, at least one left; halves round up.
    assert data.dataset_info("digits", validation_split=1e-6)[2:] == (1436, 360, 1)
    assert data.dataset_info("digits", validation_split=0.9999)[2:] == (1, 360, 1436)
    assert data.dataset_info("digits", validation_split=0.5)[2:] == (718, 360, 719)
    assert data.dataset_info("digits", validation_split=0.0)[2:] == (1437, 360, 0)
    assert data.dataset_info("cifar10", validation_split=0.1)[2:] == (45_000, 10_000, 5_000)
    assert data.dataset_info("imagenet2012", validation_split=0.01)[2:] == (
        1_268_355, 50_000, 12_812)
    # Fewer validation examples than classes: a random subset instead of a stratified one.
    labels = np.repeat(np.arange(10), 5)
    rest, carved = data._carve(labels, 0.1)
    assert len(carved) == 5 and len(rest) == 45 and not set(rest) & set(carved)
    np.testing.assert_array_equal(np.sort(np.concatenate([rest, carved])), np.arange(50))
    # A class with one example also forbids stratifying; stratified otherwise.
    assert len(data._carve(np.array([0, 1, 1, 1, 2, 2]), 0.5)[1]) == 3
    _, carved = data._carve(labels, 0.4)
    np.testing.assert_array_equal(np.bincount(labels[carved]), [2] * 10)
    with pytest.raises(ValueError, match="at least 2 training examples"):
        data._carve(np.array([3]), 0.5)


@pytest.mark.parametrize("validation_split", [-0.1, 1.0, 1.5, "0.1", True, float("nan"), None])
def test_bad_validation_split(validation_split):
    for call in (lambda: data.load("digits", "validation", validation_split=validation_split),
                 lambda: data.dataset_info("digits", validation_split=validation_split)):
        with pytest.raises(ValueError, match="`validation_split`") as error:
            call()
        assert repr(validation_split) in str(error.value)


def test_validation_split_needs_a_fraction():
    for name in ("digits", "cifar10"):  # refused before any tfds access
        with pytest.raises(ValueError, match="`split` 'validation'.*`validation_split` > 0"):
            data.load(name, "validation", data_dir="/nonexistent")


# ----------------------------------------------------------------------------
# tfds sets, mocked: `mock_data` supplies random uint8 examples (the same ones
# for every split) from a data_dir that looks prepared (tfds' own metadata).

NUM_MOCK = 6


@pytest.fixture
def mocked(tmp_path):
    def mock(name):
        builder = tfds.builder(name, data_dir=os.fspath(tmp_path))
        os.makedirs(builder.data_dir)
        builder.info.write_to_directory(builder.data_dir)
        return tfds.testing.mock_data(num_examples=NUM_MOCK, data_dir=os.fspath(tmp_path))

    return mock, os.fspath(tmp_path)


def _raw(name, data_dir, **kwargs):
    """The mocked examples as tfds gives them: uint8 images (a list), int64 labels."""
    builder = tfds.builder(name, data_dir=data_dir)
    images, labels = zip(*builder.as_dataset(split="test", as_supervised=True, **kwargs)
                         .as_numpy_iterator())
    return list(images), np.array(labels)


def _shifted_and_flipped(plain, pad, background):
    """Every crop of `plain` padded by `pad`, and its mirror: [K, N, H, W, C]."""
    size = plain.shape[1]
    padded = np.pad(plain, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=0)
    padded = padded + np.pad(np.zeros_like(plain), [(0, 0), (pad, pad), (pad, pad), (0, 0)],
                             constant_values=1) * background
    crops = [padded[:, dy:dy + size, dx:dx + size]
             for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return np.stack(crops + [crop[:, :, ::-1] for crop in crops])


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_mocked(mocked, name, num_classes):
    mock, data_dir = mocked
    with mock(name):
        raw, raw_labels = _raw(name, data_dir)
        test, test_labels = _arrays(data.load(name, "test", batch_size=4, data_dir=data_dir))
        train, train_labels = _arrays(
            data.load(name, "train", batch_size=4, data_dir=data_dir, seed=0, shuffle=False))
    assert data.dataset_info(name) == data.DatasetInfo(num_classes, (32, 32, 3), 50_000, 10_000)
    assert test.shape == train.shape == (NUM_MOCK, 32, 32, 3)
    assert test.dtype == train.dtype == np.float32 and test_labels.dtype == np.int32
    assert np.all((test_labels >= 0) & (test_labels < num_classes))
    np.testing.assert_array_equal(test_labels, raw_labels)
    np.testing.assert_array_equal(train_labels, raw_labels)
    # Eval: exactly (x / 255 - mean) / std.
    plain = (np.stack(raw) / 255.0 - CIFAR_MEAN) / CIFAR_STD
    np.testing.assert_allclose(test, plain, atol=1e-5)
    # Train: each image a 4-pixel-padded (black) crop of the original, maybe mirrored.
    assert not np.allclose(train, plain)
    candidates = _shifted_and_flipped(plain, 4, -CIFAR_MEAN / CIFAR_STD)
    matches = np.all(np.isclose(candidates, train, atol=1e-5), axis=(2, 3, 4))
    assert np.all(matches.any(axis=0))


def test_mnist_mocked(mocked):
    mock, data_dir = mocked
    with mock("mnist"):
        raw, raw_labels = _raw("mnist", data_dir)
        test, test_labels = _arrays(data.load("mnist", "test", batch_size=None, data_dir=data_dir))
        train, _ = _arrays(data.load("mnist", "train", batch_size=None, data_dir=data_dir,
                                     seed=0, shuffle=False))
        small, _ = _arrays(data.load("mnist", "test", batch_size=None, image_size=16,
                                     data_dir=data_dir))
    raw = np.stack(raw)
    assert raw.shape == (NUM_MOCK, 28, 28, 1)
    assert test.shape == train.shape == (NUM_MOCK, 32, 32, 3)
    assert small.shape == (NUM_MOCK, 16, 16, 3)
    assert data.dataset_info("mnist").image_shape == (32, 32, 3)
    np.testing.assert_array_equal(test_labels, raw_labels)
    assert np.all((test_labels >= 0) & (test_labels < 10))
    # Eval: centered zero padding 28 -> 32, then (x / 255 - mean) / std on 3 channels.
    padded = np.pad(raw / 255.0, [(0, 0), (2, 2), (2, 2), (0, 0)])
    plain = np.repeat((padded - MNIST_MEAN) / MNIST_STD, 3, axis=-1)
    np.testing.assert_allclose(test, plain, atol=1e-5)
    # Train: shifted by up to 2 pixels, never mirrored.
    assert not np.allclose(train, plain)
    candidates = _shifted_and_flipped(plain, 2, -MNIST_MEAN / MNIST_STD)[:25]
    matches = np.all(np.isclose(candidates, train, atol=1e-5), axis=(2, 3, 4))
    assert np.all(matches.any(axis=0))


def test_imagenet_mocked(mocked):
    mock, data_dir = mocked
    with mock("imagenet2012"):
        _, raw_labels = _raw("imagenet2012", data_dir)  # small random-sized images
        test, test_labels = _arrays(data.load("imagenet2012", "test", batch_size=None,
                                              image_size=64, data_dir=data_dir))
        train, train_labels = _arrays(data.load("imagenet2012", "train", batch_size=3,
                                                data_dir=data_dir, seed=0, shuffle=False))
    assert data.dataset_info("imagenet2012").image_shape == (224, 224, 3)
    assert test.shape == (NUM_MOCK, 64, 64, 3) and train.shape == (NUM_MOCK, 224, 224, 3)
    assert test.dtype == train.dtype == np.float32 and test_labels.dtype == np.int32
    np.testing.assert_array_equal(test_labels, raw_labels)
    np.testing.assert_array_equal(train_labels, raw_labels)
    assert np.all((test_labels >= 0) & (test_labels < 1000))
    # Normalized with ImageNet's constants: values stay within the [0, 1] image's bounds.
    for images in (test, train):
        low, high = -IMAGENET_MEAN / IMAGENET_STD, (1 - IMAGENET_MEAN) / IMAGENET_STD
        assert np.all(images >= low - 1e-4) and np.all(images <= high + 1e-4)


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_small_tfds_validation_mocked(mocked, name):
    """The carve over the stored train order: 6 mocked examples, f = 0.5 -> 3 + 3."""
    mock_, data_dir = mocked
    kwargs = dict(batch_size=None, data_dir=data_dir, validation_split=0.5)
    with mock_(name):
        raw, raw_labels = _raw(name, data_dir)  # every mocked split holds the same examples
        valid, valid_labels = _arrays(data.load(name, "validation", seed=1, **kwargs))
        train, train_labels = _arrays(data.load(name, "train", augment=False, shuffle=False,
                                                **kwargs))
        shuffled, _ = _arrays(data.load(name, "train", augment=False, seed=2, **kwargs))
        test, _ = _arrays(data.load(name, "test", **kwargs))
    rest, carved = data._carve(raw_labels, 0.5)
    assert len(rest) == len(carved) == 3
    # "validation" is exactly the carved examples with test-time preprocessing, in
    # order; `test` is every mocked example, preprocessed so.
    assert len(raw) == len(test) == NUM_MOCK
    np.testing.assert_array_equal(valid, test[carved])
    np.testing.assert_array_equal(valid_labels, raw_labels[carved])
    np.testing.assert_array_equal(train, test[rest])
    np.testing.assert_array_equal(train_labels, raw_labels[rest])
    assert not set(_digests(valid)) & set(_digests(train))
    assert set(_digests(shuffled)) == set(_digests(train))


def test_imagenet_validation_slices_train_mocked(mocked):
    """ImageNet carves by tfds slicing; the mock ignores slices, so check what is asked."""
    mock_, data_dir = mocked
    with mock_("imagenet2012"):
        as_dataset = tfds.core.DatasetBuilder.as_dataset
        with mock.patch.object(tfds.core.DatasetBuilder, "as_dataset", autospec=True,
                               side_effect=as_dataset) as spy:
            for split in ("validation", "train", "test"):
                images, _ = _arrays(data.load("imagenet2012", split, batch_size=None,
                                              image_size=32, data_dir=data_dir,
                                              validation_split=0.01, seed=0))
                assert images.shape == (NUM_MOCK, 32, 32, 3)
            data.load("imagenet2012", "train", data_dir=data_dir)
    # No split sizes in the mocked metadata: k from the published 1,281,167.
    assert [call.kwargs["split"] for call in spy.call_args_list] == [
        "train[:12812]", "train[12812:]", "validation", "train"]


def test_imagenet_eval_resizes_shorter_side_then_center_crops():
    jpeg = tf.io.encode_jpeg(tf.cast(tf.random.uniform([60, 90, 3], 0, 255), tf.uint8), quality=100)
    image, label = data._imagenet_eval_fn(224)(jpeg, tf.constant(3, tf.int64), None)
    assert image.shape == (224, 224, 3) and label.dtype == tf.int32
    decoded = tf.image.decode_jpeg(jpeg, channels=3)
    expected = tf.image.resize(decoded, (256, 384), antialias=True)[16:240, 80:304] / 255.0
    np.testing.assert_allclose(image, (expected - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-4)


# ----------------------------------------------------------------------------
# A data set that is not prepared: downloaded after a probe of its host, or
# refused at once. The fail-fast checks run in a subprocess so a hang fails
# instead of blocking; the autouse fixture's closed port stands for a machine
# without network.

_MISSING_SCRIPT = r"""
import json, os, sys, time
from addernet_tf import data
data_dir, manual_dir = sys.argv[1], sys.argv[2]
out = {}
for key, call, no_download in [
        ("cifar10", lambda: data.load("cifar10", "train", batch_size=8, data_dir=data_dir), ""),
        ("mnist", lambda: data.load("mnist", "test", data_dir=data_dir, validation_split=0.1), ""),
        ("prepare", lambda: data.prepare("cifar100", data_dir=data_dir), ""),
        ("off", lambda: data.load("mnist", data_dir=data_dir, download=False), ""),
        ("prepare_off", lambda: data.prepare("cifar10", data_dir, download=False), ""),
        ("env_off", lambda: data.load("cifar100", data_dir=data_dir), "1"),
        ("imagenet2012", lambda: data.load("imagenet2012", data_dir=data_dir), ""),
        ("imagenet_manual", lambda: data.load("imagenet2012", data_dir=data_dir,
                                              manual_dir=manual_dir), "")]:
    os.environ["ADDERNET_TF_NO_DOWNLOAD"] = no_download
    start = time.time()
    try:
        call()
        out[key] = ["no error", "", 0]
    except Exception as error:
        out[key] = [type(error).__name__, str(error), time.time() - start]
print("RESULT" + json.dumps(out))
"""


def test_missing_dataset_fails_fast_without_download(tmp_path, no_real_network):
    data_dir, manual_dir = tmp_path / "tfds", tmp_path / "manual"
    data_dir.mkdir()
    manual_dir.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    assert env["ADDERNET_TF_DOWNLOAD_PROBE"] == f"127.0.0.1:{no_real_network}"
    proc = subprocess.run([sys.executable, "-c", _MISSING_SCRIPT, str(data_dir), str(manual_dir)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    for key, (kind, message, seconds) in out.items():
        assert kind == "ValueError", (key, kind, message)
        assert seconds < 5, (key, seconds)
        assert "\n" not in message, key
    # Downloads on, host unreachable: says which host, and how to prepare it elsewhere.
    for key, name in [("cifar10", "cifar10"), ("mnist", "mnist"), ("prepare", "cifar100")]:
        message = out[key][1]
        assert f"'{name}' is not prepared" in message and str(data_dir) in message
        assert f"could not connect to 127.0.0.1:{no_real_network}" in message
        assert "ConnectionRefusedError" in message
        assert f"tfds build {name} --data_dir={data_dir}" in message and "--data_dir" in message
    # Downloads off: no probe at all.
    for key, name, why in [("off", "mnist", "download=False"),
                           ("prepare_off", "cifar10", "download=False"),
                           ("env_off", "cifar100", "ADDERNET_TF_NO_DOWNLOAD=1")]:
        message = out[key][1]
        assert f"'{name}' is not prepared" in message and f"downloads are off ({why})" in message
        assert f"tfds build {name} --data_dir={data_dir}" in message
        assert "could not connect" not in message
    message = out["imagenet2012"][1]
    assert "'imagenet2012' is not prepared" in message and str(data_dir) in message
    assert "ILSVRC2012_img_train.tar" in message and "manual_dir" in message
    assert "never downloads" in message and "could not connect" not in message
    message = out["imagenet_manual"][1]
    assert "`manual_dir`" in message and str(manual_dir) in message
    assert "ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in message
    # Nothing was fetched or generated.
    assert not (data_dir / "downloads").exists()
    assert not list(data_dir.rglob("*.json")) and not list(data_dir.rglob("*.tfrecord*"))


def test_download_probe_targets(monkeypatch):
    """The hosts tfds' own metadata names, or the environment's proxy; never contacted here."""
    for variable in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.upper(), raising=False)
    monkeypatch.delenv("ADDERNET_TF_DOWNLOAD_PROBE")

    def targets(name):
        return [(host, port) for host, port, _ in
                data._probe_targets(name, tfds.builder(name, data_dir="/nonexistent"))]

    assert targets("cifar10") == targets("cifar100") == [("www.cs.toronto.edu", 443)]
    assert targets("mnist") == [("storage.googleapis.com", 443)]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert targets("mnist") == [("proxy.example", 3128)]
    monkeypatch.setenv("NO_PROXY", ".toronto.edu")
    assert targets("cifar10") == [("www.cs.toronto.edu", 443)]
    monkeypatch.setenv("ADDERNET_TF_DOWNLOAD_PROBE", "a.example:1, [::1]:2,a.example:1")
    assert targets("mnist") == [("a.example", 1), ("::1", 2)]
    for bad in ("a.example", "a.example:http", ":80", "a.example:70000"):
        monkeypatch.setenv("ADDERNET_TF_DOWNLOAD_PROBE", bad)
        with pytest.raises(ValueError, match="ADDERNET_TF_DOWNLOAD_PROBE"):
            targets("mnist")


def test_download_probe_gives_up_on_time(monkeypatch):
    """A connection (or a name lookup) that never answers is abandoned at the deadline."""
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.time()
    try:
        failed = data._unreachable([("a.example", 443, "a.example:443")], 0.3)
    finally:
        release.set()
    assert time.time() - start < 2
    assert failed == ("a.example:443", "no answer within 0.3 s")
    assert data._PROBE_TIMEOUT_S <= 5


def test_downloads_after_a_successful_probe(tmp_path, monkeypatch):
    """With the probe answered (a local listening socket), tfds' download_and_prepare runs;
    mocked here, so nothing is fetched."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    monkeypatch.setenv("ADDERNET_TF_DOWNLOAD_PROBE", f"127.0.0.1:{server.getsockname()[1]}")
    data_dir = os.fspath(tmp_path)  # empty: not prepared
    calls = []
    try:
        with tfds.testing.mock_data(num_examples=NUM_MOCK, data_dir=data_dir):
            with mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare",
                                   autospec=True, side_effect=lambda *a, **k: calls.append(a)):
                images, _ = _arrays(data.load("cifar10", "test", data_dir=data_dir))
                assert images.shape == (NUM_MOCK, 32, 32, 3) and len(calls) == 1
                data.prepare("mnist", data_dir=data_dir)
                assert len(calls) == 2 and calls[1][0].name == "mnist"
                with pytest.raises(ValueError, match=r"downloads are off \(download=False\)"):
                    data.load("cifar10", data_dir=data_dir, download=False)
                for value in ("1", "true", " YES "):
                    monkeypatch.setenv("ADDERNET_TF_NO_DOWNLOAD", value)
                    with pytest.raises(ValueError, match="downloads are off"):
                        data.prepare("cifar10", data_dir=data_dir)
                monkeypatch.setenv("ADDERNET_TF_NO_DOWNLOAD", "0")
                data.prepare("cifar10", data_dir=data_dir)
                assert len(calls) == 3
                monkeypatch.setenv("ADDERNET_TF_NO_DOWNLOAD", "maybe")
                with pytest.raises(ValueError, match="ADDERNET_TF_NO_DOWNLOAD.*'maybe'"):
                    data.prepare("cifar10", data_dir=data_dir)
    finally:
        server.close()
    # digits never downloads, whatever the environment says.
    assert data.prepare("digits", download=False) is None


def _write_fake_ilsvrc_tars(manual_dir):
    """Tiny archives laid out like the originals: 2 synsets x 2 train images, 3 val images."""
    def jpeg(seed, height, width):
        pixels = tf.random.stateless_uniform([height, width, 3], [seed, 0], 0, 255)
        return tf.io.encode_jpeg(tf.cast(pixels, tf.uint8)).numpy()

    def add(tar, name, payload):
        member = tarfile.TarInfo(name)
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))

    with tarfile.open(manual_dir / "ILSVRC2012_img_train.tar", "w") as train:
        for k, synset in enumerate(["n01440764", "n01443537"]):  # labels 0 and 1
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as images:
                for i in range(2):
                    add(images, f"{synset}_{i}.JPEG", jpeg(10 * k + i, 40 + i, 50))
            add(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(manual_dir / "ILSVRC2012_img_val.tar", "w") as val:
        for i in range(1, 4):
            add(val, f"ILSVRC2012_val_{i:08d}.JPEG", jpeg(100 + i, 30, 60))


_MANUAL_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from addernet_tf import data
data_dir, manual_dir = sys.argv[1], sys.argv[2]
out = {}
for split in ("train", "test"):
    ds = data.load("imagenet2012", split, batch_size=None, image_size=32, shuffle=False,
                   data_dir=data_dir, manual_dir=manual_dir)
    images, labels = zip(*ds.as_numpy_iterator())
    out[split] = [[list(image.shape) for image in images], [int(label) for label in labels]]
out["prepared"] = data.prepare("imagenet2012", data_dir=data_dir)  # no manual_dir needed now
# The carve slices the prepared train split: 4 examples, f = 0.25 -> 1 + 3.
for key, split, fraction in [("pool", "train", 0.0), ("rest", "train", 0.25),
                             ("carved", "validation", 0.25)]:
    ds = data.load("imagenet2012", split, batch_size=None, image_size=32, shuffle=False,
                   augment=False, data_dir=data_dir, validation_split=fraction)
    out[key] = [hashlib.sha1(np.round(image, 4).tobytes()).hexdigest()
                for image, _ in ds.as_numpy_iterator()]
print("RESULT" + json.dumps(out))
"""


def test_imagenet_is_prepared_offline_from_manual_dir(tmp_path):
    data_dir, manual_dir = tmp_path / "tfds", tmp_path / "manual"
    manual_dir.mkdir()
    _write_fake_ilsvrc_tars(manual_dir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", _MANUAL_SCRIPT, str(data_dir), str(manual_dir)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    train_shapes, train_labels = out["train"]
    test_shapes, test_labels = out["test"]
    assert train_shapes == [[32, 32, 3]] * 4 and sorted(train_labels) == [0, 0, 1, 1]
    assert test_shapes == [[32, 32, 3]] * 3 and all(0 <= label < 1000 for label in test_labels)
    assert out["prepared"] == str(data_dir / "imagenet2012" / "5.1.0")
    pool, rest, carved = out["pool"], out["rest"], out["carved"]
    assert len(set(pool)) == 4 and len(rest) == 3 and len(carved) == 1
    assert rest + carved == pool[1:] + pool[:1]  # "train[1:]" and "train[:1]"


# ----------------------------------------------------------------------------
# Argument checks


@pytest.mark.parametrize("kwargs,argument", [
    (dict(name="cifar"), "`name`"),
    (dict(name="digits", split="validation"), "`split`"),
    (dict(name="digits", batch_size=0), "`batch_size`"),
    (dict(name="digits", batch_size=-4), "`batch_size`"),
    (dict(name="digits", batch_size=2.5), "`batch_size`"),
    (dict(name="digits", batch_size=True), "`batch_size`"),
    (dict(name="digits", image_size=0), "`image_size`"),
    (dict(name="digits", image_size=-32), "`image_size`"),
    (dict(name="digits", seed="zero"), "`seed`"),
    (dict(name="digits", seed=-1), "`seed`"),
    # Checked before any tfds access: this data_dir does not exist.
    (dict(name="cifar10", batch_size=0, data_dir="/nonexistent"), "`batch_size`"),
    (dict(name="cifar10", manual_dir="/nonexistent"), "`manual_dir`"),
    (dict(name="cifar10", download="yes", data_dir="/nonexistent"), "`download`"),
    (dict(name="digits", download=None), "`download`"),
    (dict(name="cifar10", validation_split=1, data_dir="/nonexistent"), "`validation_split`"),
])
def test_bad_arguments(kwargs, argument):
    bad = [v for k, v in kwargs.items() if k not in ("name", "data_dir")] or [kwargs["name"]]
    with pytest.raises(ValueError, match=argument) as error:
        data.load(**kwargs)
    assert repr(bad[-1]) in str(error.value)


@pytest.mark.parametrize("name,image_size,argument", [
    ("svhn", None, "`name`"), ("digits", 0, "`image_size`"), ("mnist", 3.5, "`image_size`")])
def test_dataset_info_bad_arguments(name, image_size, argument):
    with pytest.raises(ValueError, match=argument):
        data.dataset_info(name, image_size)


def test_dataset_info_is_cheap_and_known():
    start = time.time()
    infos = {name: data.dataset_info(name) for name in data.DATASETS if name != "image_folder"}
    assert time.time() - start < 5
    assert infos["imagenet2012"] == data.DatasetInfo(1000, (224, 224, 3), 1_281_167, 50_000)
    assert infos["mnist"] == data.DatasetInfo(10, (32, 32, 3), 60_000, 10_000)
    assert data.dataset_info("digits", 16) == data.DatasetInfo(10, (16, 16, 3), 1437, 360)
    assert data.prepare("digits") is None
    # The new field comes last, 0 by default: old positional use still works.
    assert data.DatasetInfo._fields[-1] == "validation_examples"
    assert infos["mnist"].validation_examples == 0 and infos["mnist"][:4] == (10, (32, 32, 3),
                                                                              60_000, 10_000)
    assert data.dataset_info("mnist", 16, validation_split=1 / 12) == data.DatasetInfo(
        10, (16, 16, 3), 55_000, 10_000, 5_000)
    assert data.SPLITS == ("train", "validation", "test")
    with pytest.raises(ValueError, match="`download`"):
        data.prepare("mnist", download="no")


# ----------------------------------------------------------------------------
# normalization: the constants `load` uses, for deployment


@pytest.mark.parametrize("name,mean,std", [
    ("cifar10", CIFAR_MEAN, CIFAR_STD), ("cifar100", CIFAR_MEAN, CIFAR_STD),
    ("mnist", [MNIST_MEAN] * 3, [MNIST_STD] * 3), ("imagenet2012", IMAGENET_MEAN, IMAGENET_STD)])
def test_normalization_of_tfds_sets(name, mean, std):
    got_mean, got_std = data.normalization(name)
    assert len(got_mean) == len(got_std) == 3
    assert all(isinstance(v, float) for v in got_mean + got_std)
    np.testing.assert_allclose(got_mean, mean)
    np.testing.assert_allclose(got_std, std)
    assert data.normalization(name, 16) == (got_mean, got_std)


@pytest.mark.parametrize("image_size", [8, 16])
def test_normalization_of_digits_undoes_load(image_size):
    mean, std = data.normalization("digits", image_size)
    assert len(set(mean)) == len(set(std)) == 1  # gray
    images, _ = _arrays(data.load("digits", "test", batch_size=None, image_size=image_size))
    pixels = images * np.array(std, np.float32) + np.array(mean, np.float32)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    if image_size == 8:  # no resize: the raw 0..16 images over 16
        raw, _, _, test_idx = data._digits_split()
        np.testing.assert_allclose(pixels[..., 0], raw[test_idx], atol=1e-5)
    assert data.normalization("digits") == data.normalization("digits", 32)


@pytest.mark.parametrize("name,image_size,argument", [
    ("svhn", None, "`name`"), ("digits", 0, "`image_size`"), ("cifar10", "32", "`image_size`")])
def test_normalization_bad_arguments(name, image_size, argument):
    with pytest.raises(ValueError, match=argument):
        data.normalization(name, image_size)
