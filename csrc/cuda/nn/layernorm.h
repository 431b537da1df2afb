// GPU layer normalization over the last axis (layernorm.cu), the twin of
// cpu/nn/layernorm.h: x is (N, D) contiguous; one CUDA block per row for the
// row statistics (a deterministic tree sum in double); the column sums of the
// backward pass (dgamma, dbeta) in blocks of rows into `partial`, added in a
// fixed order. Argument order: outputs, inputs, saved state, scratch, sizes,
// parameters, stream. Each returns the launch error, if any.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace fastdl::cuda {

// Row blocks of the backward pass's column sums (partial is (P, 2, D) doubles).
int64_t layernorm_partials(int64_t N);

// y = (x - k) * inv * gamma + beta per row, k = mean (0 with rms: Keras' rms_scaling);
// mean and inv = 1 / sqrt(var + eps) saved. gamma/beta may be null.
template <typename T>
cudaError_t layernorm_forward(T* y /* (N,D) */, T* mean /* (N,) */, T* inv /* (N,) */,
                              const T* x /* (N,D) */, const T* gamma /* (D,) or null */,
                              const T* beta /* (D,) or null */, int64_t N, int64_t D,
                              double eps, bool rms, cudaStream_t stream);

// dx (may be null, or dy), dgamma, dbeta (may be null) as the CPU's.
template <typename T>
cudaError_t layernorm_backward(T* dx /* (N,D) or null */, T* dgamma /* (D,) or null */,
                               T* dbeta /* (D,) or null */, const T* dy /* (N,D) */,
                               const T* x /* (N,D) */, const T* mean /* (N,) */,
                               const T* inv /* (N,) */, const T* gamma /* (D,) or null */,
                               double* partial /* (P,2,D) */, int64_t N, int64_t D, bool rms,
                               cudaStream_t stream);

}  // namespace fastdl::cuda
