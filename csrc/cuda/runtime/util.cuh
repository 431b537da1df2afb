// Small device helpers shared by the kernels: launch shapes, grid-stride loops
// and warp reductions. Only included from .cu files.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

// A device-side invariant (alignment of a vector load, say). Compiled out on the
// GPU, where breaking it faults anyway; the CPU emulation used by the tests
// (tests/cuda_emu) defines it to abort with a message.
#ifndef FASTDL_DEVICE_ASSERT
#define FASTDL_DEVICE_ASSERT(cond) ((void)0)
#endif

namespace fastdl::cuda {

constexpr int kThreads = 256;  // threads per block of the element-wise kernels

// Blocks for n work items at kThreads each, capped; kernels loop grid-stride.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (int64_t(1) << 20)) b = int64_t(1) << 20;
  return unsigned(b);
}

__device__ __forceinline__ int64_t global_thread() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

// for (i = this thread; i < n; i += all threads)
#define FASTDL_GRID_LOOP(i, n) \
  for (int64_t i = global_thread(); i < (n); i += grid_threads())

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// The error of the launches just made (or a sticky earlier one).
inline cudaError_t launch_status() { return cudaGetLastError(); }

}  // namespace fastdl::cuda
