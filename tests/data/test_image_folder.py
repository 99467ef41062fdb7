# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`dataset="image_folder"`: a folder of class folders, checked, decoded, normalized, trained on."""

import os

import numpy as np
import pytest
from PIL import Image

from addernet_tf import data, image_folder
from tests import tiny_model

CLASSES = ("cat", "dog", "emu")


def _write(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


def _make(root, per_class=10, size=8, test_per_class=0, seed=0):
    """A folder of PNGs whose colour depends on the class; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    made = {}
    for split, count in (("train", per_class), ("test", test_per_class)):
        if not count:
            continue
        images, labels = [], []
        for label, name in enumerate(CLASSES):
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                pixels[..., label] = 255  # a class-coloured channel
                _write(os.path.join(root, split, name, f"{i:03d}.png"), pixels)
                images.append(pixels)
                labels.append(label)
        made[split] = (np.stack(images), np.asarray(labels))
    return made


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    made = _make(str(root), per_class=10, test_per_class=4)
    image_folder.scan.cache_clear()
    return str(root), made


def test_classes_are_the_sorted_folders_and_the_splits_are_counted(folder):
    root, _ = folder
    scanned = image_folder.scan(root)
    assert scanned.classes == CLASSES and not scanned.carved_test
    info = data.dataset_info("image_folder", 8, validation_split=0.2, data_dir=root)
    assert (info.num_classes, info.image_shape) == (3, (8, 8, 3))
    assert (info.train_examples, info.validation_examples, info.test_examples) == (24, 6, 12)


def test_statistics_are_those_of_the_train_images(folder):
    root, made = folder
    train = made["train"][0].reshape(-1, 3) / 255.0
    mean, std = data.normalization("image_folder", 8, data_dir=root)
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, train.std(0), rtol=1e-12)


def test_test_split_yields_the_test_images_normalized(folder):
    root, made = folder
    images, labels = made["test"]
    mean, std = (np.asarray(v) for v in data.normalization("image_folder", 8, data_dir=root))
    ds = data.load("image_folder", "test", batch_size=100, image_size=8, data_dir=root)
    got_images, got_labels = next(iter(ds.as_numpy_iterator()))
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_images, (images / 255.0 - mean) / std, atol=1e-5)


def test_without_a_test_folder_a_stratified_fifth_is_carved(tmp_path):
    root = str(tmp_path / "images")
    _make(root, per_class=10)
    image_folder.scan.cache_clear()
    scanned = image_folder.scan(root)
    assert scanned.carved_test
    assert np.bincount(scanned.test_labels).tolist() == [2, 2, 2]
    assert not set(scanned.test_files) & set(scanned.train_files)
    assert image_folder.scan(root) == scanned  # fixed, not drawn anew


def test_images_of_another_size_are_resized(folder):
    root, _ = folder
    ds = data.load("image_folder", "train", batch_size=4, image_size=16, data_dir=root)
    images, _ = next(iter(ds))
    assert images.shape == (4, 16, 16, 3)


@pytest.mark.parametrize("damage, message", [
    ("missing", "no such folder"),
    ("no_classes", "has no class folders"),
    ("empty_class", "holds no image"),
    ("class_sets_differ", "only in train: emu; only in test: fox"),
    ("not_an_image", "is not an image"),
    ("garbage_jpg", "is not a readable image"),
])
def test_bad_folders_are_one_line_naming_the_path(tmp_path, damage, message):
    root = str(tmp_path / "images")
    _make(root, per_class=3, test_per_class=2)
    image_folder.scan.cache_clear()
    image_folder.decoded.cache_clear()
    named = root
    if damage == "missing":
        named = root = str(tmp_path / "nowhere")
    elif damage == "no_classes":
        for name in CLASSES:
            for entry in os.listdir(os.path.join(root, "train", name)):
                os.remove(os.path.join(root, "train", name, entry))
            os.rmdir(os.path.join(root, "train", name))
        named = os.path.join(root, "train")
    elif damage == "empty_class":
        named = os.path.join(root, "train", "ant")
        os.makedirs(named)
    elif damage == "class_sets_differ":
        os.rename(os.path.join(root, "test", "emu"), os.path.join(root, "test", "fox"))
    elif damage == "not_an_image":
        named = os.path.join(root, "train", "dog", "notes.txt")
        open(named, "w").write("not a picture")
    elif damage == "garbage_jpg":
        named = os.path.join(root, "train", "dog", "broken.jpg")
        open(named, "wb").write(b"\xff\xd8 torn")
    with pytest.raises(ValueError) as error:
        data.normalization("image_folder", 8, data_dir=root)  # scans, then decodes
    text = str(error.value)
    assert message in text and named in text and "\n" not in text


def test_the_trainer_requires_data_dir():
    from addernet_tf.trainers import flags as trainer_flags
    config = trainer_flags.defaults(dataset="image_folder")
    assert trainer_flags.validate(config) == (
        "--data_dir=None: required with --dataset=image_folder")


def test_train_and_export_round_trip(folder, tmp_path):
    """A run on the folder trains, records its normalization, and exports to an
    int8 TFLite file calibrated and checked on the folder's images."""
    from addernet_tf import export
    from addernet_tf.trainers import flags as trainer_flags
    from addernet_tf.trainers import pkkd
    root, _ = folder
    model_dir = str(tmp_path / "run")
    summary = pkkd.train(trainer_flags.defaults(
        dataset="image_folder", data_dir=root, image_size=8, model=tiny_model.SPEC, method="kd",
        epochs=1, steps_per_epoch=2, batch_size=8, verbose=0, model_dir=model_dir))
    assert summary["flags"]["data_dir"] == root
    mean, std = data.normalization("image_folder", 8, data_dir=root)
    assert list(summary["normalization"]["mean"]) == pytest.approx(mean, rel=1e-12)
    assert list(summary["normalization"]["std"]) == pytest.approx(std, rel=1e-12)
    out = str(tmp_path / "student_int8.tflite")  # calibrated on the folder's images
    result = export.export(model_dir, "tflite_int8", out, calibration_images=12,
                           eval_images=12)
    assert os.path.getsize(out) > 1000 and result["format"] == "tflite_int8"
    assert result["eval_images"] == 12


def test_the_tuner_searches_on_a_folder(folder, tmp_path):
    import json
    from addernet_tf.trainers import flags as trainer_flags
    from addernet_tf.trainers import tune
    root, _ = folder
    base = vars(trainer_flags.defaults(
        dataset="image_folder", data_dir=root, image_size=8, model=tiny_model.SPEC, method="pkkd",
        epochs=1, steps_per_epoch=2, batch_size=8, verbose=0, model_dir=str(tmp_path / "run")))
    result = tune.search(base, "random", max_trials=1, tune_dir=str(tmp_path / "tune"))
    (row,) = result["rows"]
    assert row["status"] == "COMPLETED" and 0.0 <= row["score"] <= 1.0
    with open(tmp_path / "tune" / "random" / "trial_0" / "summary.json") as f:
        summary = json.load(f)
    assert summary["flags"]["data_dir"] == root and summary["student_test_accuracy"] is None
