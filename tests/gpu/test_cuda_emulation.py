# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The CPU emulation that tests/gpu relies on: barriers and shared memory behave as on a GPU."""

import ctypes
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADER = ROOT / "custom_ops" / "emulation" / "cuda_emulation.h"

# A tree reduction in shared memory: correct only if every __syncthreads holds
# all 256 threads of the block; and a kernel where half the threads return
# before a barrier (undefined on a GPU), which the emulation must report, also
# used to test that launch shapes a GPU refuses are refused here.
SOURCE = r"""
#define LAUNCH(kernel, grid, block, ...) ::cuda_emulation::Launch(grid, block, [&] { kernel(__VA_ARGS__); })

__global__ void BlockSums(const float* x, float* sums) {
  __shared__ float buf[256];
  buf[threadIdx.x] = x[blockIdx.x * 256 + threadIdx.x];
  __syncthreads();
  for (int half = 128; half > 0; half /= 2) {
    float mine = threadIdx.x < half ? buf[threadIdx.x] + buf[threadIdx.x + half] : 0.0f;
    __syncthreads();
    if (threadIdx.x < half) buf[threadIdx.x] = mine;
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[blockIdx.x] = buf[0];
}

__global__ void HalfReturnEarly(float* out) {
  if (threadIdx.x % 2) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

extern "C" int block_sums(const float* x, float* sums, int blocks) {
  LAUNCH(BlockSums, dim3(blocks), dim3(256), x, sums);
  return cudaGetLastError();
}
extern "C" int launch_shape(unsigned gx, unsigned gy, unsigned gz, unsigned threads, float* out) {
  LAUNCH(HalfReturnEarly, dim3(gx, gy, gz), dim3(threads), out);
  return cudaGetLastError();
}
extern "C" int half_return_early(float* out) {
  LAUNCH(HalfReturnEarly, dim3(1), dim3(256), out);
  return cudaGetLastError();
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emulation")
    (folder / "k.cc").write_text(SOURCE)
    subprocess.run(["g++", "-std=c++20", "-O1", "-fPIC", "-shared", "-include", str(HEADER),
                    str(folder / "k.cc"), "-o", str(folder / "k.so")], check=True)
    return ctypes.CDLL(str(folder / "k.so"))


def test_barriers_and_shared_memory(lib):
    x = np.random.default_rng(0).normal(size=3 * 256).astype(np.float32)
    sums = np.zeros(3, np.float32)
    assert lib.block_sums(x.ctypes.data_as(ctypes.c_void_p), sums.ctypes.data_as(ctypes.c_void_p), 3) == 0
    np.testing.assert_allclose(sums, x.reshape(3, 256).sum(axis=1), rtol=1e-5)


def test_barrier_not_reached_by_all_threads_is_a_launch_failure(lib):
    out = np.zeros(256, np.float32)
    assert lib.half_return_early(out.ctypes.data_as(ctypes.c_void_p)) == 719  # cudaErrorLaunchFailure


@pytest.mark.parametrize("shape", [(1, 65536, 1, 256), (1, 1, 65536, 256), (0, 1, 1, 256),
                                   (1, 1, 1, 1025), (2**31, 1, 1, 256)],
                         ids=["grid_y", "grid_z", "empty_grid", "threads", "grid_x"])
def test_launch_shapes_a_gpu_refuses_are_refused(lib, shape):
    """cudaErrorInvalidConfiguration (9) before any block runs, as on a GPU."""
    out = np.zeros(256, np.float32)
    assert lib.launch_shape(*shape, out.ctypes.data_as(ctypes.c_void_p)) == 9
    assert not out.any()


def test_largest_launch_shape_limits_are_accepted(lib):
    """At 1024 threads the launch runs (the kernel's early return is what fails); 1 thread passes."""
    out = np.zeros(256, np.float32)
    assert lib.launch_shape(1, 1, 1, 1024, out.ctypes.data_as(ctypes.c_void_p)) == 719  # half return
    assert lib.launch_shape(1, 1, 1, 1, out.ctypes.data_as(ctypes.c_void_p)) == 0
