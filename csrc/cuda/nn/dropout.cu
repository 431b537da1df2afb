// Dropout with the CPU's counter-based mask (common/random_math.h): nothing is
// stored, the backward pass recomputes the mask from (seed, index). See nn.h.
#include "common/random_math.h"
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// The same arithmetic as cpu/nn/dropout_kernels.cpp: 24 random bits compared with an
// integer threshold, and x times scale-or-zero (so NaN inputs stay NaN).
template <typename T>
__global__ void dropout_kernel(T* y, const T* x, int64_t n, int32_t threshold, T scale,
                               uint64_t seed) {
  FASTDL_GRID_LOOP(i, n) {
    const uint64_t u = uint64_t(i);
    const int32_t bits = int32_t(random_bits24(chunk_key(seed, uint32_t(u >> 32)), uint32_t(u)));
    y[i] = x[i] * (bits >= threshold ? scale : T(0));
  }
}

}  // namespace

template <typename T>
cudaError_t dropout(T* y, const T* x, int64_t n, double rate, uint64_t seed, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const T scale = T(1.0 / (1.0 - rate));
  dropout_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(y, x, n, keep_threshold(rate), scale,
                                                            seed);
  return launch_status();
}

template cudaError_t dropout<float>(float*, const float*, int64_t, double, uint64_t, cudaStream_t);
template cudaError_t dropout<double>(double*, const double*, int64_t, double, uint64_t,
                                     cudaStream_t);

}  // namespace fastdl::cuda
