// AVX-512F micro-kernels: 8x32 float, 8x16 double (16 zmm accumulators). On
// Zen 4 a zmm FMA is split over the two 256-bit pipes, so the peak equals
// AVX2's; the wider tile halves the instruction count per flop.
// Built with -mavx512f -mavx2 -mfma.
#include <immintrin.h>

// GCC 12 warns about the undefined pass-through operand inside _mm512_max_ps.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "cpu/gemm/kernels/ukernel_simd.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

struct VecF {
  using T = float;
  using reg = __m512;
  static constexpr int W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, reg r) { _mm512_storeu_ps(p, r); }
  static reg set1(T x) { return _mm512_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  using mask = __mmask16;
  static mask first_lanes(int n) { return mask((1u << n) - 1); }
  static reg load(const T* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, reg r, mask m) { _mm512_mask_storeu_ps(p, m, r); }
};

struct VecD {
  using T = double;
  using reg = __m512d;
  static constexpr int W = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, reg r) { _mm512_storeu_pd(p, r); }
  static reg set1(T x) { return _mm512_set1_pd(x); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
  using mask = __mmask8;
  static mask first_lanes(int n) { return mask((1u << n) - 1); }
  static reg load(const T* p, mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, reg r, mask m) { _mm512_mask_storeu_pd(p, m, r); }
};


// Blocking for Zen 4 (measured): the MC x KC A block (480 KiB) stays in L2; the
// KC x NR B micro-panel (48 KiB) streams from L2 at a fraction of its bandwidth,
// and KC = 384 covers the deep-learning depths (288, 784/2) in one or two passes.
constexpr GemmUkernels kKernels{
    make_set<VecF, 8, 2>("avx512 8x32", 320, 384, 4064),
    make_set<VecD, 8, 2>("avx512 8x16", 160, 384, 2032)};
FASTDL_REGISTER_KERNELS(gemm_ukernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
