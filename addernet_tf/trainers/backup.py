# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Training state saved every epoch, whole or not at all, and resumed from.

A `Backup` keeps its folder as

    backup/epoch-000003/state.weights.h5   every variable of the model passed
                        state.json         (weights, optimizers' slots and
    backup/epoch-000004/...                iterations, heads): {"epoch", "sha256"}

Each epoch's folder is built under a temporary name and renamed into place
(`addernet_tf._atomic.atomic_dir`), so it exists whole or not at all; the
older ones are deleted only after it does, and the last `keep` stay. On
resume, `restore()` takes the newest folder whose weights match their
checksum and load; one that does not is reported in one line and the one
before it is used (or none: training starts over).

`keras.callbacks.BackupAndRestore` writes one weights file in place, so a
kill inside the write leaves a torn file that stops every rerun.
"""

import hashlib
import os
import re
import shutil
import sys

import keras

from addernet_tf import _atomic

__all__ = ["Backup", "SaveBackup"]

_PATTERN = re.compile(r"^epoch-(\d{6})$")
_WEIGHTS = "state.weights.h5"
_STATE = "state.json"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _warn(message):
    print(message, file=sys.stderr, flush=True)


class Backup:
    """The per-epoch states in `folder` (see the module docstring).

    Args:
      folder: the backup folder (created on the first save).
      keep: whole states kept (>= 1); the newest ones.
    """

    def __init__(self, folder, keep=2):
        if keep < 1:
            raise ValueError(f"`keep` must be >= 1, got {keep!r}")
        self.folder = folder
        self.keep = keep

    def _epochs(self):
        """Epoch numbers of the state folders present, newest first."""
        if not os.path.isdir(self.folder):
            return []
        found = (_PATTERN.match(name) for name in os.listdir(self.folder))
        return sorted((int(m.group(1)) for m in found if m), reverse=True)

    def _path(self, epoch):
        return os.path.join(self.folder, f"epoch-{epoch:06d}")

    def _whole(self, epoch):
        """None if the state of `epoch` is whole, else why not."""
        path = self._path(epoch)
        try:
            state = _atomic.read_json(os.path.join(path, _STATE), "its state file")
            weights = os.path.join(path, _WEIGHTS)
            if state.get("epoch") != epoch:
                return f"its state file says epoch {state.get('epoch')!r}"
            if not os.path.isfile(weights):
                return f"{weights} is missing"
            if _sha256(weights) != state.get("sha256"):
                return f"{weights} does not match its checksum (torn or changed)"
        except (ValueError, OSError) as e:
            return str(e)
        return None

    def restore(self, model):
        """Loads the newest whole state into `model`; returns its epoch (0: none).

        `model` must be built and compiled (its optimizers built), as when it
        was saved. States that are not whole, or do not load, are reported on
        stderr in one line each and skipped.
        """
        _atomic.clean_stale(self.folder)
        for epoch in self._epochs():
            problem = self._whole(epoch)
            if problem is None:
                try:
                    model.load_weights(os.path.join(self._path(epoch), _WEIGHTS))
                    return epoch
                except (ValueError, OSError, KeyError) as e:
                    problem = f"it does not load into this model: {str(e).splitlines()[0]}"
            _warn(f"backup {self._path(epoch)} is not whole ({problem}); "
                  "falling back to the state before it")
        if os.path.isdir(self.folder) and os.listdir(self.folder):
            _warn(f"backup {self.folder}: no whole state; training starts from epoch 0")
        return 0

    def save(self, model, epoch):
        """Saves `model`'s state after `epoch` epochs; keeps the newest `keep`."""
        os.makedirs(self.folder, exist_ok=True)
        with _atomic.atomic_dir(self._path(epoch)) as tmp:
            os.makedirs(tmp)
            weights = os.path.join(tmp, _WEIGHTS)
            model.save_weights(weights)
            _atomic.write_json(os.path.join(tmp, _STATE),
                               {"epoch": epoch, "sha256": _sha256(weights)})
        for old in self._epochs()[self.keep:]:
            shutil.rmtree(self._path(old), ignore_errors=True)

    def delete(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class SaveBackup(keras.callbacks.Callback):
    """Saves the trained model's state to `backup` (a `Backup`) after every epoch.

    List it after the callbacks whose work the state should hold (BN
    recalibration, the weight files).
    """

    def __init__(self, backup):
        super().__init__()
        self.backup = backup

    def on_epoch_end(self, epoch, logs=None):
        self.backup.save(self.model, epoch + 1)
