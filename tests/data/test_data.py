"""Input pipelines: digits (real, offline), tfds sets through `tfds.testing.mock_data`,
the fail-fast error for a data set that is not prepared, and argument checks."""

import io
import json
import os
import subprocess
import sys
import tarfile
import time

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


def test_imagenet_eval_resizes_shorter_side_then_center_crops():
    jpeg = tf.io.encode_jpeg(tf.cast(tf.random.uniform([60, 90, 3], 0, 255), tf.uint8), quality=100)
    image, label = data._imagenet_eval_fn(224)(jpeg, tf.constant(3, tf.int64), None)
    assert image.shape == (224, 224, 3) and label.dtype == tf.int32
    decoded = tf.image.decode_jpeg(jpeg, channels=3)
    expected = tf.image.resize(decoded, (256, 384), antialias=True)[16:240, 80:304] / 255.0
    np.testing.assert_allclose(image, (expected - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-4)


# ----------------------------------------------------------------------------
# A data set that is not prepared fails at once, in a subprocess so a hang fails
# instead of blocking.

_MISSING_SCRIPT = r"""
import json, os, sys, time
from addernet_tf import data
data_dir, manual_dir = sys.argv[1], sys.argv[2]
out = {}
for key, name, kwargs in [("cifar10", "cifar10", {}), ("mnist", "mnist", {}),
                          ("imagenet2012", "imagenet2012", {}),
                          ("imagenet_manual", "imagenet2012", {"manual_dir": manual_dir})]:
    start = time.time()
    try:
        data.load(name, "train", batch_size=8, data_dir=data_dir, **kwargs)
        out[key] = ["no error", "", 0]
    except Exception as error:
        out[key] = [type(error).__name__, str(error), time.time() - start]
print("RESULT" + json.dumps(out))
"""


def test_missing_dataset_fails_fast_without_download(tmp_path):
    data_dir, manual_dir = tmp_path / "tfds", tmp_path / "manual"
    data_dir.mkdir()
    manual_dir.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", _MISSING_SCRIPT, str(data_dir), str(manual_dir)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    for key, (kind, message, seconds) in out.items():
        assert kind == "ValueError", (key, kind, message)
        assert seconds < 5, (key, seconds)
    for name in ("cifar10", "mnist"):
        message = out[name][1]
        assert f"'{name}' is not prepared" in message and str(data_dir) in message
        assert f"tfds build {name} --data_dir={data_dir}" in message
    message = out["imagenet2012"][1]
    assert "'imagenet2012' is not prepared" in message and str(data_dir) in message
    assert "ILSVRC2012_img_train.tar" in message and "manual_dir" in message
    message = out["imagenet_manual"][1]
    assert "`manual_dir`" in message and str(manual_dir) in message
    assert "ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in message
    # Nothing was fetched or generated.
    assert not (data_dir / "downloads").exists()
    assert not list(data_dir.rglob("*.json")) and not list(data_dir.rglob("*.tfrecord*"))


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
import json, sys
from addernet_tf import data
data_dir, manual_dir = sys.argv[1], sys.argv[2]
out = {}
for split in ("train", "test"):
    ds = data.load("imagenet2012", split, batch_size=None, image_size=32, shuffle=False,
                   data_dir=data_dir, manual_dir=manual_dir)
    images, labels = zip(*ds.as_numpy_iterator())
    out[split] = [[list(image.shape) for image in images], [int(label) for label in labels]]
out["prepared"] = data.prepare("imagenet2012", data_dir=data_dir)  # no manual_dir needed now
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
    infos = {name: data.dataset_info(name) for name in data.DATASETS}
    assert time.time() - start < 5
    assert infos["imagenet2012"] == data.DatasetInfo(1000, (224, 224, 3), 1_281_167, 50_000)
    assert infos["mnist"] == data.DatasetInfo(10, (32, 32, 3), 60_000, 10_000)
    assert data.dataset_info("digits", 16) == data.DatasetInfo(10, (16, 16, 3), 1437, 360)
    assert data.prepare("digits") is None


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
