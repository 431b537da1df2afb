// The FMA-throughput loop body for one vector type (included by peak_avx2.cpp
// and peak_avx512.cpp with their ISA flags). 12 independent accumulators cover
// 2 pipes x 4 cycles of FMA latency with room to spare.
#pragma once
#include <cstdint>

namespace fastdl::cpu::peak {

template <class V>
double fma_loop(int64_t iters) {
  using T = typename V::T;
  using reg = typename V::reg;
  // Twelve named accumulators (an array would be kept in memory).
  reg a0 = V::set1(T(0.01)), a1 = V::set1(T(0.02)), a2 = V::set1(T(0.03));
  reg a3 = V::set1(T(0.04)), a4 = V::set1(T(0.05)), a5 = V::set1(T(0.06));
  reg a6 = V::set1(T(0.07)), a7 = V::set1(T(0.08)), a8 = V::set1(T(0.09));
  reg a9 = V::set1(T(0.10)), a10 = V::set1(T(0.11)), a11 = V::set1(T(0.12));
  const reg x = V::set1(T(0.9999999));
  const reg y = V::set1(T(0.0000001));
  for (int64_t it = 0; it < iters; ++it) {
    a0 = V::fma(a0, x, y); a1 = V::fma(a1, x, y); a2 = V::fma(a2, x, y);
    a3 = V::fma(a3, x, y); a4 = V::fma(a4, x, y); a5 = V::fma(a5, x, y);
    a6 = V::fma(a6, x, y); a7 = V::fma(a7, x, y); a8 = V::fma(a8, x, y);
    a9 = V::fma(a9, x, y); a10 = V::fma(a10, x, y); a11 = V::fma(a11, x, y);
    // Keeps the compiler from folding iterations together.
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  reg s = V::add(V::add(V::add(a0, a1), V::add(a2, a3)), V::add(V::add(a4, a5), V::add(a6, a7)));
  s = V::add(s, V::add(V::add(a8, a9), V::add(a10, a11)));
  volatile T sink = V::first(s);
  (void)sink;
  return double(iters) * 12 * V::W * 2;
}

}  // namespace fastdl::cpu::peak
