// Measured peak of this machine: a loop of independent FMAs (no memory
// traffic), the ceiling any GEMM kernel can reach.
#pragma once
#include <cstdint>

#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// GFLOP/s of nthreads threads each running independent FMAs at level isa, in
// float (or double). Best of 40 runs of about 2 ms.
double fma_peak_gflops(int nthreads, Isa isa, bool dbl);

// The FMA loop (returns the flops performed), one build per capability level
// (peak_kernels.cpp).
struct PeakKernels {
  double (*fma_loop)(int64_t iters, bool dbl);
};
inline DispatchTable<PeakKernels> peak_kernels;

}  // namespace fastdl::cpu
