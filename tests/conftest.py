# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Session-wide test plumbing: long child processes started ahead, one shared trained run.

Most of this suite's time goes to child processes (trainings, exports, the QAT
pipeline) that use about one of the machine's cores: importing TensorFlow,
tracing and the TFLite converter are single-threaded, and the in-process
tests mostly are too. So the longest, self-contained child-process work is
started ahead, in one background thread, while the tests before it run:

* a test module lists such work in `BACKGROUND_JOBS = {name: job}`, where
  `job(background, workdir)` runs its child processes with `background.run`
  (a `subprocess.run` that `background` can stop) and returns what its test
  needs; it never imports or runs TensorFlow in this process, and builds child
  environments from `background.environ` (this process's environment at the
  start, so a test's `monkeypatch.setenv` never leaks into a job);
* the module's fixture gets the result with `background.result(name)`, which
  waits for the job, or runs it right there when it has not started (a job's
  exception, failed assertions included, is raised there);
* at the start of the session the jobs of the selected tests (those whose
  fixtures, direct or not, are named like a job) are queued in the order their
  tests run, and one thread runs them one after another.

What each test checks is unchanged; only when its child processes run is.
A job's timeout is a hang guard, sized for a job that shares the two cores
with the foreground tests all along (the QAT pipeline: ~3 min alone, over
400 s shared in one CI run).
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `tests.tiny_model:cnn`, the small network of the trainer tests, is imported by
# name (as `--model=` specs are), however pytest was started.
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# No test downloads anything, even on a machine with a network: every download
# probe of addernet_tf.data (child processes inherit the variable) goes to a
# local port that is bound for the whole session but never listens.
_NO_NETWORK = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_NO_NETWORK.bind(("127.0.0.1", 0))
os.environ["ADDERNET_TF_DOWNLOAD_PROBE"] = f"127.0.0.1:{_NO_NETWORK.getsockname()[1]}"


class _Job:
    def __init__(self, name, function):
        self.name, self.function = name, function
        self._lock, self._done = threading.Lock(), threading.Event()
        self._claimed, self._value, self._error = False, None, None

    def run(self, background, wait=True):
        """Runs the job unless another thread has; then (`wait`) waits for it and
        returns its value or raises its exception."""
        with self._lock:
            claimed, self._claimed = not self._claimed, True
        if claimed:
            try:
                self._value = self.function(background, background.workdir(self.name))
            except BaseException as error:  # noqa: BLE001 (handed to whoever waits)
                self._error = error
            finally:
                self._done.set()
        if not wait:
            return None
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Background:
    """Jobs (see the module doc), run in one thread in the order queued."""

    def __init__(self, tmp_path_factory):
        self.environ = dict(os.environ)
        self._tmp_path_factory = tmp_path_factory
        self._jobs = {}
        self._queue = queue.Queue()
        self._processes = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="background-jobs", daemon=True)
        self._thread.start()

    def register(self, name, function):
        if name in self._jobs and self._jobs[name].function is not function:
            raise ValueError(f"two background jobs are named {name!r}")
        self._jobs.setdefault(name, _Job(name, function))

    def submit(self, name):
        self._queue.put(self._jobs[name])

    def result(self, name):
        """The job's return value: waits for it, or runs it now if it has not started."""
        return self._jobs[name].run(self)

    def workdir(self, name):
        with self._lock:  # tmp_path_factory numbers its folders without a lock
            return self._tmp_path_factory.mktemp(name)

    def run(self, args, timeout, **kwargs):
        """`subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)`."""
        # In a session of its own: `close` and a timeout stop its children too.
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, **kwargs) as process:
            with self._lock:
                self._processes.add(process)
                if self._closed:
                    _kill_group(process)
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.communicate()
                raise
            finally:
                with self._lock:
                    self._processes.discard(process)
        return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)

    def _work(self):
        while True:
            job = self._queue.get()
            if job is None or self._closed:
                return
            job.run(self, wait=False)  # its exception is raised by `result`

    def close(self):
        """Drops the jobs not started and kills the child processes still running."""
        with self._lock:
            self._closed = True
            for process in self._processes:
                _kill_group(process)
        self._queue.put(None)
        self._thread.join(timeout=60)


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session", autouse=True)
def background(tmp_path_factory, request):
    """The session's `Background`, with the selected tests' jobs queued in the
    order the tests run, before the first of them starts."""
    jobs = Background(tmp_path_factory)
    wanted = {}
    for item in request.session.items:
        listed = {**_SHARED_JOBS,
                  **getattr(getattr(item, "module", None), "BACKGROUND_JOBS", {})}
        for name, function in listed.items():
            jobs.register(name, function)
        wanted.update((name, None) for name in getattr(item, "fixturenames", ())
                      if name in listed and name not in wanted)
    for name in wanted:  # dicts keep insertion order
        jobs.submit(name)
    yield jobs
    jobs.close()


# ----------------------------------------------------------------------------
# One adder student trained on digits, shared by tests/export and tests/export_qat

# An adder student without a teacher trains ~3x faster than PKKD here, and 600
# steps give ~90% test accuracy: enough margin between classes for the int8
# agreement of tests/export to mean something (a chance-level student's ReLUs
# can be dead on every calibration image), and for the QAT model's accuracy.
DIGITS_ANN_RUN = dict(dataset="digits", image_size=8, model="resnet20", batch_size=16,
                      verbose=0, method="ann", epochs=10, steps_per_epoch=60)

_TRAIN = r"""
import json, sys, types
from absl import flags
from addernet_tf.trainers import flags as trainer_flags
from addernet_tf.trainers import pkkd

values = flags.FlagValues()
trainer_flags.define_flags(values)
values(["pkkd"])
config = types.SimpleNamespace(**{name: values[name].value for name in values})
for name, value in dict(json.loads(sys.argv[2]), model_dir=sys.argv[1]).items():
    setattr(config, name, value)
pkkd.train(config)
"""


def _train_digits_ann_run(background, workdir):
    run = workdir / "run"
    env = dict(background.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.pop("TF_CONFIG", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = background.run([sys.executable, "-c", _TRAIN, str(run), json.dumps(DIGITS_ANN_RUN)],
                          cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(run)


@pytest.fixture(scope="session")
def digits_ann_run(background):
    """A finished `trainers.pkkd` run (`DIGITS_ANN_RUN`) of an adder ResNet-20 on
    8×8 digits; read-only: copy it before changing anything in it."""
    return background.result("digits_ann_run")


_SHARED_JOBS = {"digits_ann_run": _train_digits_ann_run}
