"""Train an ANN student (and its CNN teacher) with PKKD or a baseline method.

    python -m trainers.pkkd --flagfile=configs/resnet32_cifar100.flags
    python -m trainers.pkkd --dataset=digits --model=resnet20 --epochs=10 --model_dir=/tmp/run

Writes to `--model_dir`: `backup/` (while training: the state, saved every
epoch, from which `keras.callbacks.BackupAndRestore` resumes a killed run),
`student.weights.h5` and `teacher.weights.h5` (every epoch), `student.keras` /
`teacher.keras` (at the end), `logs/` (TensorBoard), `history.csv`, and
`summary.json` (accuracies, op counts, flags). `train(config)` is the same run
without absl, for tests and the tuner.
"""

import json
import math
import os
import sys
import time

import keras
import tensorflow as tf
from absl import app, flags

from addernet_tf import data
from addernet_tf.models import get_model
from addernet_tf.opcount import count_ops
from trainers import flags as trainer_flags
from trainers import losses
from trainers.distiller import Distiller

__all__ = ["train", "make_strategy", "NonFiniteLossError", "main"]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the message names the epoch and step."""


def make_strategy(name):
    """`--distribution_strategy` → a `tf.distribute.Strategy`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(
        f"`distribution_strategy` {name!r} is not supported yet (default, mirrored)")


class _StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.epoch, self.problem = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name in ("student_loss", "teacher_ce"):
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                self.problem = (f"{name} became {float(value)} at epoch {self.epoch + 1}, "
                                f"step {batch + 1}")
                self.model.stop_training = True
                return


class _SaveNetworks(keras.callbacks.Callback):
    """Saves networks' weights at the end of every epoch.

    Args:
      targets: `(keras.Model or None, path)` pairs; None entries are skipped.
    """

    def __init__(self, *targets):
        super().__init__()
        self.targets = [(network, path) for network, path in targets if network is not None]

    def on_epoch_end(self, epoch, logs=None):
        for network, path in self.targets:
            network.save_weights(path)


def _optimizer(config, steps):
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(steps, 1))
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def _feature_loss(config):
    if config.method in ("cnn", "ann", "kd"):
        return None
    if config.method == "pkkd":
        return losses.KernelFeatureLoss(
            kernel=config.kernel, rho=config.rho, sigma_a_init=config.sigma_a_init,
            sigma_c_init=config.sigma_c_init, teacher_heads=config.teacher_heads)
    return losses.FEATURE_LOSSES[config.method]()


def _datasets(config, info):
    train = data.load(config.dataset, "train", batch_size=config.batch_size,
                      image_size=config.image_size, data_dir=config.data_dir,
                      manual_dir=config.manual_dir, seed=config.seed,
                      repeat=config.steps_per_epoch is not None)
    test = data.load(config.dataset, "test", batch_size=config.batch_size,
                     image_size=config.image_size, data_dir=config.data_dir,
                     manual_dir=config.manual_dir)
    steps = config.steps_per_epoch or math.ceil(info.train_examples / config.batch_size)
    return train, test, steps


def _fit(distiller, train_ds, test_ds, config, epochs, run_dir, save, callbacks=()):
    guard = _StopOnNonFinite()
    os.makedirs(run_dir, exist_ok=True)
    # Order matters: once history.csv has an epoch's row, that epoch's backup
    # and weight files are on disk.
    history = distiller.fit(
        train_ds, epochs=epochs, steps_per_epoch=config.steps_per_epoch,
        validation_data=test_ds, verbose=config.verbose, shuffle=False,  # tf.data shuffles
        callbacks=[keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup")), save,
                   keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
                   keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
                   guard, *callbacks])
    if guard.problem:
        raise NonFiniteLossError(guard.problem)
    return history


def _fixed_teacher(config, strategy, info, train_ds, test_ds, steps):
    """A trained CNN teacher: loaded, or trained first (cross-entropy only)."""
    with strategy.scope():
        teacher = get_model(config.model, num_classes=info.num_classes, conv="conv",
                            input_shape=info.image_shape, name="teacher")
    if config.teacher_checkpoint:
        if not os.path.exists(config.teacher_checkpoint):
            raise ValueError(f"`teacher_checkpoint` {config.teacher_checkpoint!r} does not exist")
        if config.teacher_checkpoint.endswith(".keras"):
            teacher.set_weights(keras.models.load_model(config.teacher_checkpoint).get_weights())
        else:
            teacher.load_weights(config.teacher_checkpoint)
        return teacher
    run_dir = os.path.join(config.model_dir, "teacher_pretraining")
    weights = os.path.join(run_dir, "teacher.weights.h5")
    done = os.path.join(run_dir, "DONE")
    if os.path.exists(done):  # a resumed run: the teacher finished before
        teacher.load_weights(weights)
        return teacher
    epochs = config.teacher_epochs or config.epochs
    with strategy.scope():
        trainer = Distiller(teacher, student_weight_decay=config.weight_decay)
        trainer.compile(_optimizer(config, steps * epochs))
    _fit(trainer, train_ds, test_ds, config, epochs, run_dir, _SaveNetworks((teacher, weights)))
    teacher.save_weights(weights)
    open(done, "w").close()
    return teacher


def train(config, callbacks=()):
    """Runs one training as configured; returns the summary dict it writes.

    Args:
      config: any object with the attributes of `trainers.flags` (e.g. the
        parsed absl `FLAGS`, or a `types.SimpleNamespace`).
      callbacks: extra Keras callbacks for the main `fit` (after ours).

    Raises:
      ValueError: a bad configuration or a missing data set.
      NonFiniteLossError: a loss became NaN/Inf (the message says where).
    """
    problem = trainer_flags.validate(config)
    if problem:
        raise ValueError(problem)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.distribution_strategy)
    info = data.dataset_info(config.dataset, config.image_size)
    train_ds, test_ds, steps = _datasets(config, info)
    os.makedirs(config.model_dir, exist_ok=True)
    eta = config.adaptive_eta or None

    distilled = config.method not in ("cnn", "ann")
    teacher = None
    if distilled and config.teacher == "fixed":
        teacher = _fixed_teacher(config, strategy, info, train_ds, test_ds, steps)
    with strategy.scope():
        student = get_model(config.model, num_classes=info.num_classes,
                            conv="conv" if config.method == "cnn" else "adder",
                            input_shape=info.image_shape, adaptive_eta=eta, name="student")
        if distilled and teacher is None:
            teacher = get_model(config.model, num_classes=info.num_classes, conv="conv",
                                input_shape=info.image_shape, name="teacher")
        distiller = Distiller(
            student, teacher, _feature_loss(config) if distilled else None,
            alpha=config.alpha if distilled else 0.0, beta=config.beta,
            temperature=config.temperature,
            teacher_mode=config.teacher if distilled else "progressive", tap_kind=config.tap,
            student_weight_decay=config.weight_decay, teacher_weight_decay=config.weight_decay)
        progressive = distilled and config.teacher == "progressive"
        total_steps = steps * config.epochs
        distiller.compile(_optimizer(config, total_steps),
                          _optimizer(config, total_steps) if progressive else None)

    start = time.time()
    _fit(distiller, train_ds, test_ds, config, config.epochs, config.model_dir,
         _SaveNetworks((student, os.path.join(config.model_dir, "student.weights.h5")),
                       (teacher, os.path.join(config.model_dir, "teacher.weights.h5"))),
         callbacks)
    seconds = time.time() - start
    results = distiller.evaluate(test_ds, verbose=0, return_dict=True)
    student.save(os.path.join(config.model_dir, "student.keras"))
    if teacher is not None:
        teacher.save(os.path.join(config.model_dir, "teacher.keras"))

    summary = {
        "student_accuracy": float(results["student_accuracy"]),
        "teacher_accuracy": (float(results["teacher_accuracy"])
                             if "teacher_accuracy" in results else None),
        "student_ops": count_ops(student).as_dict(),
        "teacher_ops": count_ops(teacher).as_dict() if teacher is not None else None,
        "train_seconds": round(seconds, 1),
        "flags": trainer_flags.as_dict(config),
    }
    with open(os.path.join(config.model_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    return summary


def main(argv):
    del argv
    config = flags.FLAGS
    try:
        summary = train(config)
    except (ValueError, NonFiniteLossError) as e:
        sys.exit(f"pkkd: {e}")
    teacher = summary["teacher_accuracy"]
    print(f"student accuracy {summary['student_accuracy']:.4f}"
          + (f", teacher accuracy {teacher:.4f}" if teacher is not None else ""))
    print(f"checkpoints, logs and summary.json: {os.path.abspath(config.model_dir)}")


if __name__ == "__main__":
    trainer_flags.define_flags()
    app.run(main)
