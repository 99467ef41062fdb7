# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The op library registers GPU kernels exactly when it was built with CUDA.

Whether it should have been is custom_ops/cuda_config.py's decision, the one
setup.py and Bazel both follow (nvcc and the static CUDA runtime found, or
ADDERNET_TF_CUDA=1; never with ADDERNET_TF_CUDA=0). A CUDA build must still
load here, on a machine without a GPU: all the ops tests run against it.
"""

import pathlib
import sys

import pytest
from tensorflow.python.framework import kernels

import adder_conv_backends

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from custom_ops import cuda_config  # noqa: E402  pylint: disable=wrong-import-position

OPS = ["Addernet>AdderConv2D", "Addernet>AdderConv2DBackpropInput",
       "Addernet>AdderConv2DBackpropFilter"]


@pytest.mark.parametrize("op", OPS)
def test_gpu_kernels_registered_iff_cuda_build(op):
    adder_conv_backends.compiled_op()  # loads the library, or fails/skips as the other op tests do
    # Unlabelled only: test_gpu_opkernel_emulated.py adds labelled CPU kernels.
    registered = {(k.device_type, k.constraint[0].allowed_values.list.type[0])
                  for k in kernels.get_registered_kernels_for_op(op).kernel if not k.label}
    cpu = {("CPU", 1), ("CPU", 2)}  # float, double
    gpu = {("GPU", 1), ("GPU", 2)}
    assert cpu <= registered
    if cuda_config.enabled():
        assert gpu <= registered, f"CUDA is configured here but {op} has no GPU kernels: {registered}"
    else:
        assert not registered & gpu, f"CPU-only build registered GPU kernels for {op}: {registered}"
