# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""tf.data input pipelines for the PKKD trainer: CIFAR-10/100, MNIST, ImageNet, digits,
and images from a folder.

    ds = load("cifar10", "train", batch_size=256, data_dir="/data/tfds", seed=0)
    for images, labels in ds:  # float32 [N, 32, 32, 3] normalized, int32 [N]
        ...

docs/DESIGN.md, "Data (`addernet_tf/data.py`)", has the details: the validation carve,
downloads, and each data set's preprocessing.
"""

import functools
import math
import numbers
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from addernet_tf import image_folder
from addernet_tf._validate import is_int, positive_int

__all__ = ["DATASETS", "SPLITS", "DatasetInfo", "dataset_info", "normalization", "prepare",
           "load"]

DATASETS = ("cifar10", "cifar100", "mnist", "imagenet2012", "digits", "image_folder")
SPLITS = ("train", "validation", "test")

AUTOTUNE = tf.data.AUTOTUNE

_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
_MNIST_MEAN, _MNIST_STD = (0.1307,) * 3, (0.3081,) * 3
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_NORMALIZATION = {
    "cifar10": (_CIFAR_MEAN, _CIFAR_STD),
    "cifar100": (_CIFAR_MEAN, _CIFAR_STD),
    "mnist": (_MNIST_MEAN, _MNIST_STD),
    "imagenet2012": (_IMAGENET_MEAN, _IMAGENET_STD),
}
_IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
_IMAGENET_SHUFFLE_BUFFER = 10_000
_DIGITS_TEST_FRACTION = 0.2
# The digits split is fixed, independent of `seed`: loading the train split
# with one seed and the test split with another must never overlap.
_DIGITS_SPLIT_SEED = 0
# Likewise the validation carve, for every data set.
_VALIDATION_SPLIT_SEED = 0

# Downloads: see docs/DESIGN.md, "Data".
_NO_DOWNLOAD_ENV = "ADDERNET_TF_NO_DOWNLOAD"
_DOWNLOAD_PROBE_ENV = "ADDERNET_TF_DOWNLOAD_PROBE"
_PROBE_TIMEOUT_S = 3.0
# Where tfds 4.9 fetches each set from, used when the builder's checksums
# metadata (`url_infos`) cannot be read.
_DOWNLOAD_URLS = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",),
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/",),
}
_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class DatasetInfo(NamedTuple):
    """What a model and a trainer need to know before reading any data.

    Attributes:
      num_classes: labels are ints in [0, num_classes).
      image_shape: (height, width, 3) of the images `load` yields.
      train_examples: examples in the "train" split (without the validation
        part when `validation_split` > 0).
      test_examples: examples in the "test" split (ImageNet: its validation set).
      validation_examples: examples in the "validation" split, carved from the
        training set; 0 when `validation_split` is 0.
    """

    num_classes: int
    image_shape: tuple
    train_examples: int
    test_examples: int
    validation_examples: int = 0


class _Spec(NamedTuple):
    num_classes: int
    train_examples: int
    test_examples: int
    default_size: int
    tfds_test_split: str


_TFDS_SPECS = {
    "cifar10": _Spec(10, 50_000, 10_000, 32, "test"),
    "cifar100": _Spec(100, 50_000, 10_000, 32, "test"),
    "mnist": _Spec(10, 60_000, 10_000, 32, "test"),
    "imagenet2012": _Spec(1000, 1_281_167, 50_000, 224, "validation"),
}
_DIGITS_DEFAULT_SIZE = 32


# ----------------------------------------------------------------------------
# Argument checks: each names the argument and shows the bad value.

def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"`name` must be one of {DATASETS}, got {name!r}")


def _check_split(split, validation_split):
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {SPLITS}, got {split!r} "
            "(for imagenet2012, 'test' reads its validation set)")
    if split == "validation" and validation_split == 0:
        raise ValueError(
            f"`split` {split!r} is carved from the training set: it needs `validation_split` "
            f"> 0, got validation_split={validation_split!r}")


def _check_validation_split(validation_split):
    if (not isinstance(validation_split, numbers.Real) or isinstance(validation_split, bool)
            or not 0 <= validation_split < 1):  # also refuses NaN
        raise ValueError(
            f"`validation_split` must be a fraction in [0, 1), got {validation_split!r}")


def _check_image_size(image_size):
    positive_int(image_size, "image_size", none_ok=True)


def _check_batch_size(batch_size):
    positive_int(batch_size, "batch_size", none_ok=True)


def _check_manual_dir(name, manual_dir):
    if manual_dir is not None and name != "imagenet2012":
        raise ValueError(f"`manual_dir` is for imagenet2012 only, got {manual_dir!r} for {name!r}")


def _check_download(download):
    if not isinstance(download, (bool, np.bool_)):
        raise ValueError(f"`download` must be True or False, got {download!r}")


def _resolve_size(name, image_size):
    if image_size is not None:
        return int(image_size)
    if name in ("digits", "image_folder"):
        return _DIGITS_DEFAULT_SIZE
    return _TFDS_SPECS[name].default_size


# ----------------------------------------------------------------------------
# Public API

def dataset_info(name, image_size=None, validation_split=0.0, data_dir=None):
    """Classes, image shape and split sizes of a data set, without reading it.

    Args:
      name: one of `DATASETS`.
      image_size: the side `load` will be asked for; None for the default
        (32, except 224 for imagenet2012).
      validation_split: the fraction of the training set `load` is asked to
        hold out as "validation" (see docs/DESIGN.md, "Data"), in [0, 1).
      data_dir: image_folder only (required there): the folder, which is
        listed and checked (no image is decoded).

    Returns:
      a `DatasetInfo`. The tfds sets use their published sizes; digits is
      1,437 train / 360 test (a stratified 80/20 split). With
      `validation_split` f > 0, `validation_examples` is round(f * n) (at
      least 1, at most n - 1) of the n training examples and
      `train_examples` the rest.
    """
    _check_name(name)
    _check_image_size(image_size)
    _check_validation_split(validation_split)
    size = _resolve_size(name, image_size)
    if name == "digits":
        _, labels, train_idx, test_idx = _digits_split()
        num_classes, pool, test = int(labels.max()) + 1, len(train_idx), len(test_idx)
    elif name == "image_folder":
        folder = image_folder.scan(data_dir)
        num_classes, pool = len(folder.classes), len(folder.train_files)
        test = len(folder.test_files)
    else:
        spec = _TFDS_SPECS[name]
        num_classes, pool, test = spec.num_classes, spec.train_examples, spec.test_examples
    carved = _carve_count(pool, validation_split)
    return DatasetInfo(num_classes, (size, size, 3), pool - carved, test, carved)


def normalization(name, image_size=None, data_dir=None):
    """The per-channel mean and std that `load` normalizes images with.

    `load` yields `(image - mean) / std` for an RGB image in [0, 1] at the
    model's size (after any resize, crop or padding), so a deployed model
    that receives `pixels` (uint8, 0..255, already at that size) computes
    `(pixels / 255 - mean) / std` to see what it was trained on.

    Args:
      name: one of `DATASETS`.
      image_size: the side `load` is asked for; None for the default. Only
        digits and image_folder depend on it: their statistics are those of
        the whole train split (whatever `validation_split`) at that size.
      data_dir: image_folder only: the folder (its train images are decoded).

    Returns:
      `(mean, std)`: two tuples of 3 Python floats (R, G, B).
    """
    _check_name(name)
    _check_image_size(image_size)
    if name == "digits":
        _, mean, std = _digits_resized(_resolve_size(name, image_size))
        return (mean,) * 3, (std,) * 3
    if name == "image_folder":
        return image_folder.statistics(image_folder.scan(data_dir).root,
                                       _resolve_size(name, image_size))
    mean, std = _NORMALIZATION[name]
    return tuple(map(float, mean)), tuple(map(float, std))


def prepare(name, data_dir=None, manual_dir=None, download=True):
    """Makes sure a data set can be read; returns its prepared directory.

    A tfds set is prepared when `<data_dir>/<name>/<version>/` holds its
    `dataset_info.json` and `features.json` (`DatasetBuilder.is_prepared`,
    a file check: no network). One that is not is downloaded and prepared
    here by tfds (`download`), after a quick probe of its download host
    (see docs/DESIGN.md, "Data"); ImageNet, which tfds never downloads, is
    prepared from `manual_dir` (hours, ~150 GB). Run this once, before
    starting several workers that share `data_dir`.

    Args:
      name: one of `DATASETS`.
      data_dir: the tfds data directory; None for tfds' default
        (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      manual_dir: imagenet2012 only: a directory holding
        ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.
      download: download a tfds set that is not prepared; False (or the
        environment variable ADDERNET_TF_NO_DOWNLOAD=1) never touches the
        network.

    Returns:
      the prepared version directory (a str), or None for digits, which ships
      with scikit-learn.

    Raises:
      ValueError: a bad argument, or a data set that is not prepared and
        cannot be: downloads off, its download host unreachable (raised
        within `_PROBE_TIMEOUT_S` seconds), or, for imagenet2012, no
        `manual_dir` holding both tars. The message says what to do.
    """
    _check_name(name)
    _check_manual_dir(name, manual_dir)
    _check_download(download)
    if name == "digits":
        return None
    if name == "image_folder":
        return image_folder.scan(data_dir).root
    return _prepared_builder(name, data_dir, manual_dir, download).data_dir


def load(name, split="train", batch_size=None, image_size=None, data_dir=None, manual_dir=None,
         augment=None, shuffle=None, seed=None, drop_remainder=False, repeat=False,
         validation_split=0.0, download=True, skip=0):
    """A `tf.data.Dataset` of normalized images and labels.

    Args:
      name: one of `DATASETS`.
      split: "train", "validation" (carved from the training set; needs
        `validation_split` > 0) or "test" (imagenet2012: its validation set).
      batch_size: examples per batch, or None for unbatched examples (for a
        trainer that batches per replica or shards across workers itself).
      image_size: output side; None for the default (32; 224 for ImageNet).
        CIFAR at another size is resized first, then augmented with padding
        size // 8; MNIST is zero-padded (centered) up to sizes >= 28 and resized
        below; digits (8x8) are resized bilinearly.
      data_dir: the tfds data directory (ignored for digits); for
        image_folder, the folder (required).
      manual_dir: imagenet2012 only: the directory holding the ILSVRC2012 tars,
        used to prepare the data set offline if it is not prepared yet.
      augment: random augmentation; None means True for "train" only.
      shuffle: shuffle the examples; None means True for "train" only.
      seed: makes shuffling and augmentation reproducible; each epoch (each
        new iterator, or each pass under `repeat`) still draws fresh ones.
        It never changes which examples are "train" or "validation".
      drop_remainder: drop the last incomplete batch (static batch dimension).
      repeat: repeat indefinitely.
      validation_split: the fraction f in [0, 1) of the training set held out
        as "validation"; "train" then yields only the rest. The carve is
        fixed (see docs/DESIGN.md, "Data"); the test split is never touched.
      download: download and prepare a tfds set that is not prepared (see
        `prepare`); ADDERNET_TF_NO_DOWNLOAD=1 forces False.
      skip: leave out the stream's first `skip` examples (counted across
        passes under `repeat`). They are dropped before decoding and
        augmentation, so this is cheap, and what follows is exactly what the
        stream would have yielded next: a resumed run continues the data of
        the run it resumes.

    Returns:
      a dataset of `(images, labels)`: float32 [N, H, W, 3] and int32 [N]
      (without the N when `batch_size` is None), prefetched with AUTOTUNE.

    Raises:
      ValueError: a bad argument, or a tfds set that is not prepared and
        cannot be (see `prepare`).
    """
    _check_name(name)
    _check_validation_split(validation_split)
    _check_split(split, validation_split)
    _check_batch_size(batch_size)
    _check_image_size(image_size)
    _check_manual_dir(name, manual_dir)
    _check_download(download)
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"`seed` must be a non-negative int or None, got {seed!r}")
    if not is_int(skip) or skip < 0:
        raise ValueError(f"`skip` must be a non-negative int, got {skip!r}")
    size = _resolve_size(name, image_size)
    train = split == "train"
    augment = train if augment is None else bool(augment)
    shuffle = train if shuffle is None else bool(shuffle)
    shuffle_seed, augment_seed = _derive_seeds(seed)

    if name == "digits":
        ds, preprocess, buffer = _digits_source(split, size, augment, validation_split)
    elif name == "image_folder":
        ds, preprocess, buffer = _folder_source(split, size, augment, data_dir, validation_split)
    elif name == "imagenet2012":
        ds, preprocess, buffer = _imagenet_source(split, size, augment, shuffle, shuffle_seed,
                                                  data_dir, manual_dir, validation_split, download)
    else:
        ds, preprocess, buffer = _small_tfds_source(name, split, size, augment, data_dir,
                                                    validation_split, download)

    if shuffle:
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed pair per example, re-drawn on every iteration
        # (every epoch, and every pass under `repeat`).
        seeds = tf.data.Dataset.random(seed=augment_seed, rerandomize_each_iteration=True)
        seeds = seeds.batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.repeat() if repeat else ds
        ds = ds.skip(skip) if skip else ds
        ds = ds.map(lambda example, pair: preprocess(*example, pair), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.repeat() if repeat else ds
        ds = ds.skip(skip) if skip else ds
        ds = ds.map(lambda image, label: preprocess(image, label, None),
                    num_parallel_calls=AUTOTUNE)
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _derive_seeds(seed):
    """Independent seeds for shuffling and augmentation from one user seed.

    Handing the same op seed to both would draw the crops and the shuffle
    order from the same random stream.
    """
    if seed is None:
        return None, None
    shuffle_seed, augment_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(shuffle_seed), int(augment_seed)


# ----------------------------------------------------------------------------
# The validation carve

def _carve_count(pool, validation_split):
    """Validation examples carved from `pool` training examples: round(f * pool)
    (halves up), at least 1 and at most pool - 1; 0 when f is 0."""
    if validation_split == 0:
        return 0
    if pool < 2:
        raise ValueError(
            f"`validation_split` {validation_split!r} needs at least 2 training examples to "
            f"carve a validation split from, got {pool}")
    return min(pool - 1, max(1, math.floor(validation_split * pool + 0.5)))


def _carve(labels, validation_split):
    """Positions into `labels` int [n] of the remaining train part and of the
    validation part, each sorted: int64 [n - k] and [k], k = _carve_count(n, f).

    Stratified by class where scikit-learn can (every class has 2 examples or
    more, and both parts can hold every class), else a random subset; both
    seeded with `_VALIDATION_SPLIT_SEED`, so the carve depends on the labels
    alone.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    count = _carve_count(len(labels), validation_split)
    positions = np.arange(len(labels))
    classes, per_class = np.unique(labels, return_counts=True)
    if per_class.min() >= 2 and min(count, len(labels) - count) >= len(classes):
        rest, carved = train_test_split(positions, test_size=count, stratify=labels,
                                        random_state=_VALIDATION_SPLIT_SEED)
    else:
        shuffled = np.random.default_rng(_VALIDATION_SPLIT_SEED).permutation(positions)
        rest, carved = shuffled[count:], shuffled[:count]
    return np.sort(rest), np.sort(carved)


# ----------------------------------------------------------------------------
# Image operations (images are float32 in [0, 1] unless said otherwise)

def _normalize(image, mean, std):
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def _random_translate(image, pad, seed):
    """Zero-pads `pad` pixels on each side, then crops the original size back."""
    shape = image.shape
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, shape, seed)


def _split_seed(seed):
    first, second = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return first, second


def _to_rgb(image):
    return tf.tile(image, [1, 1, 3]) if image.shape[-1] == 1 else image


def _label(label):
    return tf.cast(label, tf.int32)


# ----------------------------------------------------------------------------
# digits (scikit-learn, offline)

@functools.lru_cache(maxsize=None)
def _digits_split():
    """images float32 [1797, 8, 8] in [0, 1], labels int32, train and test indices."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=_DIGITS_TEST_FRACTION, stratify=labels,
        random_state=_DIGITS_SPLIT_SEED)
    return images, labels, train_idx, test_idx


@functools.lru_cache(maxsize=8)
def _digits_resized(size):
    """All images resized to [1797, size, size, 1], and the train split's mean and std."""
    images, _, train_idx, _ = _digits_split()
    resized = tf.image.resize(images[..., None], (size, size), method="bilinear",
                              antialias=True).numpy()
    train = resized[train_idx].astype(np.float64)
    return resized, float(train.mean()), float(train.std())


@functools.lru_cache(maxsize=16)
def _digits_indices(split, validation_split):
    """Indices into `_digits_split()`'s images of one split, int [N]: the test
    split, or the train split's remaining or carved part (in train order)."""
    _, labels, train_idx, test_idx = _digits_split()
    if split == "test":
        return test_idx
    if validation_split == 0:
        return train_idx
    rest, carved = _carve(labels[train_idx], validation_split)
    return train_idx[carved if split == "validation" else rest]


def _digits_source(split, size, augment, validation_split):
    _, labels, _, _ = _digits_split()
    resized, mean, std = _digits_resized(size)
    idx = _digits_indices(split, float(validation_split))
    ds = tf.data.Dataset.from_tensor_slices((resized[idx], labels[idx]))
    pad = max(1, size // 16)

    def preprocess(image, label, seed):
        if augment:
            image = _random_translate(image, pad, seed)
        return _normalize(_to_rgb(image), (mean,) * 3, (std,) * 3), _label(label)

    return ds, preprocess, len(idx)


def _folder_source(split, size, augment, data_dir, validation_split):
    root = image_folder.scan(data_dir).root
    images, labels = image_folder.decoded(root, "test" if split == "test" else "train", size)
    if split != "test" and validation_split > 0:
        rest, carved = _carve(labels, validation_split)
        chosen = carved if split == "validation" else rest
        images, labels = images[chosen], labels[chosen]
    mean, std = image_folder.statistics(root, size)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))

    def preprocess(image, label, seed):
        image = tf.image.convert_image_dtype(image, tf.float32)
        if augment:
            crop_seed, flip_seed = _split_seed(seed)
            image = _random_translate(image, max(1, size // 8), crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return _normalize(image, mean, std), _label(label)

    return ds, preprocess, len(labels)


# ----------------------------------------------------------------------------
# tfds sets: preparing (and downloading)

def _not_prepared_head(name, builder):
    where = os.fspath(builder.data_dir_root)
    looked = os.path.join(builder.data_dir, "dataset_info.json")
    return f"Data set {name!r} is not prepared under data_dir={where!r} (looked for {looked})"


def _build_elsewhere(name, builder):
    where = os.fspath(builder.data_dir_root)
    return (f"On a machine with network run `tfds build {name} --data_dir={where}` and copy "
            f"{os.path.join(where, name)} to this machine, or point data_dir (--data_dir) at a "
            "directory that already holds it.")


def _imagenet_message(builder):
    where = os.fspath(builder.data_dir_root)
    return (f"{_not_prepared_head('imagenet2012', builder)}; tfds never downloads it. Put "
            f"{' and '.join(_IMAGENET_TARS)} (from https://image-net.org) in a directory and "
            "pass it as manual_dir (--manual_dir): the data set is then prepared offline into "
            f"{where} (hours, ~150 GB), or prepare it with `tfds build imagenet2012 "
            f"--data_dir={where} --manual_dir=DIR` and copy {os.path.join(where, 'imagenet2012')} "
            "here.")


def _download_refusal(download):
    """Why nothing may be downloaded (a str), or None where downloading is allowed."""
    value = os.environ.get(_NO_DOWNLOAD_ENV, "")
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return f"{_NO_DOWNLOAD_ENV}={value}"
    if word not in _FALSE_WORDS:
        raise ValueError(
            f"The environment variable {_NO_DOWNLOAD_ENV} must be 1 or 0 (or true/false, "
            f"yes/no, on/off), got {value!r}")
    return None if download else "download=False"


def _parse_host_port(text):
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")  # [::1]:80
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"The environment variable {_DOWNLOAD_PROBE_ENV} must be host:port[,host:port...], "
            f"got {os.environ.get(_DOWNLOAD_PROBE_ENV)!r}")
    return host, int(port)


def _download_urls(name, builder):
    """The URLs tfds downloads `name` from: its checksums metadata (no network)."""
    try:
        urls = sorted(type(builder).url_infos or ())
    except Exception:  # pylint: disable=broad-except; a best-effort read of metadata
        urls = []
    return urls or list(_DOWNLOAD_URLS[name])


def _proxy_for(url):
    """(host, port) of the environment's proxy for `url`, or None to connect directly."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxy = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    try:
        port = proxy.port or {"https": 443}.get(proxy.scheme, 80)
    except ValueError:  # a malformed port: let tfds report it
        return None
    return (proxy.hostname, port) if proxy.hostname else None


def _probe_targets(name, builder):
    """[(host, port, description)] to reach before downloading `name`, deduplicated."""
    override = os.environ.get(_DOWNLOAD_PROBE_ENV, "").strip()
    if override:
        pairs = [_parse_host_port(item) for item in override.split(",") if item.strip()]
        return [(host, port, f"{host}:{port} (from {_DOWNLOAD_PROBE_ENV})")
                for host, port in dict.fromkeys(pairs)]
    targets = {}
    for url in _download_urls(name, builder):
        parts = urllib.parse.urlsplit(url)
        proxy = _proxy_for(url)
        if proxy is not None:
            targets.setdefault(proxy, f"proxy {proxy[0]}:{proxy[1]} (for {parts.hostname})")
        else:
            port = parts.port or {"https": 443}.get(parts.scheme, 80)
            targets.setdefault((parts.hostname, port), f"{parts.hostname}:{port}")
    return [(host, port, description) for (host, port), description in targets.items()]


def _unreachable(targets, timeout):
    """(description, reason) of the first target a TCP connection cannot reach
    within `timeout` seconds in all (name resolution included), or None."""
    results = [{} for _ in targets]

    def attempt(host, port, result):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result["ok"] = True
        except OSError as error:
            result["error"] = error

    # Threads, because name resolution ignores socket timeouts; a thread left
    # hanging is a daemon and ends with the process.
    threads = [threading.Thread(target=attempt, args=(host, port, result), daemon=True)
               for (host, port, _), result in zip(targets, results)]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread, (_, _, description), result in zip(threads, targets, results):
        thread.join(max(0.0, deadline - time.monotonic()))
        if "ok" not in result:
            error = result.get("error")
            reason = (f"{type(error).__name__}: {error}" if error is not None
                      else f"no answer within {timeout:g} s")
            return description, reason
    return None


def _prepared_builder(name, data_dir, manual_dir, download):
    """The tfds builder of a prepared data set; prepares it if it is not: ImageNet
    from `manual_dir`, the others by downloading (after a probe)."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    # The first test only avoids is_prepared()'s warning about a missing file.
    if (builder.data_path / "dataset_info.json").exists() and builder.is_prepared():
        return builder
    if name == "imagenet2012":
        if manual_dir is None:
            raise ValueError(_imagenet_message(builder))
        manual_dir = os.fspath(manual_dir)
        missing = [tar for tar in _IMAGENET_TARS
                   if not tf.io.gfile.exists(os.path.join(manual_dir, tar))]
        if missing:
            raise ValueError(
                f"`manual_dir` must hold {' and '.join(_IMAGENET_TARS)} to prepare imagenet2012 "
                f"offline, got {manual_dir!r} without {', '.join(missing)}")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        return builder
    refusal = _download_refusal(download)
    if refusal is not None:
        raise ValueError(f"{_not_prepared_head(name, builder)} and downloads are off "
                         f"({refusal}). {_build_elsewhere(name, builder)}")
    unreachable = _unreachable(_probe_targets(name, builder), _PROBE_TIMEOUT_S)
    if unreachable is not None:
        target, reason = unreachable
        raise ValueError(
            f"{_not_prepared_head(name, builder)} and cannot be downloaded: could not connect to "
            f"{target} ({reason}). {_build_elsewhere(name, builder)}")
    builder.download_and_prepare()
    return builder


# ----------------------------------------------------------------------------
# tfds sets: reading

# (name, data_dir, validation_split) -> `_carve` of the train labels.
_TRAIN_CARVES = {}


def _tfds_train_carve(builder, validation_split):
    """`_carve` of a prepared tfds set's train labels, read once per process
    (labels only: the images are not decoded)."""
    import tensorflow_datasets as tfds

    key = (builder.name, os.fspath(builder.data_dir), float(validation_split))
    if key not in _TRAIN_CARVES:
        ds = builder.as_dataset(split="train", shuffle_files=False,
                                decoders={"image": tfds.decode.SkipDecoding()},
                                read_config=tfds.ReadConfig(try_autocache=False))
        labels = ds.map(lambda example: example["label"], num_parallel_calls=AUTOTUNE)
        labels = np.concatenate(list(labels.batch(8192).as_numpy_iterator()))
        _TRAIN_CARVES[key] = _carve(labels, validation_split)
    return _TRAIN_CARVES[key]


def _small_tfds_source(name, split, size, augment, data_dir, validation_split, download):
    """CIFAR-10/100 and MNIST: read once, cached in memory as uint8."""
    import tensorflow_datasets as tfds

    builder = _prepared_builder(name, data_dir, None, download)
    spec = _TFDS_SPECS[name]
    tfds_split = spec.tfds_test_split if split == "test" else "train"
    # Read in the stored order (shuffle_files=False), as `_tfds_train_carve` does.
    ds = builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False))
    if split == "test":
        buffer = spec.test_examples
    elif validation_split == 0:
        buffer = spec.train_examples
    else:
        rest, carved = _tfds_train_carve(builder, validation_split)
        chosen = carved if split == "validation" else rest
        keep = np.zeros(len(rest) + len(carved), bool)
        keep[chosen] = True
        keep = tf.constant(keep)
        ds = ds.enumerate().filter(lambda index, example: tf.gather(keep, index))
        ds = ds.map(lambda index, example: example)
        buffer = len(chosen)
    ds = ds.cache()
    if name == "mnist":
        preprocess = _mnist_preprocess_fn(size, augment)
    else:
        preprocess = _cifar_preprocess_fn(size, augment)
    return ds, preprocess, buffer


def _cifar_preprocess_fn(size, augment):
    def preprocess(image, label, seed):
        image = tf.image.convert_image_dtype(image, tf.float32)
        if image.shape[0] != size or image.shape[1] != size:
            image = tf.image.resize(image, (size, size), antialias=True)
        if augment:
            crop_seed, flip_seed = _split_seed(seed)
            image = _random_translate(image, max(1, size // 8), crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return _normalize(image, _CIFAR_MEAN, _CIFAR_STD), _label(label)

    return preprocess


def _fit_mnist(image, size):
    """[28, 28, 1] -> [size, size, 1]: centered zero padding up, bilinear resize down."""
    if size >= 28:
        offset = (size - 28) // 2
        return tf.image.pad_to_bounding_box(image, offset, offset, size, size)
    return tf.image.resize(image, (size, size), antialias=True)


def _mnist_preprocess_fn(size, augment):
    pad = max(1, size // 16)

    def preprocess(image, label, seed):
        image = _fit_mnist(tf.image.convert_image_dtype(image, tf.float32), size)
        if augment:
            image = _random_translate(image, pad, seed)
        return _normalize(_to_rgb(image), _MNIST_MEAN, _MNIST_STD), _label(label)

    return preprocess


def _imagenet_source(split, size, augment, shuffle, seed, data_dir, manual_dir, validation_split,
                     download):
    """ImageNet: JPEG bytes from the prepared shards, decoded (and cropped) per example.

    The validation carve is tfds slicing: "train[:k]" and "train[k:]", k from
    the prepared train split's size (tfds stores it shuffled by key hash)."""
    import tensorflow_datasets as tfds

    builder = _prepared_builder("imagenet2012", data_dir, manual_dir, download)
    if split == "test":
        tfds_split = _TFDS_SPECS["imagenet2012"].tfds_test_split
    elif validation_split == 0:
        tfds_split = "train"
    else:
        splits = builder.info.splits
        pool = (splits["train"].num_examples if "train" in splits
                else _TFDS_SPECS["imagenet2012"].train_examples)
        carved = _carve_count(pool, validation_split)
        tfds_split = f"train[:{carved}]" if split == "validation" else f"train[{carved}:]"
    ds = builder.as_dataset(
        split=tfds_split, as_supervised=True, shuffle_files=shuffle,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
    preprocess = _imagenet_train_fn(size) if augment else _imagenet_eval_fn(size)
    return ds, preprocess, _IMAGENET_SHUFFLE_BUFFER


def _imagenet_train_fn(size):
    def preprocess(jpeg, label, seed):
        box_seed, flip_seed = _split_seed(seed)
        begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.image.extract_jpeg_shape(jpeg), bounding_boxes=tf.zeros([1, 0, 4]), seed=box_seed,
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        window = tf.stack([begin[0], begin[1], crop[0], crop[1]])
        image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
        image = tf.image.resize(image, (size, size), method="bilinear") / 255.0
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return _normalize(image, _IMAGENET_MEAN, _IMAGENET_STD), _label(label)

    return preprocess


def _imagenet_eval_fn(size):
    shorter = round(size * 256 / 224)

    def preprocess(jpeg, label, seed):
        del seed
        image = tf.image.decode_jpeg(jpeg, channels=3)
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scaled = tf.cast(tf.round(hw * (shorter / tf.reduce_min(hw))), tf.int32)
        scaled = tf.maximum(scaled, shorter)  # rounding must not leave a side below `shorter`
        image = tf.image.resize(image, scaled, method="bilinear", antialias=True) / 255.0
        top, left = (scaled[0] - size) // 2, (scaled[1] - size) // 2
        image = tf.image.crop_to_bounding_box(image, top, left, size, size)
        return _normalize(image, _IMAGENET_MEAN, _IMAGENET_STD), _label(label)

    return preprocess
