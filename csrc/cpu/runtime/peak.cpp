// Measured FMA peak: every thread runs an FMA loop at once; flops / wall time.
#include "cpu/runtime/peak.h"

#include <algorithm>
#include <chrono>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {
double run_loop(Isa isa, int64_t iters, bool dbl) { return peak_kernels[isa].fma_loop(iters, dbl); }
}  // namespace

double fma_peak_gflops(int nthreads, Isa isa, bool dbl) {
  using clock = std::chrono::steady_clock;
  nthreads = std::max(1, nthreads);
  // Size one run to about 2 ms on one thread: short enough that, on a shared
  // machine, some runs fit between two interruptions by other processes.
  int64_t iters = 1 << 12;
  for (;;) {
    auto t0 = clock::now();
    run_loop(isa, iters, dbl);
    double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (s > 0.001 || iters > (int64_t(1) << 34)) {
      iters = std::max<int64_t>(1, int64_t(double(iters) * 0.002 / std::max(s, 1e-9)));
      break;
    }
    iters *= 2;
  }
  // The peak is a ceiling: keep the best of many runs (interruptions only lower a run).
  double best = 0;
  for (int rep = 0; rep < 40; ++rep) {
    double flops = 0;
    auto t0 = clock::now();
    if (nthreads == 1) {
      flops = run_loop(isa, iters, dbl);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) reduction(+ : flops)
      flops += run_loop(isa, iters, dbl);
#else
      flops = run_loop(isa, iters, dbl);
#endif
    }
    double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, flops / s * 1e-9);
  }
  return best;
}

}  // namespace fastdl::cpu
