// Dropout with a counter-based mask (common/cuda_random.h): nothing is stored,
// the backward pass recomputes the mask from (seed, index). See nn.h.
#include "common/cuda_random.h"
#include "cuda/nn.h"
#include "cuda/util.cuh"

namespace fastdl::cuda {
namespace {

template <typename T>
__global__ void dropout_kernel(T* y, const T* x, int64_t n, double rate, T scale, uint64_t seed) {
  FASTDL_GRID_LOOP(i, n) y[i] = hd::dropout_keep(seed, uint64_t(i), rate) ? x[i] * scale : T(0);
}

}  // namespace

template <typename T>
cudaError_t dropout(T* y, const T* x, int64_t n, double rate, uint64_t seed, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const T scale = rate < 1.0 ? T(1.0 / (1.0 - rate)) : T(0);
  dropout_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(y, x, n, rate, scale, seed);
  return launch_status();
}

template cudaError_t dropout<float>(float*, const float*, int64_t, double, uint64_t, cudaStream_t);
template cudaError_t dropout<double>(double*, const double*, int64_t, double, uint64_t,
                                     cudaStream_t);

}  // namespace fastdl::cuda
