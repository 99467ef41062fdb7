"""Train an ANN student (and its CNN teacher) with PKKD or a baseline method.

    python -m trainers.pkkd --flagfile=configs/resnet32_cifar100.flags
    python -m trainers.pkkd --dataset=digits --model=resnet20 --epochs=10 --model_dir=/tmp/run

Writes to `--model_dir`: `backup/` (while training: the state, saved every
epoch, from which `keras.callbacks.BackupAndRestore` resumes a killed run),
`student.weights.h5` and `teacher.weights.h5` (every epoch), `student.keras` /
`teacher.keras` (at the end), `logs/` (TensorBoard), `history.csv`, and
`summary.json` (accuracies, op counts, flags). `train(config)` is the same run
without absl, for tests and the tuner.

Evaluation: `--validation_split` carves a fixed part of the training split
for the per-epoch `val_*` metrics (and the tuner); the test split is read once,
at the end. Before every evaluation and before saving, the adder student's BN
statistics are re-estimated with its current weights on
`--bn_recalibration_batches` training batches (`trainers.bn_recalibration`).
summary.json has `student_val_accuracy`, `student_test_accuracy`,
`teacher_val_accuracy`, `teacher_test_accuracy`; `student_accuracy` and
`teacher_accuracy` are the test figures.

`--distribution_strategy` (see `trainers.strategy`): `default` and `mirrored`
train with Keras `fit`; `multi_worker` (`TF_CONFIG` set) trains with
`trainers.custom_loop`, since Keras 3 `fit` cannot run under
`MultiWorkerMirroredStrategy`. With several workers only the chief writes to
`--model_dir`; the others write to `--model_dir/workertemp_<task id>` and
delete it at the end.
"""

import json
import math
import os
import shutil
import sys
import time
from typing import NamedTuple

import keras
from absl import app, flags

from addernet_tf import data
from addernet_tf.models import get_model
from addernet_tf.opcount import count_ops
from trainers import custom_loop
from trainers import flags as trainer_flags
from trainers import losses
from trainers import strategy as strategy_lib
from trainers.bn_recalibration import BatchNormRecalibration
from trainers.distiller import Distiller
from trainers.monitoring import ProgressLine, SigmaBoundWarning
from trainers.strategy import make_strategy

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
            sigma_c_init=config.sigma_c_init, teacher_heads=config.teacher_heads,
            standardize_maps=config.standardize_maps, direction=config.kernel_direction)
    return losses.FEATURE_LOSSES[config.method]()


class _Data(NamedTuple):
    train: object  # tf.data.Dataset of global batches
    validation: object  # or None without --validation_split
    test: object
    steps: int  # per epoch
    # `train` is endless, so every batch is full and an epoch is `steps` batches
    # of the stream (about one pass with the default ceil(examples / batch) steps).
    repeated: bool


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


def _datasets(config, info, strategy):
    # With several replicas every global batch must be full: Distiller scales
    # each replica's loss by (its batch × replicas), and a worker left without
    # data would hang the others.
    repeated = (config.steps_per_epoch is not None or strategy.num_replicas_in_sync > 1
                or _uses_custom_loop(strategy))
    train = load_split(config, "train", seed=config.seed, repeat=repeated)
    validation = load_split(config, "validation") if config.validation_split > 0 else None
    test = load_split(config, "test")
    steps = config.steps_per_epoch or math.ceil(info.train_examples / config.batch_size)
    return _Data(train, validation, test, steps, repeated)


def _recalibration(config, student):
    """The student's `BatchNormRecalibration`, or None when it is off."""
    batches = trainer_flags.recalibration_batches(config)
    if batches == 0:
        return None
    # Training batches of a stream of their own (another seed), so recalibrating
    # never shifts the training order.
    stream = load_split(config, "train", seed=config.seed + 1, repeat=True)
    return BatchNormRecalibration([student], stream, batches)


def _fit(distiller, strategy, datasets, config, epochs, run_dir, save, callbacks=(),
         recalibration=None):
    guard = _StopOnNonFinite()
    os.makedirs(run_dir, exist_ok=True)
    # Order matters: the recalibration runs at the start of validation (and
    # before the saves where there is none); once history.csv has an epoch's
    # row, that epoch's backup and weight files are on disk (and the
    # replicas' BN statistics agree).
    every = getattr(config, "log_every_steps", 0)
    verbose = config.verbose if strategy_lib.is_chief(strategy) else 0
    ours = [*([recalibration] if recalibration is not None else []), save,
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"),
                                        update_freq=every or "epoch"),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True), guard,
            ProgressLine(epochs, datasets.steps if datasets.repeated else None, verbose),
            SigmaBoundWarning()]
    if _uses_custom_loop(strategy):
        history = custom_loop.fit(
            distiller, strategy, datasets.train, datasets.validation, epochs=epochs,
            steps=datasets.steps, backup_dir=os.path.join(run_dir, "backup"),
            callbacks=[*ours, *callbacks])
    else:
        statistics = strategy_lib.ReplicaStatisticsSync(
            strategy, (distiller.student, distiller.teacher))
        backup = keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"))
        history = distiller.fit(
            datasets.train, epochs=epochs,
            steps_per_epoch=datasets.steps if datasets.repeated else None,
            validation_data=datasets.validation, verbose=0, shuffle=False,  # tf.data shuffles
            callbacks=[statistics, backup, *ours, *callbacks]).history
    if guard.problem:
        raise NonFiniteLossError(guard.problem)
    return history


def _evaluate(distiller, strategy, dataset):
    if dataset is None:
        return {}
    if _uses_custom_loop(strategy):
        return custom_loop.evaluate(distiller, strategy, dataset)
    return distiller.evaluate(dataset, verbose=0, return_dict=True)


def _accuracy(results, network):
    value = results.get(f"{network}_accuracy")
    return None if value is None else float(value)


def _fixed_teacher(config, strategy, info, datasets, out_dir):
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
    run_dir = os.path.join(out_dir, "teacher_pretraining")
    weights = os.path.join(run_dir, "teacher.weights.h5")
    done = os.path.join(run_dir, "DONE")
    if os.path.exists(done):  # a resumed run: the teacher finished before
        teacher.load_weights(weights)
        return teacher
    epochs = config.teacher_epochs or config.epochs
    with strategy.scope():
        trainer = Distiller(teacher, student_weight_decay=config.weight_decay)
        trainer.compile(_optimizer(config, datasets.steps * epochs))
    _fit(trainer, strategy, datasets, config, epochs, run_dir, _SaveNetworks((teacher, weights)))
    teacher.save_weights(weights)
    open(done, "w").close()
    return teacher


def train(config, callbacks=(), evaluate_test=True):
    """Runs one training as configured; returns the summary dict it writes.

    Args:
      config: any object with the attributes of `trainers.flags` (e.g. the
        parsed absl `FLAGS`, or a `types.SimpleNamespace`).
      callbacks: extra Keras callbacks for the main `fit` (after ours; under
        multi_worker, for `trainers.custom_loop.fit`, which calls them alike).
      evaluate_test: read the test split at the end (the tuner's trials do
        not: their test figures are None).

    Raises:
      ValueError: a bad configuration or a missing data set.
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
    keras.utils.set_random_seed(config.seed)
    info = data.dataset_info(config.dataset, config.image_size, config.validation_split)
    datasets = _datasets(config, info, strategy)
    out_dir = strategy_lib.write_dir(strategy, config.model_dir)
    os.makedirs(out_dir, exist_ok=True)
    eta = config.adaptive_eta or None

    distilled = config.method not in ("cnn", "ann")
    teacher = None
    if distilled and config.teacher == "fixed":
        teacher = _fixed_teacher(config, strategy, info, datasets, out_dir)
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
        total_steps = datasets.steps * config.epochs
        distiller.compile(_optimizer(config, total_steps),
                          _optimizer(config, total_steps) if progressive else None)

    recalibration = _recalibration(config, student)
    start = time.time()
    _fit(distiller, strategy, datasets, config, config.epochs, out_dir,
         _SaveNetworks((student, os.path.join(out_dir, "student.weights.h5")),
                       (teacher, os.path.join(out_dir, "teacher.weights.h5"))),
         callbacks, recalibration)
    seconds = time.time() - start
    if recalibration is not None:  # the network evaluated and saved is the trained one
        recalibration.recalibrate()
    val = _evaluate(distiller, strategy, datasets.validation)
    test = _evaluate(distiller, strategy, datasets.test) if evaluate_test else {}
    student.save(os.path.join(out_dir, "student.keras"))
    if teacher is not None:
        teacher.save(os.path.join(out_dir, "teacher.keras"))

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
        "student_ops": count_ops(student).as_dict(),
        "teacher_ops": count_ops(teacher).as_dict() if teacher is not None else None,
        "train_seconds": round(seconds, 1),
        "replicas": replicas,
        "flags": trainer_flags.as_dict(config),
    }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    if out_dir != config.model_dir:  # a non-chief worker's own copy
        shutil.rmtree(out_dir)
    return summary


def main(argv):
    del argv
    config = flags.FLAGS
    try:
        summary = train(config)
    except (ValueError, NonFiniteLossError) as e:
        sys.exit(f"pkkd: {e}")
    teacher = summary["teacher_accuracy"]
    print(f"test accuracy: student {summary['student_accuracy']:.4f}"
          + (f", teacher {teacher:.4f}" if teacher is not None else ""))
    print(f"checkpoints, logs and summary.json: {os.path.abspath(config.model_dir)}")


if __name__ == "__main__":
    trainer_flags.define_flags()
    app.run(main)
