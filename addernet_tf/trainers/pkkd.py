# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Train an ANN student (and its CNN teacher) with PKKD or a baseline method.

    python -m trainers.pkkd --flagfile=configs/resnet32_cifar100.flags
    python -m trainers.pkkd --dataset=digits --model=resnet20 --epochs=10 --model_dir=/tmp/run

Writes to `--model_dir`: run.json, backup/, per-epoch weights, history.csv, logs/ (TensorBoard)
and, at the end, student.keras, teacher.keras and summary.json. The same command after a kill
continues the run. `train(config)` is the same run without absl, for tests and the tuner.
docs/DESIGN.md, "Trainer (`addernet_tf/trainers/`)", has the details.
"""

import math
import os
import shutil
import time
from typing import NamedTuple

import keras
import tensorflow as tf

from addernet_tf import _atomic, cli, data
from addernet_tf.models import get_model, is_external
from addernet_tf.opcount import count_ops
from addernet_tf.trainers import custom_loop
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import losses, memory_check, report, run_dir
from addernet_tf.trainers import strategy as strategy_lib
from addernet_tf.trainers.backup import Backup, SaveBackup
from addernet_tf.trainers.bn_recalibration import BatchNormRecalibration
from addernet_tf.trainers.distiller import Distiller
from addernet_tf.trainers.history import HistoryTable
from addernet_tf.trainers.monitoring import ProgressLine, SigmaBoundWarning
from addernet_tf.trainers.strategy import make_strategy

__all__ = ["train", "load_split", "make_strategy", "NonFiniteLossError", "main"]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the message names the epoch and step."""


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
            _save(network, path)


def _save(network, path):
    """`network.save` or `.save_weights` (by `path`'s extension), atomically."""
    with _atomic.atomic_path(path) as tmp:
        if path.endswith(".weights.h5"):
            network.save_weights(tmp)
        else:
            network.save(tmp)


def _optimizer(config, steps):
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(steps, 1))
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def _feature_loss(config):
    if config.method in ("cnn", "ann", "kd"):
        return None
    if config.method == "pkkd":
        return losses.KernelFeatureLoss(
            kernel=config.kernel, rho=config.rho, sigma_a_init=config.sigma_a_init,
            sigma_c_init=config.sigma_c_init, teacher_heads=config.teacher_heads,
            standardize_maps=config.standardize_maps, direction=config.kernel_direction)
    return losses.FEATURE_LOSSES[config.method]()


class _Data(NamedTuple):
    # Endless, so every batch is full and an epoch is `steps` batches of the
    # stream (about one pass with the default ceil(examples / batch) steps).
    train: object  # tf.data.Dataset of global batches
    validation: object  # or None without --validation_split
    test: object
    steps: int  # per epoch


def load_split(config, split, **kwargs):
    """`data.load` of one split as the run configured by `config` reads it.

    `kwargs` go to `data.load` (seed, repeat, augment, shuffle, ...).
    """
    return data.load(config.dataset, split, batch_size=config.batch_size,
                     image_size=config.image_size, data_dir=config.data_dir,
                     manual_dir=config.manual_dir, validation_split=config.validation_split,
                     download=config.download, **kwargs)


def _uses_custom_loop(strategy):
    return strategy_lib.is_multi_worker(strategy)


def _steps(config, info):
    return config.steps_per_epoch or math.ceil(info.train_examples / config.batch_size)


def _datasets(config, info, start_epoch):
    """The splits, the training stream continued after `start_epoch` epochs.

    The stream is endless, so every global batch is full (Distiller scales
    each replica's loss by its batch × replicas, and a worker left without
    data would hang the others) and a resumed run can skip exactly the
    examples the epochs before it consumed.
    """
    steps = _steps(config, info)
    train = load_split(config, "train", seed=config.seed, repeat=True,
                       skip=start_epoch * steps * config.batch_size)
    validation = load_split(config, "validation") if config.validation_split > 0 else None
    test = load_split(config, "test")
    return _Data(train, validation, test, steps)


def _recalibration(config, student, start_epoch):
    """The student's `BatchNormRecalibration`, or None when it is off."""
    batches = trainer_flags.recalibration_batches(config)
    if batches == 0:
        return None
    # Training batches of a stream of their own (another seed), so recalibrating
    # never shifts the training order; one recalibration per epoch came before.
    stream = load_split(config, "train", seed=config.seed + 1, repeat=True,
                        skip=start_epoch * batches * config.batch_size)
    return BatchNormRecalibration([student], stream, batches)


def _fit(distiller, strategy, datasets, config, epochs, run_dir_path, save, backup, start_epoch,
         callbacks=(), recalibration=None):
    """Trains epochs `start_epoch`..`epochs` (the state restored from `backup`)."""
    guard = _StopOnNonFinite()
    os.makedirs(run_dir_path, exist_ok=True)
    # Order matters: the recalibration runs at the start of validation (and
    # before the saves where there is none); history.csv gets an epoch's row
    # after its weight files, and the backup comes last, so a run resumed
    # from epoch e drops history rows from e on.
    every = getattr(config, "log_every_steps", 0)
    verbose = config.verbose if strategy_lib.is_chief(strategy) else 0
    ours = [*([recalibration] if recalibration is not None else []), save,
            keras.callbacks.TensorBoard(os.path.join(run_dir_path, "logs"),
                                        update_freq=every or "epoch"),
            HistoryTable(os.path.join(run_dir_path, "history.csv"), start_epoch), guard,
            ProgressLine(epochs, datasets.steps, verbose), SigmaBoundWarning(),
            SaveBackup(backup)]
    if _uses_custom_loop(strategy):
        history = custom_loop.fit(
            distiller, strategy, datasets.train, datasets.validation, epochs=epochs,
            steps=datasets.steps, start_epoch=start_epoch, callbacks=[*ours, *callbacks])
    else:
        statistics = strategy_lib.ReplicaStatisticsSync(
            strategy, (distiller.student, distiller.teacher))
        history = distiller.fit(
            datasets.train, epochs=epochs, initial_epoch=start_epoch,
            steps_per_epoch=datasets.steps, validation_data=datasets.validation, verbose=0,
            shuffle=False,  # tf.data shuffles
            callbacks=[statistics, *ours, *callbacks]).history
    if guard.problem:
        raise NonFiniteLossError(guard.problem)
    return history


def _restore(backup, distiller, strategy):
    """Loads `backup`'s newest whole state into `distiller`; returns its epoch."""
    with strategy.scope():
        return backup.restore(distiller)


def _evaluate(distiller, strategy, dataset):
    if dataset is None:
        return {}
    if _uses_custom_loop(strategy):
        return custom_loop.evaluate(distiller, strategy, dataset)
    return distiller.evaluate(dataset, verbose=0, return_dict=True)


def _accuracy(results, network):
    value = results.get(f"{network}_accuracy")
    return None if value is None else float(value)


def _load_teacher_checkpoint(teacher, path):
    if not os.path.exists(path):
        raise ValueError(f"--teacher_checkpoint={path}: does not exist")
    damaged = _atomic.zip_problem(path) if path.endswith(".keras") else None
    if damaged is not None:
        raise ValueError(f"--teacher_checkpoint={path}: not a whole Keras file (truncated or "
                         f"corrupt: {damaged})")
    try:
        if path.endswith(".keras"):
            teacher.set_weights(keras.models.load_model(path, compile=False).get_weights())
        else:
            teacher.load_weights(path)
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(f"--teacher_checkpoint={path}: not a whole checkpoint of this "
                         f"--model ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                         ) from None


def _fixed_teacher(config, strategy, info, teacher, out_dir):
    """Gives the fixed CNN `teacher` its trained weights: loaded, or trained first
    (cross-entropy only) in `out_dir/teacher_pretraining`, resumed like the run."""
    if config.teacher_checkpoint:
        _load_teacher_checkpoint(teacher, config.teacher_checkpoint)
        return
    phase_dir = os.path.join(out_dir, "teacher_pretraining")
    _atomic.clean_stale(phase_dir)
    weights = os.path.join(phase_dir, "teacher.weights.h5")
    done = os.path.join(phase_dir, "DONE")
    if os.path.exists(done):  # a resumed run: the teacher finished before
        teacher.load_weights(weights)
        return
    epochs = config.teacher_epochs or config.epochs
    with strategy.scope():
        trainer = Distiller(teacher, student_weight_decay=config.weight_decay)
        trainer.compile(_optimizer(config, _steps(config, info) * epochs))
    backup = Backup(os.path.join(phase_dir, "backup"))
    start = _restore(backup, trainer, strategy)
    _fit(trainer, strategy, _datasets(config, info, start), config, epochs, phase_dir,
         _SaveNetworks((teacher, weights)), backup, start)
    _save(teacher, weights)
    _atomic.write_json(done, {"epochs": epochs})
    backup.delete()


def _check_memory(config, info, networks):
    if getattr(config, "force", False):
        return
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    memory_check.check(networks, config.dataset, info, config.batch_size, on_gpu=on_gpu)


def train(config, callbacks=(), evaluate_test=True):
    """Runs one training as configured; returns the summary dict it writes.

    A finished run in `config.model_dir` is not trained again: its summary is
    returned, with `"already_finished": True` added.

    Args:
      config: any object with the attributes of `trainers.flags` (e.g. the
        parsed absl `FLAGS`, or a `types.SimpleNamespace`).
      callbacks: extra Keras callbacks for the main `fit` (after ours; under
        multi_worker, for `trainers.custom_loop.fit`, which calls them alike).
      evaluate_test: read the test split at the end (the tuner's trials do
        not: their test figures are None).

    Raises:
      ValueError: a bad configuration, model dir or memory need, or a missing
        data set.
      NonFiniteLossError: a loss became NaN/Inf (the message says where).
    """
    problem = trainer_flags.validate(config)
    if problem:
        raise ValueError(problem)
    # Before any TensorFlow op: the CPU split and the multi-worker setup need it.
    strategy = make_strategy(config.distribution_strategy, getattr(config, "cpu_replicas", 0))
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(f"--batch_size={config.batch_size}: must be a multiple of the "
                         f"{replicas} replicas")
    finished = run_dir.prepare(config, chief=strategy_lib.is_chief(strategy))
    if finished is not None:
        return {**finished, "already_finished": True}
    keras.utils.set_random_seed(config.seed)
    info = data.dataset_info(config.dataset, config.image_size, config.validation_split,
                             data_dir=config.data_dir)
    out_dir = strategy_lib.write_dir(strategy, config.model_dir)
    if out_dir != config.model_dir and getattr(config, "overwrite", False):
        shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)
    eta = config.adaptive_eta or None

    distilled = config.method not in ("cnn", "ann")
    with strategy.scope():
        plan = {"print_fn": print} if is_external(config.model) and config.verbose else {}
        student = get_model(config.model, num_classes=info.num_classes,
                            network="cnn" if config.method == "cnn" else "ann",
                            input_shape=info.image_shape, adaptive_eta=eta, name="student",
                            **plan)
        teacher = (get_model(config.model, num_classes=info.num_classes, network="cnn",
                             input_shape=info.image_shape, name="teacher")
                   if distilled else None)
    _check_memory(config, info, (student, teacher))
    if distilled and config.teacher == "fixed":
        _fixed_teacher(config, strategy, info, teacher, out_dir)
    with strategy.scope():
        distiller = Distiller(
            student, teacher, _feature_loss(config) if distilled else None,
            alpha=config.alpha if distilled else 0.0, beta=config.beta,
            temperature=config.temperature,
            teacher_mode=config.teacher if distilled else "progressive", tap_kind=config.tap,
            student_weight_decay=config.weight_decay, teacher_weight_decay=config.weight_decay)
        progressive = distilled and config.teacher == "progressive"
        total_steps = _steps(config, info) * config.epochs
        distiller.compile(_optimizer(config, total_steps),
                          _optimizer(config, total_steps) if progressive else None)

    backup = Backup(os.path.join(out_dir, "backup"))
    start_epoch = _restore(backup, distiller, strategy)
    datasets = _datasets(config, info, start_epoch)
    recalibration = _recalibration(config, student, start_epoch)
    start = time.time()
    _fit(distiller, strategy, datasets, config, config.epochs, out_dir,
         _SaveNetworks((student, os.path.join(out_dir, "student.weights.h5")),
                       (teacher, os.path.join(out_dir, "teacher.weights.h5"))),
         backup, start_epoch, callbacks, recalibration)
    seconds = time.time() - start
    if recalibration is not None:  # the network evaluated and saved is the trained one
        recalibration.recalibrate()
    val = _evaluate(distiller, strategy, datasets.validation)
    test = _evaluate(distiller, strategy, datasets.test) if evaluate_test else {}
    _save(student, os.path.join(out_dir, run_dir.STUDENT))
    if teacher is not None:
        _save(teacher, os.path.join(out_dir, run_dir.TEACHER))

    summary = {
        "student_accuracy": _accuracy(test, "student"),
        "teacher_accuracy": _accuracy(test, "teacher"),
        "student_test_accuracy": _accuracy(test, "student"),
        "teacher_test_accuracy": _accuracy(test, "teacher"),
        "student_val_accuracy": _accuracy(val, "student"),
        "teacher_val_accuracy": _accuracy(val, "teacher"),
        "train_examples": info.train_examples,
        "validation_examples": info.validation_examples,
        "bn_recalibration_batches": trainer_flags.recalibration_batches(config),
        "normalization": dict(zip(("mean", "std"), data.normalization(
            config.dataset, info.image_shape[0], data_dir=config.data_dir))),
        "student_ops": count_ops(student).as_dict(),
        "teacher_ops": count_ops(teacher).as_dict() if teacher is not None else None,
        "train_seconds": round(seconds, 1),
        "resumed_from_epoch": start_epoch,
        "replicas": replicas,
        "flags": trainer_flags.as_dict(config),
    }
    # summary.json marks the run finished: the backup goes only after it.
    _atomic.write_json(os.path.join(out_dir, run_dir.SUMMARY), summary)
    backup.delete()
    if out_dir != config.model_dir:  # a non-chief worker's own copy
        shutil.rmtree(out_dir)
    else:
        report.write_quietly(out_dir)
    return summary


def main(config):
    summary = train(config)
    if summary.get("already_finished"):
        print(f"{config.model_dir} holds this run, finished before; its results "
              "(--overwrite trains it again):")
    student, teacher = summary["student_accuracy"], summary["teacher_accuracy"]
    if student is not None:  # None: trained without a test figure (a tuner's trial)
        print(f"test accuracy: student {student:.4f}"
              + (f", teacher {teacher:.4f}" if teacher is not None else ""))
    print(f"checkpoints, logs and summary.json: {os.path.abspath(config.model_dir)}")


if __name__ == "__main__":
    cli.run("pkkd", trainer_flags.define_flags, main, validate=trainer_flags.validate,
            errors=(ValueError, NonFiniteLossError))
