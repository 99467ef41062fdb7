# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`--distribution_strategy` → a `tf.distribute.Strategy`, and what differs per worker.

    default       `tf.distribute.get_strategy()`: one device.
    mirrored      `MirroredStrategy` over this machine's GPUs; on a machine
                  without GPUs, over `cpu_replicas` logical CPU devices
                  (`MirroredStrategy()` alone would take /cpu:0 only).
    multi_worker  `MultiWorkerMirroredStrategy`; the cluster and this worker's
                  task come from `TF_CONFIG`. Keras 3 `fit` cannot run under it
                  (keras-team/keras#20585): `trainers.custom_loop` trains instead.

A process holds at most one multi-device strategy, and the CPU split and
`MultiWorkerMirroredStrategy` must come before TensorFlow runs any op: make
the strategy first.

Keras 3 keeps BatchNormalization's moving statistics replica-local under any
mirrored strategy (`aggregation="none"`: each replica updates its own copy
from its own batch, and a checkpoint or `save` reads the first replica's).
`ReplicaStatisticsSync` averages them over replicas.
"""

import json
import os

import keras
import tensorflow as tf

__all__ = ["STRATEGIES", "make_strategy", "split_cpu", "tf_config_problem", "is_chief",
           "is_multi_worker", "write_dir", "ReplicaStatisticsSync"]

STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(replicas):
    """Splits the first physical CPU into `replicas` logical devices.

    Returns:
      the logical CPU device names, e.g. `["/device:CPU:0", "/device:CPU:1"]`.

    Raises:
      ValueError: TensorFlow already started with another split in this
        process (devices cannot change once it ran an op).
    """
    if replicas < 1:
        raise ValueError(f"`cpu_replicas` must be >= 1 to split the CPU, got {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != replicas:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
        except RuntimeError:
            have = len(tf.config.list_logical_devices("CPU"))
            raise ValueError(
                f"--cpu_replicas={replicas}: TensorFlow already runs with {have} CPU device(s) "
                "in this process; make the strategy before any TensorFlow op") from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def tf_config_problem(environ=None):
    """What is wrong with `TF_CONFIG` for `multi_worker`, as one line, or None."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    head = "--distribution_strategy=multi_worker: "
    if not raw:
        return head + ("needs TF_CONFIG in the environment (the cluster's workers and this "
                       'worker\'s task, e.g. {"cluster": {"worker": ["host1:port", '
                       '"host2:port"]}, "task": {"type": "worker", "index": 0}})')
    try:
        config = json.loads(raw)
    except ValueError as e:
        return head + f"TF_CONFIG is not valid JSON ({e})"
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        return head + "TF_CONFIG must list the workers under cluster.worker (or cluster.chief)"
    if (not isinstance(task, dict) or task.get("type") not in ("worker", "chief")
            or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(cluster.get(task["type"]) or ())):
        return head + ("TF_CONFIG's task must name this worker in the cluster, e.g. "
                       '{"type": "worker", "index": 0}')
    return None


def make_strategy(name, cpu_replicas=0):
    """`--distribution_strategy` (and `--cpu_replicas`) → a `tf.distribute.Strategy`.

    Args:
      name: one of `STRATEGIES`.
      cpu_replicas: `mirrored` on a machine without GPUs: split the CPU into
        this many logical devices, one replica each; 0 leaves devices alone.

    Raises:
      ValueError: an unknown name, `cpu_replicas` with GPUs present or with
        another strategy, a bad `TF_CONFIG`, or devices already fixed.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--distribution_strategy={name}: must be one of {', '.join(STRATEGIES)}")
    if cpu_replicas and name != "mirrored":
        raise ValueError(f"--cpu_replicas={cpu_replicas}: only applies to "
                         "--distribution_strategy=mirrored")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        problem = tf_config_problem()
        if problem:
            raise ValueError(problem)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_physical_devices("GPU"):
        if cpu_replicas:
            raise ValueError(f"--cpu_replicas={cpu_replicas}: this machine has GPUs, which "
                             "mirrored uses; leave --cpu_replicas at 0")
        return tf.distribute.MirroredStrategy()
    if cpu_replicas:
        return tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
    return tf.distribute.MirroredStrategy()


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the run's outputs (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def write_dir(strategy, model_dir):
    """Where this process writes: `model_dir` for the chief, else its own folder.

    Every worker runs the same code, saves included (all take part in any
    collective a save needs), but only the chief's files are the run's: the
    others write to `model_dir/workertemp_<task id>` (TensorFlow's and Keras'
    convention), which they resume from and delete at the end.
    """
    if is_chief(strategy):
        return model_dir
    return os.path.join(model_dir, f"workertemp_{strategy.cluster_resolver.task_id}")


class ReplicaStatisticsSync(keras.callbacks.Callback):
    """Averages replica-local non-trainable weights (BN moving statistics) over replicas.

    A moving average is linear in its updates, so averaging the replicas'
    copies at any time gives what updating one copy with the mean of the
    replicas' batch statistics would have given: the mean exactly, the
    variance without the spread between the replicas' batch means. Training
    never reads them (BN uses batch statistics there), so `sync()` before
    evaluation and before saving is enough. As a `fit` callback it syncs at
    the start of validation and at the end of every epoch.

    Args:
      strategy: the strategy the networks were built under.
      networks: `keras.Model`s (None entries skipped); only trainable ones are
        synced (a frozen network's weights never move apart).
    """

    def __init__(self, strategy, networks):
        super().__init__()
        self._strategy = strategy
        self._variables = [
            v for net in networks if net is not None and net.trainable
            for v in net.non_trainable_variables if keras.backend.is_float_dtype(v.dtype)]
        self._sync = None
        if strategy.num_replicas_in_sync > 1 and self._variables:
            self._sync = tf.function(lambda: strategy.run(self._average_in_replica))

    def _average_in_replica(self):
        context = tf.distribute.get_replica_context()
        # A bare variable read has no device under MultiWorkerMirroredStrategy
        # ("destinations can not be empty"); an identity gets the replica's.
        means = context.all_reduce(tf.distribute.ReduceOp.MEAN,
                                   [tf.identity(v.value) for v in self._variables])
        for variable, mean in zip(self._variables, means):
            variable.assign(mean)  # aggregation "none": each replica sets its own copy

    def sync(self):
        if self._sync is not None:
            self._sync()

    def on_test_begin(self, logs=None):
        self.sync()

    def on_epoch_end(self, epoch, logs=None):
        self.sync()
