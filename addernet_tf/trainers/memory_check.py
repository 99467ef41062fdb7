# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""A training step's memory, estimated before any data is read, and checked.

A batch or image size far too large for the machine used to end with the
kernel's out-of-memory killer and no message. `check(...)` refuses it first,
in one line with the estimate and the limit (`--force` skips the check).

The estimate, in bytes (float32 everywhere):

    networks = 2 · B · Σ_layers size(output)     over the student and the teacher:
                                                 every layer's output is kept for
                                                 the backward pass, and its
                                                 gradient is as large
    data     = cached images (digits: 3 copies of the resized set; CIFAR/MNIST
               and image folders: the uint8 cache and shuffle buffer) + 8
               batches in the pipelines

The limit is the memory this process may still take: the smaller of
/proc/meminfo's MemAvailable and the cgroup's memory.max less its usage, or
`ADDERNET_TF_MEMORY_LIMIT` (bytes) where set. With GPUs the networks' part
lives on them and is not checked here (TF reports an out-of-memory error
there itself); the data part is.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

__all__ = ["estimate_bytes", "limit_bytes", "check"]

_FLOAT = 4
_PIPELINE_BATCHES = 8


def _layer_outputs(model):
    """Σ over `model`'s layers (nested ones included) of one example's output size."""
    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
        # A nested model's layers are counted; the input is in the data's part.
        if hasattr(layer, "layers") or isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):
            continue
        for output in tf.nest.flatten(outputs):
            shape = getattr(output, "shape", None)
            if shape is not None and len(shape) > 1 and all(d is not None for d in shape[1:]):
                total += int(np.prod(shape[1:]))
    return total


def _data_bytes(dataset, info, batch_size):
    side = info.image_shape[0]
    batch = batch_size * side * side * 3 * _FLOAT
    examples = info.train_examples + info.validation_examples + info.test_examples
    if dataset == "digits":
        cached = 3 * examples * side * side * _FLOAT
    elif dataset in ("cifar10", "cifar100"):
        cached = 2 * examples * 32 * 32 * 3
    elif dataset == "mnist":
        cached = 2 * examples * 28 * 28
    elif dataset == "image_folder":  # decoded at the run's size, then one copy
        cached = 2 * examples * side * side * 3
    else:  # streamed from files
        cached = 0
    return cached + _PIPELINE_BATCHES * batch


def estimate_bytes(networks, dataset, info, batch_size, on_gpu=False):
    """(networks' part, data part) of one training step's memory, in bytes."""
    per_example = sum(_layer_outputs(net) for net in networks if net is not None)
    nets = 0 if on_gpu else 2 * batch_size * per_example * _FLOAT
    return nets, _data_bytes(dataset, info, batch_size)


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def limit_bytes():
    """The memory this process may still take, in bytes (see the module docstring)."""
    override = os.environ.get("ADDERNET_TF_MEMORY_LIMIT")
    if override:
        return int(float(override))
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    high = _read_int("/sys/fs/cgroup/memory.max")
    used = _read_int("/sys/fs/cgroup/memory.current")
    if high is not None and used is not None:
        limits.append(max(high - used, 0))
    return min(limits) if limits else math.inf


def _gib(value):
    return f"{value / 2**30:.1f} GiB"


def check(networks, dataset, info, batch_size, on_gpu=False):
    """ValueError (one line: the estimate and the limit) when a step cannot fit."""
    nets, data = estimate_bytes(networks, dataset, info, batch_size, on_gpu)
    limit = limit_bytes()
    if nets + data > limit:
        raise ValueError(
            f"--batch_size={batch_size} --image_size={info.image_shape[0]}: a training step "
            f"needs about {_gib(nets + data)} of memory ({_gib(nets)} for the networks' "
            f"activations and their gradients, {_gib(data)} for the data), more than the "
            f"{_gib(limit)} available; use a smaller batch or image, or --force to try anyway")
