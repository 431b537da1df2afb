// AVX2 + FMA micro-kernels: 6x16 float, 6x8 double (12 ymm accumulators each,
// two FMA pipes kept busy with 4-cycle latency). Built with -mavx2 -mfma.
#include <immintrin.h>

#include "cpu/gemm/kernels/ukernel_simd.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

struct VecF {
  using T = float;
  using reg = __m256;
  static constexpr int W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, reg r) { _mm256_storeu_ps(p, r); }
  static reg set1(T x) { return _mm256_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  using mask = __m256i;
  static mask first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load(const T* p, mask m) { return _mm256_maskload_ps(p, m); }
  static void store(T* p, reg r, mask m) { _mm256_maskstore_ps(p, m, r); }
};

struct VecD {
  using T = double;
  using reg = __m256d;
  static constexpr int W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, reg r) { _mm256_storeu_pd(p, r); }
  static reg set1(T x) { return _mm256_set1_pd(x); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_pd(a, b); }
  using mask = __m256i;
  static mask first_lanes(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static reg load(const T* p, mask m) { return _mm256_maskload_pd(p, m); }
  static void store(T* p, reg r, mask m) { _mm256_maskstore_pd(p, m, r); }
};


// Blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core): the KC x NR B micro-panel
// (24 KiB) stays in L1, the MC x KC A block (~430 KiB) in L2, KC x NC B in L3.
// KC = 384 covers the deep-learning depths (288, 784 / 2) in one or two passes.
constexpr GemmUkernels kKernels{
    make_set<VecF, 6, 2, 8>("avx2 6x16", 288, 384, 4080),
    make_set<VecD, 6, 2>("avx2 6x8", 144, 384, 2040)};
FASTDL_REGISTER_KERNELS(gemm_ukernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
