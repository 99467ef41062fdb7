# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A `trainers.pkkd` run that SIGKILLs itself at a chosen point (a test helper).

    python tests/trainers/kill_child.py KILL_AT [trainer flags...]

KILL_AT is "none", "step:N" (after this process's N-th training step) or
"write:N" (inside this process's N-th atomic save: its temporary file or
folder is cut to half its bytes, as a kill mid-write leaves it, then the
process dies before the rename). The run's final weights go to
`<model_dir>/../final-<basename>.npz` when it finishes.
"""

import os
import signal
import sys

import keras
import numpy as np
from absl import flags


def _truncate_half(path):
    if os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                       for name in names)
        if files:
            _truncate_half(files[-1])
        return
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def main():
    kill_at, args = sys.argv[1], sys.argv[2:]
    from addernet_tf import _atomic
    from addernet_tf.trainers import flags as trainer_flags
    from addernet_tf.trainers import pkkd

    values = flags.FlagValues()
    trainer_flags.define_flags(values)
    values(["pkkd", *args])
    kind, _, count = kill_at.partition(":")
    count = int(count or 0)
    callbacks = []

    if kind == "write":
        seen = [0]

        def hook(stage, tmp, final):
            seen[0] += 1
            if seen[0] == count:
                _truncate_half(tmp)
                print(f"killed inside the save of {os.path.basename(final)}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

        _atomic._hook = hook  # pylint: disable=protected-access
    elif kind == "step":
        class Kill(keras.callbacks.Callback):
            steps = 0

            def on_train_batch_end(self, batch, logs=None):
                Kill.steps += 1
                if Kill.steps == count:
                    os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(Kill())
    summary = pkkd.train(values, callbacks=callbacks)
    model = keras.models.load_model(os.path.join(values.model_dir, "student.keras"))
    weights = [np.asarray(w) for w in model.weights]
    teacher_path = os.path.join(values.model_dir, "teacher.keras")
    if os.path.exists(teacher_path):
        weights += [np.asarray(w) for w in keras.models.load_model(teacher_path).weights]
    model_dir = os.path.abspath(values.model_dir)
    out = os.path.join(os.path.dirname(model_dir), f"final-{os.path.basename(model_dir)}.npz")
    np.savez(out, *weights)
    print(f"finished: {bool(summary.get('already_finished'))}", flush=True)


if __name__ == "__main__":
    import addernet_tf  # noqa: F401  (registers the layers that student.keras holds)
    main()
