// The batch-normalization row loops, compiled once per capability level and
// registered in batchnorm_kernels. Each walks rows of C contiguous channels;
// the channel loop is the vector loop (omp simd), so the same source gives
// SSE, AVX2 or AVX-512 code by the level's flags.
#include <cstdint>

#include "cpu/nn/batchnorm.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// s1[c] += x - k[c]; s2[c] += (x - k[c])^2 over the rows.
template <typename T>
void stats_rows(T* s1 /* (C,) */, T* s2 /* (C,) */, const T* x /* (rows,C) */,
                const T* k /* (C,) */, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const T d = xr[c] - k[c];
      s1[c] += d;
      s2[c] += d * d;
    }
  }
}

// s1[c] += dy; s2[c] += dy * (x - k[c]) over the rows.
template <typename T>
void dstats_rows(T* s1 /* (C,) */, T* s2 /* (C,) */, const T* dy /* (rows,C) */,
                 const T* x /* (rows,C) */, const T* k /* (C,) */, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dr = dy + r * C;
    const T* xr = x + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += dr[c];
      s2[c] += dr[c] * (xr[c] - k[c]);
    }
  }
}

// y = x * a[c] + b[c]. In place (y == x) is fine: each element is read first.
template <typename T>
void affine_rows(T* y /* (rows,C) */, const T* x /* (rows,C) */, const T* a /* (C,) */,
                 const T* b /* (C,) */, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * a[c] + b[c];
  }
}

// y = u * a[c] + (v - k[c]) * b[c] + d[c]. y may be u.
template <typename T>
void affine2_rows(T* y /* (rows,C) */, const T* u /* (rows,C) */, const T* v /* (rows,C) */,
                  const T* k /* (C,) */, const T* a /* (C,) */, const T* b /* (C,) */,
                  const T* d /* (C,) */, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* ur = u + r * C;
    const T* vr = v + r * C;
    T* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = ur[c] * a[c] + (vr[c] - k[c]) * b[c] + d[c];
  }
}

template <typename T>
constexpr BatchnormKernels::Set<T> set_of() {
  return {&stats_rows<T>, &dstats_rows<T>, &affine_rows<T>, &affine2_rows<T>};
}

constexpr BatchnormKernels kKernels{set_of<float>(), set_of<double>()};
FASTDL_REGISTER_KERNELS(batchnorm_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
