# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A run's folder, checked before any work: its manifest, and a finished run recognised.

`prepare(config)` runs first in `trainers.pkkd.train`:

- `--model_dir` must be a folder this process can write (or create): a
  regular file, or a folder it cannot write, stops in one line.
- `run.json`, the manifest, holds the settings that define the run
  (`trainers.flags.run_settings`: every flag but the operational ones, its
  defaults resolved). It is written once, when the run starts. A rerun with
  other values stops in one line naming each difference; `--overwrite`
  deletes the run's outputs and starts over.
- A folder with the outputs of a run but no manifest (deleted, or a run of an
  older version) stops the same way: what it holds cannot be checked.
- A run whose summary.json is whole is finished: `prepare` returns that
  summary, and the trainer reports it instead of training again.
"""

import os
import shutil

from addernet_tf import _atomic
from addernet_tf.export.run import STUDENT, SUMMARY, TEACHER, read_summary
from addernet_tf.trainers import flags as trainer_flags

__all__ = ["MANIFEST", "SUMMARY", "OUTPUTS", "check_writable_dir", "prepare", "remove_outputs"]

MANIFEST = "run.json"
# Everything a run writes into its folder (workertemp_<id> folders too).
OUTPUTS = (MANIFEST, SUMMARY, "backup", "teacher_pretraining", "logs", "history.csv",
           STUDENT, TEACHER, "student.weights.h5", "teacher.weights.h5",
           "report")


def check_writable_dir(path, flag):
    """Creates `path` if needed; ValueError (one line naming `--flag`) unless it
    is a folder this process can write."""
    label = f"--{flag}={path}"
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{label}: is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{label}: cannot be created ({e.strerror or e})") from None
    _atomic.check_writable(path, f"--{flag}")


def _present_outputs(model_dir):
    # Not the workertemp_<id> folders: those of a multi-worker run's other
    # workers appear while it starts, and each worker clears its own.
    return [name for name in OUTPUTS if os.path.lexists(os.path.join(model_dir, name))]


def remove_outputs(model_dir):
    """Deletes the run's outputs in `model_dir` (nothing else there)."""
    if not os.path.isdir(model_dir):
        return
    _atomic.clean_stale(model_dir)
    for name in _present_outputs(model_dir):
        path = os.path.join(model_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _show(value):
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _differences(before, now):
    names = sorted(set(before) | set(now))
    return [f"--{name}={_show(now.get(name))} (the run's: {_show(before.get(name))})"
            for name in names if before.get(name) != now.get(name)]


def prepare(config, chief=True):
    """Checks `config.model_dir` against `config`; returns a finished run's summary or None.

    Args:
      config: the trainer's settings (`trainers.flags`).
      chief: this process writes the run's files (the other workers of a
        multi-worker run only check them, and --overwrite only clears their
        own folders).

    Raises:
      ValueError: one line: the folder cannot be used, holds a run with other
        settings, or holds run outputs without a manifest.
    """
    model_dir = config.model_dir
    check_writable_dir(model_dir, "model_dir")
    if chief:
        _atomic.clean_stale(model_dir)  # what writers killed before left
    if getattr(config, "overwrite", False) and chief:
        remove_outputs(model_dir)
    settings = trainer_flags.run_settings(config)
    manifest = os.path.join(model_dir, MANIFEST)
    if os.path.exists(manifest):
        before = _atomic.read_json(manifest, "the run's manifest")
        changed = _differences(before, settings)
        if changed:
            raise ValueError(
                f"--model_dir={model_dir} holds a run with other settings: "
                f"{', '.join(changed)}; rerun with the run's values, use another "
                "--model_dir, or add --overwrite to start over")
    else:
        present = _present_outputs(model_dir)
        if present:
            raise ValueError(
                f"--model_dir={model_dir} holds run outputs ({', '.join(sorted(present))}) "
                f"but no {MANIFEST} to check them against; use another --model_dir, or add "
                "--overwrite to start over")
        if chief:
            _atomic.write_json(manifest, settings)
    return read_summary(model_dir)
