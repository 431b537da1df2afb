// The SIMD micro-kernel body, written once for every vector width.
//
// Included only by avx2.cpp and avx512.cpp, which
// are compiled with their ISA flags and define a vector-traits struct V:
//   V::T (float/double), V::reg (vector type), V::W (lanes), V::mask (lane mask),
//   zero(), load(p), store(p, r), set1(x), add(a, b), mul(a, b),
//   fma(a, b, c) = a * b + c, max(a, b),
//   first_lanes(n) (mask of lanes 0..n-1), load(p, mask), store(p, r, mask).
// The tile is M rows x NVE vectors: M values of A are broadcast against NVE
// vectors of B per step of k. All loops have compile-time trip counts and are
// fully unrolled, so the M * NVE accumulators live in registers.
#pragma once
#include "cpu/gemm/kernels/ukernel.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// MR: rows of a packed A panel; M: rows computed; NVE: vectors per row;
// PACKED: A is a packed panel; MASKED: the last vector holds e.n - (NVE-1)*W
// valid lanes (edge tile), loaded and stored under a mask.
template <class V, int MR, int M, int NVE, bool PACKED, bool MASKED>
void ukernel(int64_t k, const typename V::T* a, int64_t rs_a, int64_t cs_a,
             const typename V::T* b, int64_t rs_b, typename V::T* c, int64_t rs_c,
             const UkernelArgs<typename V::T>& e) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int W = V::W;
  constexpr int L = NVE - 1;  // the vector that may be partial
  if constexpr (PACKED) { rs_a = 1; cs_a = MR; }  // packed panel: constants, folded away
  typename V::mask tail{};
  if constexpr (MASKED) tail = V::first_lanes(e.n - L * W);
  auto load = [&](const T* p, int j) {
    if constexpr (MASKED) { if (j == L) return V::load(p, tail); }
    return V::load(p);
  };
  auto store = [&](T* p, reg r, int j) {
    if constexpr (MASKED) { if (j == L) { V::store(p, r, tail); return; } }
    V::store(p, r);
  };

  // Touch the C tile now so it is in cache when the epilogue needs it.
  if (e.beta != T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      __builtin_prefetch(c + i * rs_c);
      __builtin_prefetch(c + i * rs_c + NVE * W - 1);
    }
  }

  // Two FMA pipes with a 4-cycle latency need 8 independent accumulators. A
  // short tile (few rows, few vectors) has fewer, so it keeps S partial sums
  // over interleaved steps of k and adds them up before the epilogue.
  constexpr int S = M * NVE >= 8 ? 1 : (M * NVE >= 4 ? 2 : 4);
  reg acc[S][M][NVE];
#pragma GCC unroll 4
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NVE; ++j) acc[s][i][j] = V::zero();

  // k rank-1 updates: acc[p % S] += A(:, p) . B(p, :)
  auto step = [&](reg (&sum)[M][NVE]) {
    if constexpr (M == 1) {  // no reuse of B: each vector straight into its FMA
      const reg a0 = V::set1(a[0]);
#pragma GCC unroll 8
      for (int j = 0; j < NVE * W * int(sizeof(T)); j += 64)  // the row 8 steps ahead
        __builtin_prefetch(reinterpret_cast<const char*>(b + 8 * rs_b) + j);
#pragma GCC unroll 8
      for (int j = 0; j < NVE; ++j) sum[0][j] = V::fma(a0, load(b + j * W, j), sum[0][j]);
      a += cs_a;
      b += rs_b;
      return;
    }
    reg bv[NVE];
#pragma GCC unroll 4
    for (int j = 0; j < NVE; ++j) bv[j] = load(b + j * W, j);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const reg ai = V::set1(a[i * rs_a]);
#pragma GCC unroll 4
      for (int j = 0; j < NVE; ++j) sum[i][j] = V::fma(ai, bv[j], sum[i][j]);
    }
    a += cs_a;
    b += rs_b;
  };
  int64_t p = 0;
  if constexpr (S > 1) {
    for (; p + S <= k; p += S) {
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) step(acc[s]);
    }
  }
#pragma GCC unroll 4
  for (; p < k; ++p) step(acc[0]);
  if constexpr (S > 1) {
#pragma GCC unroll 4
    for (int s = 1; s < S; ++s)
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NVE; ++j) acc[0][i][j] = V::add(acc[0][i][j], acc[s][i][j]);
  }

  // Epilogue, still in registers: alpha, beta * C, bias, relu; then one store.
  if (e.alpha != T(1)) {
    const reg va = V::set1(e.alpha);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NVE; ++j) acc[0][i][j] = V::mul(acc[0][i][j], va);
  }
  if (e.beta != T(0)) {
    const reg vb = V::set1(e.beta);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NVE; ++j)
        acc[0][i][j] = V::fma(vb, load(c + i * rs_c + j * W, j), acc[0][i][j]);
  }
  if (e.bias) {
#pragma GCC unroll 4
    for (int j = 0; j < NVE; ++j) {
      const reg bj = load(e.bias + j * W, j);
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i) acc[0][i][j] = V::add(acc[0][i][j], bj);
    }
  }
  if (e.relu) {
    const reg z = V::zero();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NVE; ++j) acc[0][i][j] = V::max(acc[0][i][j], z);
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NVE; ++j) store(c + i * rs_c + j * W, acc[0][i][j], j);
}

// Fills set.kernel[*][*][M-1] for M = 1..MR: the full-width kernel (NV
// vectors) and the edge kernels with 1..NV masked vectors, for packed and
// strided A.
template <class V, int MR, int NV, int M = 1, int NVE = 1>
constexpr void fill(UkernelSet<typename V::T>& s) {
  s.kernel[0][NVE][M - 1] = &ukernel<V, MR, M, NVE, true, true>;
  s.kernel[1][NVE][M - 1] = &ukernel<V, MR, M, NVE, false, true>;
  if constexpr (NVE == NV) {
    s.kernel[0][0][M - 1] = &ukernel<V, MR, M, NV, true, false>;
    s.kernel[1][0][M - 1] = &ukernel<V, MR, M, NV, false, false>;
    if constexpr (M < MR) fill<V, MR, NV, M + 1, 1>(s);
  } else {
    fill<V, MR, NV, M, NVE + 1>(s);
  }
}

// Fills set.wide[*][NVE] for NVE = 1..WNV: one row, A and B read in place.
template <class V, int MR, int WNV, int NVE = 1>
constexpr void fill_wide(UkernelSet<typename V::T>& s) {
  s.wide[0][NVE] = &ukernel<V, MR, 1, NVE, false, false>;
  s.wide[1][NVE] = &ukernel<V, MR, 1, NVE, false, true>;
  if constexpr (NVE < WNV) fill_wide<V, MR, WNV, NVE + 1>(s);
}

template <class V, int MR, int NV, int WNV = kMaxWideNV>
constexpr UkernelSet<typename V::T> make_set(const char* name, int mc, int kc, int nc) {
  static_assert(MR <= kMaxMR && NV <= kMaxNV && WNV <= kMaxWideNV,
                "tile larger than the kernel table");
  UkernelSet<typename V::T> s{};
  s.name = name;
  s.mr = MR;
  s.nr = NV * V::W;
  s.nv = NV;
  s.mc = mc;
  s.kc = kc;
  s.nc = nc;
  fill<V, MR, NV>(s);
  s.wide_nv = WNV;
  fill_wide<V, MR, WNV>(s);
  return s;
}

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
