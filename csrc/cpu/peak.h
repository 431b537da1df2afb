// Measured peak of this machine: a loop of independent FMAs (no memory
// traffic), the ceiling any GEMM kernel can reach.
#pragma once
#include <cstdint>

#include "cpu/context.h"

namespace fastdl::cpu {

// GFLOP/s of nthreads threads each running independent FMAs at level isa, in
// float (or double). Best of 40 runs of about 2 ms.
double fma_peak_gflops(int nthreads, Isa isa, bool dbl);

// The FMA loops (flops performed), one per level; peak_avx2.cpp / peak_avx512.cpp.
double fma_loop_generic(int64_t iters, bool dbl);
#if defined(FASTDL_X86)
double fma_loop_avx2(int64_t iters, bool dbl);
double fma_loop_avx512(int64_t iters, bool dbl);
#endif

}  // namespace fastdl::cpu
