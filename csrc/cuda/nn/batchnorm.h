// GPU batch normalization (batchnorm.cu), the twin of cpu/nn/batchnorm.h: x is
// (M, C) channels-last and contiguous, statistics per channel over the rows,
// biased variance. Argument order: outputs, inputs, saved state, scratch, sizes,
// parameters, stream. Sums are taken in double, per block of rows into
// `partial`, then added in a fixed order: deterministic. Each returns the
// launch error, if any.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace fastdl::cuda {

// Row blocks the partial sums are taken over (partial is (P, 2, C) doubles).
int64_t batchnorm_partials(int64_t M);

// Training form: mean, var = x's statistics; y = (x - mean) * gamma / sqrt(var + eps) + beta.
// gamma/beta may be null (1 and 0); coef is (2, C) scratch. M == 0: NaN statistics.
template <typename T>
cudaError_t batchnorm_forward(T* y /* (M,C) */, T* mean /* (C,) */, T* var /* (C,) */,
                              const T* x /* (M,C) */, const T* gamma /* (C,) or null */,
                              const T* beta /* (C,) or null */, double* partial /* (P,2,C) */,
                              T* coef /* (2,C) */, int64_t M, int64_t C, double eps,
                              cudaStream_t stream);

// Inference form with given statistics; coef is (2, C) scratch.
template <typename T>
cudaError_t batchnorm_inference(T* y /* (M,C) */, const T* x /* (M,C) */,
                                const T* mean /* (C,) */, const T* var /* (C,) */,
                                const T* gamma /* (C,) or null */,
                                const T* beta /* (C,) or null */, T* coef /* (2,C) */,
                                int64_t M, int64_t C, double eps, cudaStream_t stream);

// Backward of either form (batch_stats: the training form), as the CPU's:
// dbeta = sum dy, dgamma = sum dy * xhat, dx (may be null) from them. coef is
// (3, C) scratch.
template <typename T>
cudaError_t batchnorm_backward(T* dx /* (M,C) or null */, T* dgamma /* (C,) */,
                               T* dbeta /* (C,) */, const T* dy /* (M,C) */,
                               const T* x /* (M,C) */, const T* mean /* (C,) */,
                               const T* var /* (C,) */, const T* gamma /* (C,) or null */,
                               double* partial /* (P,2,C) */, T* coef /* (3,C) */, int64_t M,
                               int64_t C, double eps, bool batch_stats, cudaStream_t stream);

}  // namespace fastdl::cuda
