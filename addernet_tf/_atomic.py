# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Files and folders that appear whole or not at all (Keras- and TF-free).

Every file that a later step reads is written under a temporary name in its
own folder and renamed into place (`os.replace`, atomic on POSIX), so a kill
at any moment leaves either the previous version or the new one, never a
torn file. A folder (a SavedModel) is built beside its final name and swapped
in with two renames; the leftovers of an interrupted swap are cleaned by the
next one.

    with atomic_path("run/student.keras") as tmp:
        model.save(tmp)
    write_json("run/summary.json", summary)
    data = read_json("run/summary.json")   # ValueError naming the file if torn

Temporary names start with `.` and contain `.tmp-`; `clean_stale(folder)`
removes those an earlier killed process left behind.
"""

import contextlib
import json
import os
import re
import shutil
import uuid
import zipfile

__all__ = ["atomic_path", "atomic_dir", "write_json", "write_text", "write_bytes", "read_json",
           "clean_stale", "check_writable", "zip_problem", "TMP_MARK"]

TMP_MARK = ".tmp-"
_OLD_MARK = ".old-"

# Called as hook(stage, tmp_path, final_path) with stage "written" just before a
# temporary file or folder is renamed into place. Tests set it (in a child
# process) to kill the process inside a save; it is None otherwise.
_hook = None


def _split_name(name):
    # Keep the extension last: Keras picks the format of a save by it.
    if name.endswith(".weights.h5"):
        return name[:-len(".weights.h5")], ".weights.h5"
    return os.path.splitext(name)


def _temporary_name(path):
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = _split_name(name)
    return os.path.join(folder, f".{stem}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")


def _leftover_pattern(name):
    """What `_temporary_name` and `atomic_dir` make for `name`, and nothing else:
    "student" must not match the temporary file of "student.tflite" beside it."""
    stem, ext = _split_name(name)
    return re.compile(rf"{re.escape(f'.{stem}{TMP_MARK}')}\d+-[0-9a-f]{{8}}{re.escape(ext)}"
                      rf"|{re.escape(f'.{name}{_OLD_MARK}')}[0-9a-f]{{8}}")


def _fsync_path(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path):
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_path(os.path.join(root, name))
            _fsync_path(root)
    else:
        _fsync_path(path)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


def _ready(tmp, path, folder):
    """Checks and syncs what was written at `tmp` for `path`, then runs the test hook."""
    if not (os.path.isdir(tmp) if folder else os.path.exists(tmp)):
        raise FileNotFoundError(f"nothing was written at {tmp} for {path}")
    (_fsync_tree if folder else _fsync_path)(tmp)
    if _hook is not None:
        _hook("written", tmp, path)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same extension); on a clean exit
    the file written there replaces `path` in one rename.

    On an exception the temporary file is removed and `path` is untouched.
    """
    tmp = _temporary_name(path)
    try:
        yield tmp
        _ready(tmp, path, folder=False)
        os.replace(tmp, path)
        _fsync_path(os.path.dirname(os.path.abspath(path)))
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


@contextlib.contextmanager
def atomic_dir(path):
    """Yields a temporary folder path beside `path`; on a clean exit the folder
    built there takes `path`'s place (an older `path` is removed after the swap).

    A kill between the two renames of the swap leaves `path` absent and the
    old copy under a hidden name; `clean_stale` (called here first) removes it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    clean_stale(folder, os.path.basename(path))
    tmp = _temporary_name(path)
    try:
        yield tmp
        _ready(tmp, path, folder=True)
        old = None
        if os.path.lexists(path):
            old = os.path.join(folder, f".{os.path.basename(path)}{_OLD_MARK}{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_path(folder)
        if old is not None:
            _remove(old)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def clean_stale(folder, name=None):
    """Removes the temporary files and folders that killed writers left in `folder`
    (only those for `name` when given). Returns the paths removed."""
    if not os.path.isdir(folder):
        return []
    pattern = None if name is None else _leftover_pattern(name)
    removed = []
    for entry in os.listdir(folder):
        if not entry.startswith(".") or (TMP_MARK not in entry and _OLD_MARK not in entry):
            continue
        if pattern is not None and not pattern.fullmatch(entry):
            continue
        path = os.path.join(folder, entry)
        _remove(path)
        removed.append(path)
    return removed


def write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text):
    """Writes `text` (str) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def check_writable(folder, what="folder"):
    """Raises ValueError naming `folder` (`what` it is) unless it is a folder in
    which a file can be created: creates and removes a probe file there.

    Checks what a permission bit cannot: root ignores those, a read-only mount
    does not.
    """
    if not os.path.isdir(folder):
        kind = "a file" if os.path.exists(folder) else "missing"
        raise ValueError(f"{what} {folder!r} is {kind}, not a folder")
    probe = _temporary_name(os.path.join(folder, "write-probe"))
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        raise ValueError(f"{what} {folder!r} is not writable: {e.strerror or e}") from None
    os.remove(probe)


def zip_problem(path):
    """None if `path` is a whole zip archive (a .keras file is one), else why not.

    A torn .keras file is no zip, and Keras then reports it as "File not found".
    """
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        return f"{type(e).__name__}: {e}"
    return None if damaged is None else f"{damaged} is damaged"


def write_json(path, obj):
    """Writes `obj` as indented, key-sorted JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path, what=None):
    """The JSON object in `path`.

    Raises:
      ValueError: the file is missing, unreadable or not whole JSON; the message
        names the file (and `what` it is, e.g. "the run's summary").
    """
    label = f"{what} {path}" if what else path
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ValueError(f"{label} does not exist") from None
    except OSError as e:
        raise ValueError(f"{label} cannot be read: {e}") from None
    try:
        return json.loads(raw)
    except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not text
        raise ValueError(f"{label} is not valid JSON (torn or edited by hand?): {e}") from None
