// Serial or parallel: decided here, from the size of the work, for every CPU op.
//
// A parallel region costs a fixed fork/join time T: the waiting workers are
// woken, and the closing barrier. fastdl's workers spin briefly and then sleep
// (GOMP_SPINCOUNT=10000, set at import in fastdl/ops.py): back-to-back kernels of
// a training step find them awake, and an idle fastdl burns about 0.3 ms of CPU
// per call instead of starving other processes (default libgomp: ~4 ms; active
// waiting: all of it). Splitting work of one-thread time W * t over two threads
// saves W * t / 2, so it pays from W = 2 T / t on.
//
// Measured with tools/time_parallel_threshold.py (2-core AMD EPYC guest, AVX2,
// with that short spin): T ~ 7 us; t ~ 24 us per million multiply-adds (the AVX2
// GEMM, 1 thread) and ~0.15 ns per element of a streaming element-wise pass
// (relu). Break-even: ~0.6M multiply-adds, ~100K elements; the thresholds below
// are those rounded up to a power of two, the element one twice more because a
// streaming pass is memory-bound and gains less than half. An op doing more per
// element scales its element count by its measured one-thread cost relative to
// relu (the same script): tanh/sigmoid ~100-130, cross-entropy ~40-60, softmax
// ~35, the optimizer updates ~3-5, dropout ~1-2. (With passive waiting T was ~40
// us and the break-even ~3M multiply-adds; with spinning forever T was ~6 us but
// each call left the workers burning ~4 ms.)
#pragma once

namespace fastdl::cpu {

constexpr double kParallelMinMacs = double(1 << 20);      // multiply-adds (GEMM, convolution)
constexpr double kParallelMinElements = double(1 << 19);  // relu-cost elements

// Threads for `work` units (of the kind min_work counts): nthreads from
// min_work on, one below it (no parallel region at all).
inline int threads_for(double work, double min_work, int nthreads) {
  return work >= min_work ? nthreads : 1;
}

}  // namespace fastdl::cpu
