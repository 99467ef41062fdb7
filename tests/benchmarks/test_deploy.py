# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`benchmarks.deploy`: its timing of two .tflite files, and its flag rule.

The whole benchmark (two trainings, eight exports, 32 timed cells) takes
minutes; here its parts run on two one-layer models.
"""

import numpy as np
import pytest
import tensorflow as tf

from addernet_tf import lite
from addernet_tf.benchmarks import deploy
from addernet_tf.ops import adder_conv2d


def _tflite(fn, path, workdir):
    module = tf.Module()
    module.serve = tf.function(fn, input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.uint8)])
    tf.saved_model.save(module, str(workdir), signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(workdir))
    converter.allow_custom_ops = True
    path.write_bytes(lite.finalize(converter.convert()))
    return str(path)


def test_compare_times_both_files_at_the_batch_and_threads_asked(tmp_path, monkeypatch):
    w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))
    ann = _tflite(lambda x: {"y": adder_conv2d(tf.cast(x, tf.float32), w, padding="SAME")},
                  tmp_path / "ann.tflite", tmp_path / "ann")
    cnn = _tflite(lambda x: {"y": tf.nn.conv2d(tf.cast(x, tf.float32), w, 1, "SAME")},
                  tmp_path / "cnn.tflite", tmp_path / "cnn")
    calls = []
    real = lite.Interpreter

    class Counting(real):
        def __call__(self, inputs):
            calls.append((self.num_threads, inputs.shape))
            return super().__call__(inputs)

    monkeypatch.setattr(lite, "Interpreter", Counting)
    monkeypatch.setattr(deploy, "MIN_SECONDS", 0.01)
    ann_s, cnn_s = deploy.compare(ann, cnn, batch=3, threads=2, repeats=2, image_size=8)
    assert 0 < ann_s < 1 and 0 < cnn_s < 1
    assert {c for c in calls} == {(2, (3, 8, 8, 3))}
    assert len(calls) >= 2 + 2 * 2  # warm-up, then >= one run per round and file


def test_runs_go_together():
    with pytest.raises(SystemExit) as exit_info:
        deploy.main(["--ann_run=/tmp/a"])
    assert exit_info.value.code == 2
