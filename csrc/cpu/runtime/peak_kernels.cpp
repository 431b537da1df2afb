// The FMA-throughput loop, compiled once per capability level with vectors of
// that level's width (16, 32 or 64 bytes; the generic build has no FMA
// instruction and runs a multiply and an add). 12 independent accumulators
// cover 2 pipes x 4 cycles of FMA latency with room to spare.
#include <cstdint>

#include "cpu/runtime/peak.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

constexpr int kVecBytes = FASTDL_CAP_LEVEL == 0 ? 16 : FASTDL_CAP_LEVEL == 1 ? 32 : 64;

template <typename T>
double fma_loop_typed(int64_t iters) {
  typedef T V __attribute__((vector_size(kVecBytes)));
  constexpr int W = kVecBytes / int(sizeof(T));
  auto set1 = [](T x) { V v; for (int i = 0; i < W; ++i) v[i] = x; return v; };
  // Twelve named accumulators (an array would be kept in memory).
  V a0 = set1(T(0.01)), a1 = set1(T(0.02)), a2 = set1(T(0.03));
  V a3 = set1(T(0.04)), a4 = set1(T(0.05)), a5 = set1(T(0.06));
  V a6 = set1(T(0.07)), a7 = set1(T(0.08)), a8 = set1(T(0.09));
  V a9 = set1(T(0.10)), a10 = set1(T(0.11)), a11 = set1(T(0.12));
  const V x = set1(T(0.9999999));
  const V y = set1(T(0.0000001));
  for (int64_t it = 0; it < iters; ++it) {
    a0 = a0 * x + y; a1 = a1 * x + y; a2 = a2 * x + y;
    a3 = a3 * x + y; a4 = a4 * x + y; a5 = a5 * x + y;
    a6 = a6 * x + y; a7 = a7 * x + y; a8 = a8 * x + y;
    a9 = a9 * x + y; a10 = a10 * x + y; a11 = a11 * x + y;
    // Keeps the compiler from folding iterations together.
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  V s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
  volatile T sink = s[0];
  (void)sink;
  return double(iters) * 12 * W * 2;
}

double fma_loop(int64_t iters, bool dbl) {
  return dbl ? fma_loop_typed<double>(iters) : fma_loop_typed<float>(iters);
}

#pragma GCC diagnostic pop

constexpr PeakKernels kKernels{&fma_loop};
FASTDL_REGISTER_KERNELS(peak_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
