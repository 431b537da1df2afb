// FMA-throughput loop with 256-bit AVX2 FMAs. Built with -mavx2 -mfma.
#include <immintrin.h>

#include "cpu/peak.h"
#include "cpu/peak_simd.h"

namespace fastdl::cpu {
namespace {
struct VecF {
  using T = float;
  using reg = __m256;
  static constexpr int W = 8;
  static reg set1(T x) { return _mm256_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static T first(reg a) { return _mm256_cvtss_f32(a); }
};
struct VecD {
  using T = double;
  using reg = __m256d;
  static constexpr int W = 4;
  static reg set1(T x) { return _mm256_set1_pd(x); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static T first(reg a) { return _mm256_cvtsd_f64(a); }
};
}  // namespace

double fma_loop_avx2(int64_t iters, bool dbl) {
  return dbl ? peak::fma_loop<VecD>(iters) : peak::fma_loop<VecF>(iters);
}

}  // namespace fastdl::cpu
