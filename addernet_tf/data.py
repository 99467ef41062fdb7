"""tf.data input pipelines for the PKKD trainer: CIFAR-10/100, MNIST, ImageNet, digits.

    ds = load("cifar10", "train", batch_size=256, data_dir="/data/tfds", seed=0)
    for images, labels in ds:  # float32 [N, 32, 32, 3] normalized, int32 [N]
        ...

Nothing here downloads. The TensorFlow Datasets sets (`cifar10`, `cifar100`,
`mnist`, `imagenet2012`) must already be prepared under `data_dir`; one that is
not fails at once with a `ValueError` saying how to prepare it, instead of
`tfds.load`'s endless download retries on a machine without network. The one
exception is ImageNet, which tfds itself never downloads: given `manual_dir`
holding the original ILSVRC2012 tars, it is prepared offline on first use.
`digits` is scikit-learn's bundled set of 1,797 real 8x8 handwritten digits,
always available, for the demo and the tests.

Preprocessing (AdderNet/PKKD recipes; docs/DESIGN.md lists what the paper
leaves open):

- cifar10, cifar100: train: zero-pad 4 (size // 8), random crop 32, random
  horizontal flip. Normalized per RGB channel with mean (0.4914, 0.4822, 0.4465)
  and std (0.2023, 0.1994, 0.2010).
- mnist: 28x28 zero-padded (centered) to 32; train: zero-pad 2 (size // 16) and
  random crop, a shift of up to 2 px. Mean 0.1307, std 0.3081, gray repeated
  to 3 channels.
- imagenet2012: train: random-resized crop 224 (area 0.08-1, aspect ratio
  3/4-4/3), random flip; eval: shorter side resized to 256, center crop 224.
  Mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
- digits: 8x8 resized bilinearly to 32; train: zero-pad 2 (size // 16) and
  random crop. Normalized with the train split's own mean and std, gray
  repeated to 3 channels.

CIFAR-100 uses CIFAR-10's constants: neither the paper nor the official
AdderNet code gives CIFAR-100 values, and a shift of the input statistics
is absorbed by the stem conv and its BN.
Padding is applied to the raw [0, 1] image before normalization, so it is
black, as in torchvision's `RandomCrop(padding=4)` before `Normalize`.
Digits and MNIST are never flipped (a mirrored digit is another symbol).
`normalization(name, image_size)` returns the mean and std per channel, for a
deployed model that receives raw pixels (`addernet_tf.export`).
"""

import functools
import numbers
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

__all__ = ["DATASETS", "SPLITS", "DatasetInfo", "dataset_info", "normalization", "prepare",
           "load"]

DATASETS = ("cifar10", "cifar100", "mnist", "imagenet2012", "digits")
SPLITS = ("train", "test")

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


class DatasetInfo(NamedTuple):
    """What a model and a trainer need to know before reading any data.

    Attributes:
      num_classes: labels are ints in [0, num_classes).
      image_shape: (height, width, 3) of the images `load` yields.
      train_examples: examples in the "train" split.
      test_examples: examples in the "test" split (ImageNet: its validation set).
    """

    num_classes: int
    image_shape: tuple
    train_examples: int
    test_examples: int


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

def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"`name` must be one of {DATASETS}, got {name!r}")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {SPLITS}, got {split!r} "
            "(for imagenet2012, 'test' reads its validation set)")


def _check_image_size(image_size):
    if image_size is not None and (not _is_int(image_size) or image_size <= 0):
        raise ValueError(f"`image_size` must be a positive int or None, got {image_size!r}")


def _check_batch_size(batch_size):
    if batch_size is not None and (not _is_int(batch_size) or batch_size <= 0):
        raise ValueError(f"`batch_size` must be a positive int or None, got {batch_size!r}")


def _check_manual_dir(name, manual_dir):
    if manual_dir is not None and name != "imagenet2012":
        raise ValueError(f"`manual_dir` is for imagenet2012 only, got {manual_dir!r} for {name!r}")


def _resolve_size(name, image_size):
    if image_size is not None:
        return int(image_size)
    return _DIGITS_DEFAULT_SIZE if name == "digits" else _TFDS_SPECS[name].default_size


# ----------------------------------------------------------------------------
# Public API

def dataset_info(name, image_size=None):
    """Classes, image shape and split sizes of a data set, without reading it.

    Args:
      name: one of `DATASETS`.
      image_size: the side `load` will be asked for; None for the default
        (32, except 224 for imagenet2012).

    Returns:
      a `DatasetInfo`. The tfds sets use their published sizes; digits is
      1,437 train / 360 test (a stratified 80/20 split).
    """
    _check_name(name)
    _check_image_size(image_size)
    size = _resolve_size(name, image_size)
    if name == "digits":
        _, labels, train_idx, test_idx = _digits_split()
        return DatasetInfo(int(labels.max()) + 1, (size, size, 3), len(train_idx), len(test_idx))
    spec = _TFDS_SPECS[name]
    return DatasetInfo(spec.num_classes, (size, size, 3), spec.train_examples, spec.test_examples)


def normalization(name, image_size=None):
    """The per-channel mean and std that `load` normalizes images with.

    `load` yields `(image - mean) / std` for an RGB image in [0, 1] at the
    model's size (after any resize, crop or padding), so a deployed model
    that receives `pixels` (uint8, 0..255, already at that size) computes
    `(pixels / 255 - mean) / std` to see what it was trained on.

    Args:
      name: one of `DATASETS`.
      image_size: the side `load` is asked for; None for the default. Only
        digits depends on it: its statistics are those of the train split
        resized to that size.

    Returns:
      `(mean, std)`: two tuples of 3 Python floats (R, G, B).
    """
    _check_name(name)
    _check_image_size(image_size)
    if name == "digits":
        _, mean, std = _digits_resized(_resolve_size(name, image_size))
        return (mean,) * 3, (std,) * 3
    mean, std = _NORMALIZATION[name]
    return tuple(map(float, mean)), tuple(map(float, std))


def prepare(name, data_dir=None, manual_dir=None):
    """Makes sure a data set can be read offline; returns its prepared directory.

    A tfds set is prepared when `<data_dir>/<name>/<version>/` holds its
    `dataset_info.json` and `features.json` (`DatasetBuilder.is_prepared`,
    a file check: no network). ImageNet that is not prepared yet is prepared
    here from `manual_dir` (hours, ~150 GB); run this once, before starting
    several workers that share `data_dir`.

    Args:
      name: one of `DATASETS`.
      data_dir: the tfds data directory; None for tfds' default
        (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      manual_dir: imagenet2012 only: a directory holding
        ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.

    Returns:
      the prepared version directory (a str), or None for digits, which ships
      with scikit-learn.

    Raises:
      ValueError: the data set is not prepared (and, for imagenet2012,
        `manual_dir` does not hold both tars), saying what to do.
    """
    _check_name(name)
    _check_manual_dir(name, manual_dir)
    if name == "digits":
        return None
    return _prepared_builder(name, data_dir, manual_dir).data_dir


def load(name, split="train", batch_size=None, image_size=None, data_dir=None, manual_dir=None,
         augment=None, shuffle=None, seed=None, drop_remainder=False, repeat=False):
    """A `tf.data.Dataset` of normalized images and labels.

    Args:
      name: one of `DATASETS`.
      split: "train" or "test" (imagenet2012: its validation set).
      batch_size: examples per batch, or None for unbatched examples (for a
        trainer that batches per replica or shards across workers itself).
      image_size: output side; None for the default (32; 224 for ImageNet).
        CIFAR at another size is resized first, then augmented with padding
        size // 8; MNIST is zero-padded (centered) up to sizes >= 28 and resized
        below; digits (8x8) are resized bilinearly.
      data_dir: the tfds data directory (ignored for digits).
      manual_dir: imagenet2012 only: the directory holding the ILSVRC2012 tars,
        used to prepare the data set offline if it is not prepared yet.
      augment: random augmentation; None means True for "train" only.
      shuffle: shuffle the examples; None means True for "train" only.
      seed: makes shuffling and augmentation reproducible; each epoch (each
        new iterator, or each pass under `repeat`) still draws fresh ones.
      drop_remainder: drop the last incomplete batch (static batch dimension).
      repeat: repeat indefinitely.

    Returns:
      a dataset of `(images, labels)`: float32 [N, H, W, 3] and int32 [N]
      (without the N when `batch_size` is None), prefetched with AUTOTUNE.

    Raises:
      ValueError: a bad argument, or a tfds set that is not prepared (see
        `prepare`). Nothing is ever downloaded.
    """
    _check_name(name)
    _check_split(split)
    _check_batch_size(batch_size)
    _check_image_size(image_size)
    _check_manual_dir(name, manual_dir)
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ValueError(f"`seed` must be a non-negative int or None, got {seed!r}")
    size = _resolve_size(name, image_size)
    train = split == "train"
    augment = train if augment is None else bool(augment)
    shuffle = train if shuffle is None else bool(shuffle)
    shuffle_seed, augment_seed = _derive_seeds(seed)

    if name == "digits":
        ds, preprocess, buffer = _digits_source(split, size, augment)
    elif name == "imagenet2012":
        ds, preprocess, buffer = _imagenet_source(split, size, augment, shuffle, shuffle_seed,
                                                  data_dir, manual_dir)
    else:
        ds, preprocess, buffer = _small_tfds_source(name, split, size, augment, data_dir)

    if shuffle:
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed pair per example, re-drawn on every iteration
        # (every epoch, and every pass under `repeat`).
        seeds = tf.data.Dataset.random(seed=augment_seed, rerandomize_each_iteration=True)
        seeds = seeds.batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.repeat() if repeat else ds
        ds = ds.map(lambda example, pair: preprocess(*example, pair), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.repeat() if repeat else ds
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


def _digits_source(split, size, augment):
    _, labels, train_idx, test_idx = _digits_split()
    resized, mean, std = _digits_resized(size)
    idx = train_idx if split == "train" else test_idx
    ds = tf.data.Dataset.from_tensor_slices((resized[idx], labels[idx]))
    pad = max(1, size // 16)

    def preprocess(image, label, seed):
        if augment:
            image = _random_translate(image, pad, seed)
        return _normalize(_to_rgb(image), (mean,) * 3, (std,) * 3), _label(label)

    return ds, preprocess, len(idx)


# ----------------------------------------------------------------------------
# tfds sets

def _not_prepared_message(name, builder):
    where = os.fspath(builder.data_dir_root)
    looked = os.path.join(builder.data_dir, "dataset_info.json")
    head = (f"Data set {name!r} is not prepared under data_dir={where!r} "
            f"(looked for {looked}); nothing is downloaded at run time.")
    if name == "imagenet2012":
        return (f"{head} Put {' and '.join(_IMAGENET_TARS)} (from https://image-net.org) in a "
                "directory and pass it as manual_dir (--manual_dir): the data set is then "
                f"prepared offline into {where} (hours, ~150 GB), or prepare it with "
                f"`tfds build imagenet2012 --data_dir={where} --manual_dir=DIR` and copy "
                f"{os.path.join(where, name)} here.")
    return (f"{head} On a machine with network run `tfds build {name} --data_dir={where}`, "
            f"then copy {os.path.join(where, name)} to this machine (or pass the data_dir "
            "that holds it).")


def _prepared_builder(name, data_dir, manual_dir):
    """The tfds builder of a prepared data set; prepares ImageNet from `manual_dir`."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    # The first test only avoids is_prepared()'s warning about a missing file.
    if (builder.data_path / "dataset_info.json").exists() and builder.is_prepared():
        return builder
    if name != "imagenet2012" or manual_dir is None:
        raise ValueError(_not_prepared_message(name, builder))
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


def _small_tfds_source(name, split, size, augment, data_dir):
    """CIFAR-10/100 and MNIST: read once, cached in memory as uint8."""
    import tensorflow_datasets as tfds

    builder = _prepared_builder(name, data_dir, None)
    spec = _TFDS_SPECS[name]
    tfds_split = "train" if split == "train" else spec.tfds_test_split
    ds = builder.as_dataset(split=tfds_split, as_supervised=True, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False)).cache()
    buffer = spec.train_examples if split == "train" else spec.test_examples
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


def _imagenet_source(split, size, augment, shuffle, seed, data_dir, manual_dir):
    """ImageNet: JPEG bytes from the prepared shards, decoded (and cropped) per example."""
    import tensorflow_datasets as tfds

    builder = _prepared_builder("imagenet2012", data_dir, manual_dir)
    tfds_split = "train" if split == "train" else _TFDS_SPECS["imagenet2012"].tfds_test_split
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
