// Layer normalization over the last D elements of each of N rows (x viewed as
// (N, D), contiguous): each row is normalized by its own mean and (biased)
// variance. With rms (Keras 3's rms_scaling), the row is scaled by the same
// inverse standard deviation without subtracting its mean.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// y = (x - k) * inv * gamma + beta, inv = 1 / sqrt(var + eps) per row, k = mean
// (0 with rms); mean and inv are saved for the backward pass. gamma/beta may be
// null (1 and 0). y may be x.
template <typename T>
void layernorm_forward(T* y /* (N,D) */, T* mean /* (N,) */, T* inv /* (N,) */,
                       const T* x /* (N,D) */, const T* gamma /* (D,) or null */,
                       const T* beta /* (D,) or null */, int64_t N, int64_t D, double eps,
                       bool rms, const Context& ctx);

// With xhat = (x - k) * inv (k as above) and g = dy * gamma:
//   dx = inv * (g - sum(g) / D - (x - mean) * inv * sum(g * xhat) / D)
//   (rms: without sum(g) / D)
//   dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy
// dx may be null (skipped) or dy; dgamma/dbeta may be null. The column sums are
// taken per thread in blocks of rows and added in double in thread order.
template <typename T>
void layernorm_backward(T* dx /* (N,D) or null */, T* dgamma /* (D,) or null */,
                        T* dbeta /* (D,) or null */, const T* dy /* (N,D) */,
                        const T* x /* (N,D) */, const T* mean /* (N,) */, const T* inv /* (N,) */,
                        const T* gamma /* (D,) or null */, int64_t N, int64_t D, bool rms,
                        const Context& ctx);

// The row loops (layernorm_kernels.cpp, one build per capability level), over
// rows [0, rows) of D elements:
//   stats:     mean[r], inv[r] of row r (sums in double)
//   normalize: y = (x - k[r]) * inv[r] * gamma + beta, k = mean (0 with rms)
//   backward:  dx as above (dx may be null); sg += dy * xhat, sb += dy
struct LayernormKernels {
  template <typename T>
  struct Set {
    void (*stats)(T* mean, T* inv, const T* x, int64_t rows, int64_t D, double eps, bool rms);
    void (*normalize)(T* y, const T* x, const T* mean, const T* inv, const T* gamma,
                      const T* beta, int64_t rows, int64_t D, bool rms);
    void (*backward)(T* dx, T* sg, T* sb, const T* dy, const T* x, const T* mean,
                     const T* inv, const T* gamma, int64_t rows, int64_t D, bool rms);
  };
  Set<float> f32;
  Set<double> f64;
  template <typename T>
  const Set<T>& get() const {
    if constexpr (sizeof(T) == sizeof(float)) return f32; else return f64;
  }
};
inline DispatchTable<LayernormKernels> layernorm_kernels;

}  // namespace fastdl::cpu
