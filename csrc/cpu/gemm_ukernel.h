// GEMM micro-kernels: the only ISA-specific part of the GEMM engine.
//
// A micro-kernel computes one register tile of C,
//
//   C(M, NR) = act(alpha * A(M, k) . B(k, NR) + beta * C(M, NR) + bias(NR))
//
// as k rank-1 updates held in registers, then applies the epilogue once and
// stores the tile. C is overwritten; beta == 0 never reads C. The driver
// (gemm.cpp) owns everything else: cache blocking, packing, threads, and the
// edge tiles that are narrower than NR (it hands those a scratch tile).
//
// Operand layouts seen by a kernel:
//   A: element (i, p) at a[i * rs_a + p * cs_a]. A packed panel has rs_a = 1,
//      cs_a = MR (the "packed" kernels assume that and ignore the strides); the
//      "strided" kernels read A in place with any strides (small-m path).
//   B: packed micro-panel, element (p, j) at b[p * rs_b + j] (rs_b = NR when
//      packed; j is contiguous so NR columns load as vectors).
//   C: element (i, j) at c[i * rs_c + j] (unit column stride).
// Each set holds one kernel per row count M = 1..MR, so edge rows cost no
// wasted arithmetic.
#pragma once
#include <cstdint>

#include "cpu/context.h"

namespace fastdl::cpu {

constexpr int kMaxMR = 16;

template <typename T>
struct UkernelArgs {
  T alpha;
  T beta;          // 0: C is write-only
  const T* bias;   // (NR,) this tile's slice of the bias, or null
  bool relu;       // clamp at 0 after the bias
};

template <typename T>
using UkernelFn = void (*)(int64_t k, const T* a /* (M,k) */, int64_t rs_a, int64_t cs_a,
                           const T* b /* (k,NR) packed */, int64_t rs_b,
                           T* c /* (M,NR) row stride rs_c */, int64_t rs_c,
                           const UkernelArgs<T>& e);

template <typename T>
struct UkernelSet {
  const char* name;
  int mr, nr;                     // register tile
  int mc, kc, nc;                 // cache blocks: mc % mr == 0, nc % nr == 0
  UkernelFn<T> packed[kMaxMR];    // [M-1]: A packed as panels of mr rows
  UkernelFn<T> strided[kMaxMR];   // [M-1]: A read in place through (rs_a, cs_a)
};

// Portable C++ kernels (any CPU).
const UkernelSet<float>& ukernels_generic_f32();
const UkernelSet<double>& ukernels_generic_f64();
#if defined(FASTDL_X86)
// AVX2 + FMA (gemm_ukernel_avx2.cpp) and AVX-512F (gemm_ukernel_avx512.cpp).
const UkernelSet<float>& ukernels_avx2_f32();
const UkernelSet<double>& ukernels_avx2_f64();
const UkernelSet<float>& ukernels_avx512_f32();
const UkernelSet<double>& ukernels_avx512_f64();
#endif

// The set the driver uses for ctx.isa.
template <typename T>
const UkernelSet<T>& ukernel_set(Isa isa);

}  // namespace fastdl::cpu
