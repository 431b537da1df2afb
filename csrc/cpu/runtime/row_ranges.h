// Row-parallel passes of the driver files (batch and layer normalization): rows
// split into one contiguous range per thread. Not for kernel files (they are
// compiled per capability level and must not share inline code with the
// generic build).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

// f(t, r0, r1) on rows [r0, r1) for thread t of nt (1: no parallel region).
template <class F>
void for_row_ranges(int64_t rows, int nt, F&& f) {
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
      f(int(t), rows * t / k, rows * (t + 1) / k);
    }
    return;
  }
#endif
  f(0, int64_t(0), rows);
}

// Threads for a pass over `rows` rows costing `elements` relu-cost elements in
// all (runtime/threading.h), never more threads than rows.
inline int rows_threads(int64_t rows, double elements, const Context& ctx) {
  const int nt = threads_for(elements, kParallelMinElements, ctx.nthreads);
  return int(rows < nt ? (rows > 0 ? rows : 1) : nt);
}

}  // namespace fastdl::cpu
