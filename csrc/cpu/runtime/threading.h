// Serial or parallel: decided here, from the size of the work, for every CPU op.
//
// A parallel region costs a fixed fork/join time T: the waiting workers are
// woken (fastdl makes them wait passively, OMP_WAIT_POLICY=passive set at import
// in fastdl/ops.py, so that they do not spin and starve other processes between
// calls), and the closing barrier. Splitting work of one-thread time W * t over
// two threads saves W * t / 2, so it pays from W = 2 T / t on.
//
// Measured with tools/time_parallel_threshold.py (2-core Zen 4, shared with other
// jobs, passive waiting): T ~ 40 us; t ~ 24 us per million multiply-adds (the
// AVX2 GEMM, 1 thread) and ~0.18 ns per element of a streaming element-wise
// pass (relu). Break-even: ~3M multiply-adds, ~420K elements; the thresholds
// below are those rounded up to a power of two, the element one once more
// because a streaming pass is memory-bound and did not halve on two threads
// (relu on 1M elements: 170 us on one thread, 224 us on two). An op doing more
// per element scales its element count by its measured one-thread cost
// relative to relu (the same script): tanh/sigmoid ~100, cross-entropy ~40,
// softmax ~33, the optimizer updates ~3, dropout ~1. With spinning workers T was
// ~6 us (break-even 0.5M multiply-adds) on a quiet machine, but each call then
// left the workers burning ~4 ms of CPU, and on a loaded machine a 256^3 GEMM
// took 18 ms instead of 0.4 ms.
#pragma once

namespace fastdl::cpu {

constexpr double kParallelMinMacs = double(1 << 22);      // multiply-adds (GEMM, convolution)
constexpr double kParallelMinElements = double(1 << 20);  // relu-cost elements

// Threads for `work` units (of the kind min_work counts): nthreads from
// min_work on, one below it (no parallel region at all).
inline int threads_for(double work, double min_work, int nthreads) {
  return work >= min_work ? nthreads : 1;
}

}  // namespace fastdl::cpu
