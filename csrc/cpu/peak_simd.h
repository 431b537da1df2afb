// The FMA-throughput loop body for one vector type (included by peak_avx2.cpp
// and peak_avx512.cpp with their ISA flags). 12 independent accumulators cover
// 2 pipes x 4 cycles of FMA latency with room to spare.
#pragma once
#include <cstdint>

namespace fastdl::cpu::peak {

template <class V>
double fma_loop(int64_t iters) {
  using reg = typename V::reg;
  reg acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = V::set1(typename V::T(i) * typename V::T(0.001));
  const reg x = V::set1(typename V::T(0.9999999));
  const reg y = V::set1(typename V::T(0.0000001));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = V::fma(acc[i], x, y);
    // Keeps the compiler from folding iterations together.
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]),
                     "+v"(acc[4]), "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]),
                     "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
  }
  reg s = acc[0];
  for (int i = 1; i < 12; ++i) s = V::add(s, acc[i]);
  volatile typename V::T sink = V::first(s);
  (void)sink;
  return double(iters) * 12 * V::W * 2;
}

}  // namespace fastdl::cpu::peak
