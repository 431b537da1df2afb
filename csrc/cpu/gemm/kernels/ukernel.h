// GEMM micro-kernels: the only ISA-specific part of the GEMM engine (BLIS keeps
// them apart the same way: the driver and packing in gemm/, one hand-written
// kernel file per architecture here: generic.cpp, avx2.cpp, avx512.cpp).
//
// A micro-kernel computes one register tile of C,
//
//   C(M, n) = act(alpha * A(M, k) . B(k, n) + beta * C(M, n) + bias(n))
//
// as k rank-1 updates held in registers, then applies the epilogue once and
// stores the tile. C is overwritten; beta == 0 never reads C. The driver
// (gemm.cpp) owns everything else: cache blocking, packing, threads, which
// kernel an edge tile gets, and C without a unit column stride (it hands the
// kernel a scratch tile and merges it).
//
// Each kernel file is compiled at its own capability level only and registers
// its sets in gemm_ukernels (runtime/dispatch.h).
//
// Operand layouts seen by a kernel:
//   A: element (i, p) at a[i * rs_a + p * cs_a]. A packed panel has rs_a = 1,
//      cs_a = MR (the packed-A kernels assume that and ignore the strides); the
//      strided-A kernels read A in place with any strides (small-m path).
//   B: element (p, j) at b[p * rs_b + j]: a packed micro-panel (rs_b = NR,
//      zero-padded to NR columns) or B itself read in place (rs_b = its row
//      stride; only the n valid columns are touched).
//   C: element (i, j) at c[i * rs_c + j] (unit column stride).
// A tile row is NV vectors of W lanes (NR = NV * W). Full-width kernels do
// exactly NR columns; edge kernels do n < NR columns with v = ceil(n / W)
// vectors, the last one under a lane mask. Each row count M = 1..MR has its
// own kernel, so edge rows cost no wasted arithmetic either. The one-row
// ("wide") kernels are the same code with M = 1 and up to kMaxWideNV vectors:
// a row of C has too little reuse to pack anything, so they stream B in place,
// several whole cache lines per step of k.
#pragma once
#include <cstdint>

#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

constexpr int kMaxMR = 16;
constexpr int kMaxNV = 4;
constexpr int kMaxWideNV = 8;

template <typename T>
struct UkernelArgs {
  T alpha;
  T beta;          // 0: C is write-only
  const T* bias;   // (NR,) this tile's slice of the bias, or null
  bool relu;       // clamp at 0 after the bias
  int n;           // columns of the tile (NR for full-width kernels)
};

template <typename T>
using UkernelFn = void (*)(int64_t k, const T* a /* (M,k) */, int64_t rs_a, int64_t cs_a,
                           const T* b /* (k,n) row stride rs_b */, int64_t rs_b,
                           T* c /* (M,n) row stride rs_c */, int64_t rs_c,
                           const UkernelArgs<T>& e);

template <typename T>
struct UkernelSet {
  const char* name;
  int mr, nr;                     // register tile
  int nv;                         // vectors per tile row (nr / lanes)
  int mc, kc, nc;                 // cache blocks: mc % mr == 0, nc % nr == 0
  // kernel[a][v][M-1]: a = 0 A packed, 1 A strided; v = 0 full width (n == nr),
  // v = 1..nv: n < nr columns in v vectors; M = rows.
  UkernelFn<T> kernel[2][kMaxNV + 1][kMaxMR];
  // One-row kernels for C of one row (x . B, a matrix-vector product): A read
  // in place, B row-major read in place, up to wide_nv vectors per step of k.
  // wide[masked][v]: v vectors, the last under a lane mask when masked is 1.
  // wide_nv == 0: the set has none and one-row products take the tiled path.
  int wide_nv;
  UkernelFn<T> wide[2][kMaxWideNV + 1];
};

// What one kernel file registers: a set per element type.
struct GemmUkernels {
  UkernelSet<float> f32;
  UkernelSet<double> f64;
};
inline DispatchTable<GemmUkernels> gemm_ukernels;

// The set the driver uses at level isa.
template <typename T>
const UkernelSet<T>& ukernel_set(Isa isa) {
  if constexpr (sizeof(T) == sizeof(float)) return gemm_ukernels[isa].f32;
  else return gemm_ukernels[isa].f64;
}

}  // namespace fastdl::cpu
