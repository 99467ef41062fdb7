"""The op library registers GPU kernels exactly when it was built with CUDA.

Whether it should have been is custom_ops/cuda_config.py's decision, the one
setup.py and Bazel both follow (nvcc and the static CUDA runtime found, or
ADDERNET_TF_CUDA=1; never with ADDERNET_TF_CUDA=0). A CUDA build must still
load here, on a machine without a GPU: all the ops tests run against it.
"""

import importlib.util
import pathlib

import pytest
from tensorflow.python.framework import kernels

import adder_conv_backends

OPS = ["Addernet>AdderConv2D", "Addernet>AdderConv2DBackpropInput",
       "Addernet>AdderConv2DBackpropFilter"]


def _cuda_config():
    path = pathlib.Path(__file__).resolve().parents[2] / "custom_ops" / "cuda_config.py"
    spec = importlib.util.spec_from_file_location("cuda_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op", OPS)
def test_gpu_kernels_registered_iff_cuda_build(op):
    adder_conv_backends.custom_op()  # loads the library, or fails/skips as the other op tests do
    registered = {(k.device_type, k.constraint[0].allowed_values.list.type[0])
                  for k in kernels.get_registered_kernels_for_op(op).kernel}
    cpu = {("CPU", 1), ("CPU", 2)}  # float, double
    gpu = {("GPU", 1), ("GPU", 2)}
    assert cpu <= registered
    if _cuda_config().enabled():
        assert gpu <= registered, f"CUDA is configured here but {op} has no GPU kernels: {registered}"
    else:
        assert not registered & gpu, f"CPU-only build registered GPU kernels for {op}: {registered}"
