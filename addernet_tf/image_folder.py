# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Real images from a folder, in the layout `keras.utils.image_dataset_from_directory` reads.

    DIR/train/<class>/*.jpg|jpeg|png|bmp
    DIR/test/<class>/*          (optional: without it a seeded, stratified
                                 20% of train is the test split)

Classes are the sorted folder names and must be the same in both splits.
`addernet_tf.data` serves it as `dataset="image_folder"`, `data_dir=DIR`; this
module scans, checks and decodes. Every image is decoded once per process
(Pillow), converted to RGB and resized to the requested side (bilinear,
antialiased), and kept in memory as uint8: meant for folders of thousands of
images, not millions (use tfds for those).

Bad input is one ValueError naming the path: a missing folder, no class
folders, an empty class, class sets that differ between the splits, a file
that is not an image. Hidden files (names starting with ".") are ignored.
"""

import functools
import os
from typing import NamedTuple

import numpy as np

__all__ = ["EXTENSIONS", "TEST_FRACTION", "Folder", "scan", "decoded", "statistics"]

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
TEST_FRACTION = 0.2
_TEST_SPLIT_SEED = 0


class Folder(NamedTuple):
    """A scanned image folder.

    Attributes:
      root: the folder (absolute).
      classes: the class names, sorted; label k is classes[k].
      train_files, train_labels: the train split (after any test carve).
      test_files, test_labels: the test split.
      carved_test: True when the test split was carved from DIR/train.
    """

    root: str
    classes: tuple
    train_files: tuple
    train_labels: np.ndarray
    test_files: tuple
    test_labels: np.ndarray
    carved_test: bool


def _class_folders(split_dir):
    names = sorted(name for name in os.listdir(split_dir)
                   if not name.startswith(".") and os.path.isdir(os.path.join(split_dir, name)))
    if not names:
        raise ValueError(f"`data_dir`: {split_dir} has no class folders (expected "
                         f"{split_dir}/<class>/<image files>)")
    return names


def _files(split_dir, classes):
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(split_dir, name)
        found = sorted(entry for entry in os.listdir(folder) if not entry.startswith("."))
        if not found:
            raise ValueError(f"`data_dir`: class folder {folder} holds no image")
        for entry in found:
            path = os.path.join(folder, entry)
            if os.path.isdir(path):
                raise ValueError(f"`data_dir`: {path} is a folder inside a class folder; "
                                 "a class folder holds image files only")
            if not entry.lower().endswith(EXTENSIONS):
                raise ValueError(f"`data_dir`: {path} is not an image ({', '.join(EXTENSIONS)})")
            files.append(path)
            labels.append(label)
    return files, np.asarray(labels, np.int32)


@functools.lru_cache(maxsize=8)
def scan(data_dir):
    """Lists and checks `data_dir` (no image is decoded); returns a `Folder`.

    Raises:
      ValueError: one line naming the path (see the module docstring).
    """
    if not data_dir:
        raise ValueError("`data_dir` is required for the image_folder data set "
                         "(DIR with DIR/train/<class>/<images>)")
    root = os.path.abspath(os.path.expanduser(data_dir))
    if not os.path.isdir(root):
        raise ValueError(f"`data_dir` {data_dir!r}: no such folder")
    train_dir, test_dir = os.path.join(root, "train"), os.path.join(root, "test")
    if not os.path.isdir(train_dir):
        raise ValueError(f"`data_dir` {data_dir!r}: has no train folder ({train_dir})")
    classes = _class_folders(train_dir)
    files, labels = _files(train_dir, classes)
    if os.path.isdir(test_dir):
        test_classes = _class_folders(test_dir)
        if test_classes != classes:
            only_train = sorted(set(classes) - set(test_classes)) or ["-"]
            only_test = sorted(set(test_classes) - set(classes)) or ["-"]
            raise ValueError(f"`data_dir`: the class folders of {train_dir} and {test_dir} "
                             f"differ: only in train: {', '.join(only_train)}; only in test: "
                             f"{', '.join(only_test)}")
        test_files, test_labels = _files(test_dir, classes)
        return Folder(root, tuple(classes), tuple(files), labels, tuple(test_files),
                      test_labels, False)
    test = _stratified_test(labels)
    keep = np.setdiff1d(np.arange(len(files)), test)
    return Folder(root, tuple(classes), tuple(files[i] for i in keep), labels[keep],
                  tuple(files[i] for i in test), labels[test], True)


def _stratified_test(labels):
    """Indices of a seeded, stratified TEST_FRACTION of `labels` (at least one
    example of each class stays in train)."""
    rng = np.random.default_rng(_TEST_SPLIT_SEED)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(int(round(TEST_FRACTION * len(members))), len(members) - 1)
        chosen.extend(rng.permutation(members)[:count])
    return np.sort(np.asarray(chosen, np.int64))


def _decode(path, size):
    from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR, reducing_gap=None)
            return np.asarray(image, np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"`data_dir`: {path} is not a readable image ({e})") from None


@functools.lru_cache(maxsize=4)
def decoded(data_dir, split, size):
    """uint8 `[N, size, size, 3]` images and int32 `[N]` labels of "train" or "test"."""
    folder = scan(data_dir)
    files, labels = ((folder.train_files, folder.train_labels) if split == "train"
                     else (folder.test_files, folder.test_labels))
    images = np.stack([_decode(path, size) for path in files])
    images.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=8)
def statistics(data_dir, size):
    """Per-channel (mean, std) of the train split's images in [0, 1] at `size`
    (the whole train split, whatever validation part is later carved from it)."""
    images, _ = decoded(data_dir, "train", size)
    pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
    return tuple(map(float, pixels.mean(0))), tuple(map(float, pixels.std(0)))
