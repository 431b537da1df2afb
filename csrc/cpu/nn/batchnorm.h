// Batch normalization over the rows of a channels-last array x viewed as
// (M, C): every axis but the last is a row axis, the channel axis is
// contiguous. Statistics are per channel; the variance is the biased one (the
// one the normalization uses, and the one Keras moves its moving variance by).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// Training form: mean, var = batch statistics of x; y = (x - mean) / sqrt(var + eps)
// * gamma + beta. gamma/beta may be null (1 and 0). One pass over x for the
// statistics (shifted sums, per-thread partials added in double), one to
// normalize. y may be x. M == 0 gives NaN statistics and an empty y.
template <typename T>
void batchnorm_forward(T* y /* (M,C) */, T* mean /* (C,) */, T* var /* (C,) */,
                       const T* x /* (M,C) */, const T* gamma /* (C,) or null */,
                       const T* beta /* (C,) or null */, int64_t M, int64_t C, double eps,
                       const Context& ctx);

// Inference form: y = (x - mean) / sqrt(var + eps) * gamma + beta with given
// (moving) statistics: one affine pass. y may be x.
template <typename T>
void batchnorm_inference(T* y /* (M,C) */, const T* x /* (M,C) */, const T* mean /* (C,) */,
                         const T* var /* (C,) */, const T* gamma /* (C,) or null */,
                         const T* beta /* (C,) or null */, int64_t M, int64_t C, double eps,
                         const Context& ctx);

// Backward of either form, from the statistics the forward used.
//   dbeta = sum_rows dy, dgamma = sum_rows dy * xhat, xhat = (x - mean) * invstd;
//   batch_stats (training form, mean and var are functions of x):
//     dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M)
//   else (inference form): dx = gamma * invstd * dy.
// One pass for the sums, one for dx (dx may be null: skipped; it may be dy).
template <typename T>
void batchnorm_backward(T* dx /* (M,C) or null */, T* dgamma /* (C,) */, T* dbeta /* (C,) */,
                        const T* dy /* (M,C) */, const T* x /* (M,C) */,
                        const T* mean /* (C,) */, const T* var /* (C,) */,
                        const T* gamma /* (C,) or null */, int64_t M, int64_t C, double eps,
                        bool batch_stats, const Context& ctx);

// The row loops (batchnorm_kernels.cpp, one build per capability level), each
// over rows [0, rows) of C channels, vectorised along the channels:
//   stats:  s1[c] += x - k[c], s2[c] += (x - k[c])^2          (k: a shift per channel)
//   dstats: s1[c] += dy,       s2[c] += dy * (x - k[c])
//   affine: y = x * a[c] + b[c]
//   affine2: y = u * a[c] + (v - k[c]) * b[c] + d[c]          (dx from dy and x)
struct BatchnormKernels {
  template <typename T>
  struct Set {
    void (*stats)(T* s1, T* s2, const T* x, const T* k, int64_t rows, int64_t C);
    void (*dstats)(T* s1, T* s2, const T* dy, const T* x, const T* k, int64_t rows, int64_t C);
    void (*affine)(T* y, const T* x, const T* a, const T* b, int64_t rows, int64_t C);
    void (*affine2)(T* y, const T* u, const T* v, const T* k, const T* a, const T* b,
                    const T* d, int64_t rows, int64_t C);
  };
  Set<float> f32;
  Set<double> f64;
  template <typename T>
  const Set<T>& get() const {
    if constexpr (sizeof(T) == sizeof(float)) return f32; else return f64;
  }
};
inline DispatchTable<BatchnormKernels> batchnorm_kernels;

}  // namespace fastdl::cpu
