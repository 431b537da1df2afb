// Portable micro-kernels (plain C++, any CPU; the compiler vectorises the j
// loops with the baseline SIMD of the target). Compiled at the generic level.
#include "cpu/gemm/kernels/ukernel.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// FULL: exactly NR columns (constant trip counts the compiler vectorises);
// otherwise e.n < NR columns, and only those are read from B and C.
template <typename T, int MR, int NR, int M, bool PACKED, bool FULL>
void ukernel_generic(int64_t k, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                     int64_t rs_b, T* c, int64_t rs_c, const UkernelArgs<T>& e) {
  if constexpr (PACKED) { rs_a = 1; cs_a = MR; }
  const int n = FULL ? NR : e.n;
  T acc[M][NR] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int i = 0; i < M; ++i) {
      const T ai = a[i * rs_a];
      for (int j = 0; j < n; ++j) acc[i][j] += ai * b[j];
    }
    a += cs_a;
    b += rs_b;
  }
  for (int i = 0; i < M; ++i) {
    T* ci = c + i * rs_c;
    for (int j = 0; j < n; ++j) {
      T v = e.alpha * acc[i][j];
      if (e.beta != T(0)) v += e.beta * ci[j];
      if (e.bias) v += e.bias[j];
      if (e.relu) v = v > T(0) ? v : T(0);
      ci[j] = v;
    }
  }
}

template <typename T, int MR, int NR, int M = 1>
constexpr void fill(UkernelSet<T>& s) {
  s.kernel[0][0][M - 1] = &ukernel_generic<T, MR, NR, M, true, true>;
  s.kernel[1][0][M - 1] = &ukernel_generic<T, MR, NR, M, false, true>;
  s.kernel[0][1][M - 1] = &ukernel_generic<T, MR, NR, M, true, false>;
  s.kernel[1][1][M - 1] = &ukernel_generic<T, MR, NR, M, false, false>;
  if constexpr (M < MR) fill<T, MR, NR, M + 1>(s);
}

template <typename T, int MR, int NR>
constexpr UkernelSet<T> make_set(const char* name, int mc, int kc, int nc) {
  UkernelSet<T> s{};
  s.name = name;
  s.mr = MR;
  s.nr = NR;
  s.nv = 1;
  s.mc = mc;
  s.kc = kc;
  s.nc = nc;
  fill<T, MR, NR>(s);
  return s;
}

constexpr GemmUkernels kKernels{make_set<float, 4, 8>("generic 4x8", 256, 384, 4096),
                                make_set<double, 4, 4>("generic 4x4", 128, 384, 2048)};
FASTDL_REGISTER_KERNELS(gemm_ukernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
