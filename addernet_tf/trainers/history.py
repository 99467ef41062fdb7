# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""history.csv: one row per finished epoch, rewritten whole after each.

`keras.callbacks.CSVLogger(append=True)` appends to the file in place: a kill
inside the write tears the last row, and a resumed run appends the epochs it
repeats a second time, under the header of whichever run wrote first.
`HistoryTable` keeps one table: on `on_train_begin` it drops the rows of the
epochs about to run again (from `fit`'s `initial_epoch`), and after every
epoch it writes the whole table to a temporary file renamed into place.
"""

import csv
import io
import os
import sys

import keras

from addernet_tf import _atomic

__all__ = ["HistoryTable", "read_history"]


def read_history(path):
    """The rows of `path` as dicts (column → str), or [] where there is no table.

    A table that does not parse (an older, appended file with rows of another
    width) is reported on stderr in one line and read as empty.
    """
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        print(f"{path}: not a readable table ({e}); starting a new one", file=sys.stderr)
        return []
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if "epoch" not in header or any(len(row) != len(header) for row in body):
        print(f"{path}: rows of another width than its header; starting a new one",
              file=sys.stderr)
        return []
    return [dict(zip(header, row)) for row in body]


def _cell(value):
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


class HistoryTable(keras.callbacks.Callback):
    """Writes `path` (CSV, one row per epoch, column `epoch` counted from 0).

    Args:
      path: the table's file.
      initial_epoch: the epoch this `fit` starts at; rows from it on are
        dropped (they are run again).
    """

    def __init__(self, path, initial_epoch=0):
        super().__init__()
        self.path = path
        self.initial_epoch = initial_epoch
        self.rows = []

    def on_train_begin(self, logs=None):
        found = read_history(self.path)
        self.rows = [row for row in found if int(float(row["epoch"])) < self.initial_epoch]
        if len(self.rows) < len(found) or (not found and os.path.exists(self.path)):
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch)}
        row.update({key: _cell(value) for key, value in sorted((logs or {}).items())})
        self.rows.append(row)
        self._write()

    def _write(self):
        columns = ["epoch"]
        for row in self.rows:
            columns += [key for key in row if key not in columns]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        _atomic.write_text(self.path, text.getvalue())
