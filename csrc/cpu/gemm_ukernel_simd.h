// The SIMD micro-kernel body, written once for every vector width.
//
// Included only by gemm_ukernel_avx2.cpp and gemm_ukernel_avx512.cpp, which
// are compiled with their ISA flags and define a vector-traits struct V:
//   V::T (float/double), V::reg (vector type), V::W (lanes),
//   zero(), load(p), store(p, r), set1(x), add(a, b), mul(a, b),
//   fma(a, b, c) = a * b + c, max(a, b).
// The tile is M x (NV * W): M rows of A broadcast against NV vectors of B.
// All loops have compile-time trip counts and are fully unrolled, so the
// accumulators live in registers (M * NV of them).
#pragma once
#include "cpu/gemm_ukernel.h"
#include <cstdio>

namespace fastdl::cpu::simd {

template <class V, int MR, int NV, int M, bool PACKED>
void ukernel(int64_t k, const typename V::T* a, int64_t rs_a, int64_t cs_a,
             const typename V::T* b, int64_t rs_b, typename V::T* c, int64_t rs_c,
             const UkernelArgs<typename V::T>& e) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int W = V::W;
  if constexpr (PACKED) { rs_a = 1; cs_a = MR; }  // packed panel: constants, folded away

  // Touch the C tile now so it is in cache when the epilogue needs it.
  if (e.beta != T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      __builtin_prefetch(c + i * rs_c);
      __builtin_prefetch(c + i * rs_c + NV * W - 1);
    }
  }

  reg acc[M][NV];
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();

  // k rank-1 updates: acc += A(:, p) . B(p, :)
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    reg bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * W);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      reg ai = V::set1(a[i * rs_a]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(ai, bv[j], acc[i][j]);
    }
    a += cs_a;
    b += rs_b;
  }

  // Epilogue, still in registers: alpha, beta * C, bias, relu; then one store.
  if (e.alpha != T(1)) {
    const reg va = V::set1(e.alpha);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = V::mul(acc[i][j], va);
  }
  if (e.beta != T(0)) {
    const reg vb = V::set1(e.beta);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j)
        acc[i][j] = V::fma(vb, V::load(c + i * rs_c + j * W), acc[i][j]);
  }
  if (e.bias) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const reg bj = V::load(e.bias + j * W);
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i) acc[i][j] = V::add(acc[i][j], bj);
    }
  }
  if (e.relu) {
    const reg z = V::zero();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = V::max(acc[i][j], z);
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) V::store(c + i * rs_c + j * W, acc[i][j]);
}

// Fills set.packed[M-1] and set.strided[M-1] for M = 1..MR.
template <class V, int MR, int NV, int M = 1>
void fill(UkernelSet<typename V::T>& set) {
  set.packed[M - 1] = &ukernel<V, MR, NV, M, true>;
  set.strided[M - 1] = &ukernel<V, MR, NV, M, false>;
  if constexpr (M < MR) fill<V, MR, NV, M + 1>(set);
}

template <class V, int MR, int NV>
UkernelSet<typename V::T> make_set(const char* name, int mc, int kc, int nc) {
  UkernelSet<typename V::T> s{};
  s.name = name;
  s.mr = MR;
  s.nr = NV * V::W;
  s.mc = mc;
  s.kc = kc;
  s.nc = nc;
  fill<V, MR, NV>(s);
  return s;
}

}  // namespace fastdl::cpu::simd
