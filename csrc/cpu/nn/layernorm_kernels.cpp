// The layer-normalization row loops, compiled once per capability level and
// registered in layernorm_kernels. Every loop runs along a row (contiguous);
// the row sums are vector reductions in double.
#include <cstdint>

#include "cpu/nn/layernorm.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

template <typename T>
void stats_rows(T* mean /* (rows,) */, T* inv /* (rows,) */, const T* x /* (rows,D) */,
                int64_t rows, int64_t D, double eps, bool rms) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < D; ++d) s += double(xr[d]);
    const double m = s / double(D);
    double q = 0.0;
#pragma omp simd reduction(+ : q)
    for (int64_t d = 0; d < D; ++d) {
      const double c = double(xr[d]) - m;
      q += c * c;
    }
    mean[r] = T(m);
    inv[r] = T(1.0 / __builtin_sqrt(q / double(D) + eps));
  }
  (void)rms;  // the statistics are the same; rms only changes what is subtracted
}

template <typename T>
void normalize_rows(T* y /* (rows,D) */, const T* x /* (rows,D) */, const T* mean /* (rows,) */,
                    const T* inv /* (rows,) */, const T* gamma /* (D,) or null */,
                    const T* beta /* (D,) or null */, int64_t rows, int64_t D, bool rms) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    const T m = rms ? T(0) : mean[r], s = inv[r];
    if (gamma && beta) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - m) * s * gamma[d] + beta[d];
    } else if (gamma) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - m) * s * gamma[d];
    } else if (beta) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - m) * s + beta[d];
    } else {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - m) * s;
    }
  }
}

template <typename T>
void backward_rows(T* dx /* (rows,D) or null */, T* sg /* (D,) */, T* sb /* (D,) */,
                   const T* dy /* (rows,D) */, const T* x /* (rows,D) */,
                   const T* mean /* (rows,) */, const T* inv /* (rows,) */,
                   const T* gamma /* (D,) or null */, int64_t rows, int64_t D, bool rms) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dr = dy + r * D;
    const T* xr = x + r * D;
    // xhat = (x - k) * s, k the mean, or 0 with rms (Keras: x scaled by the centered
    // variance's inverse square root, not centered)
    const T m = mean[r], s = inv[r], k = rms ? T(0) : m;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) {
      sg[d] += dr[d] * (xr[d] - k) * s;
      sb[d] += dr[d];
    }
    if (!dx) continue;
    double a = 0.0, b = 0.0;  // sum g, sum g * xhat
#pragma omp simd reduction(+ : a, b)
    for (int64_t d = 0; d < D; ++d) {
      const T g = gamma ? dr[d] * gamma[d] : dr[d];
      a += double(g);
      b += double(g) * double((xr[d] - k) * s);
    }
    const T ka = rms ? T(0) : T(a / double(D)), kb = T(b / double(D));
    T* xo = dx + r * D;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) {
      const T g = gamma ? dr[d] * gamma[d] : dr[d];
      xo[d] = s * (g - ka - (xr[d] - m) * s * kb);
    }
  }
}

template <typename T>
constexpr LayernormKernels::Set<T> set_of() {
  return {&stats_rows<T>, &normalize_rows<T>, &backward_rows<T>};
}

constexpr LayernormKernels kKernels{set_of<float>(), set_of<double>()};
FASTDL_REGISTER_KERNELS(layernorm_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
