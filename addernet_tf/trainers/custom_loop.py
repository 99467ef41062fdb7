# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A training loop for where Keras `fit` cannot go: `MultiWorkerMirroredStrategy`.

Keras 3 `fit` is broken under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585). This loop runs the same `Distiller.train_step` and
`test_step` through `strategy.run` over `strategy.experimental_distribute_dataset`
and drives the same Keras callbacks as `fit` does (`on_train_begin`,
`on_epoch_begin`, `on_train_batch_begin/end`, `on_test_begin/end`,
`on_epoch_end`, `on_train_end`, `model.stop_training`), so `TensorBoard` and
the trainer's own callbacks (its per-epoch backup included) write the same
per-epoch outputs. It runs under any strategy (the tests compare it with `fit`
under the default one).

The logs a callback sees are the same on every worker: each step's logs are
averaged over all replicas (one all-reduce), so a callback that stops training
(the NaN guard) stops every worker at the same step instead of leaving the
others waiting in a collective.
"""

import keras
import tensorflow as tf

from addernet_tf.trainers.strategy import ReplicaStatisticsSync

__all__ = ["fit", "evaluate", "distribute"]


def distribute(strategy, dataset):
    """`dataset` (global batches) split over the replicas; workers shard by element.

    The digits and tfds pipelines have no files to shard by, and every worker
    shuffles with the same seed, so sharding by element gives each worker its
    own examples (`AUTO` would reach the same choice after a warning).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _call(callbacks, hook, *args):
    for callback in callbacks:
        getattr(callback, hook)(*args)


def evaluate(distiller, strategy, dataset, callbacks=()):
    """`distiller.evaluate(dataset, return_dict=True)`, one test step per global batch.

    Args:
      distiller: a compiled `Distiller` built under `strategy`.
      strategy: the `tf.distribute.Strategy`.
      dataset: global batches `(images [N, H, W, C], labels [N])`; a last
        partial batch is fine (a replica may get an empty one).
      callbacks: Keras callbacks, given `on_test_begin` / `on_test_end`.

    Returns:
      `{name: float}` over the whole data set (every replica's examples).
    """
    return _evaluate(distiller, strategy, dataset, callbacks, _test_function(distiller, strategy))


def _evaluate(distiller, strategy, dataset, callbacks, step):
    for metric in distiller.metrics:
        metric.reset_state()
    _call(callbacks, "on_test_begin")
    names = ()
    for batch in distribute(strategy, dataset):
        names = tuple(step(batch))
    # result() in cross-replica context sums the replicas' metric variables.
    logs = {m.name: float(m.result()) for m in distiller.metrics if m.name in names}
    _call(callbacks, "on_test_end", logs)
    return logs


def _test_function(distiller, strategy):
    @tf.function
    def step(batch):
        return strategy.run(distiller.test_step, args=(batch,))
    return step


def _train_function(distiller, strategy, names):
    """One distributed train step → its logs averaged over replicas, as one vector.

    `names` is filled with the logs' keys while the function traces.
    """
    def replica_step(batch):
        logs = distiller.train_step(batch)
        names[:] = sorted(logs)
        return tf.stack([tf.cast(tf.reshape(logs[name], []), tf.float32) for name in names])

    @tf.function
    def step(iterator):
        per_replica = strategy.run(replica_step, args=(next(iterator),))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    return step


def fit(distiller, strategy, train_ds, test_ds, *, epochs, steps, start_epoch=0, callbacks=(),
        verbose=0):
    """Trains `distiller` for epochs `start_epoch`..`epochs` of `steps` steps.

    Args:
      distiller: a compiled `Distiller` built under `strategy`.
      strategy: the `tf.distribute.Strategy` (any; meant for
        `MultiWorkerMirroredStrategy`).
      train_ds: endless (repeated) global batches of equal size, a multiple of
        the number of replicas: every worker must run every step.
      test_ds: global batches for the validation after every epoch, or None.
      epochs: total epochs, counting those a resumed run already did.
      steps: steps per epoch.
      start_epoch: epochs done before (the caller restored their state, as
        `fit(initial_epoch=...)` expects).
      callbacks: Keras callbacks, called as `fit` calls them.
      verbose: 0 silent, 1 a progress bar, 2 one line per epoch.

    Returns:
      `{name: [value per epoch run]}`, like `fit(...).history`.
    """
    statistics = ReplicaStatisticsSync(strategy, (distiller.student, distiller.teacher))
    names = []
    train_step = _train_function(distiller, strategy, names)
    test_step = _test_function(distiller, strategy)  # traced once, not once per epoch
    iterator = iter(distribute(strategy, train_ds))
    callbacks = list(callbacks)
    _call(callbacks, "set_model", distiller)
    distiller.stop_training = False
    history, logs = {}, {}
    _call(callbacks, "on_train_begin")
    for epoch in range(start_epoch, epochs):
        for metric in distiller.metrics:
            metric.reset_state()
        _call(callbacks, "on_epoch_begin", epoch)
        progress = keras.utils.Progbar(steps, verbose=verbose)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")
        for step in range(steps):
            _call(callbacks, "on_train_batch_begin", step)
            logs = dict(zip(names, train_step(iterator).numpy().tolist()))
            _call(callbacks, "on_train_batch_end", step, logs)
            if distiller.stop_training:
                break
            progress.update(step + 1, list(logs.items()), finalize=False)
        if distiller.stop_training:  # mid-epoch: nothing of this epoch is saved
            break
        statistics.sync()
        if test_ds is not None:
            val_logs = _evaluate(distiller, strategy, test_ds, callbacks, test_step)
            logs = {**logs, **{f"val_{name}": value for name, value in val_logs.items()}}
        progress.update(steps, list(logs.items()), finalize=True)
        _call(callbacks, "on_epoch_end", epoch, logs)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        if distiller.stop_training:
            break
    _call(callbacks, "on_train_end", logs)
    return history
