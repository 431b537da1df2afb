// The dropout mask loop, shared by dropout.cpp (generic) and its _avx2/_avx512
// twins (the same loop with wider integer multiplies). Each includer passes a
// Tag from its own anonymous namespace so its instantiations stay private.
#pragma once
#include <cstdint>

#include "common/random_math.h"

namespace fastdl::cpu::detail {

constexpr int64_t kDropoutParallelMin = 1 << 16;

// y[i] = x[i] * (keep(i) ? scale : 0), keep(i) = uniform01(seed, i) >= rate.
// In place (y == x) is fine: element j reads x[j] before writing y[j].
template <typename Tag, typename T>
void dropout_loop(T* y, const T* x, int64_t n, double rate, uint64_t seed, int nthreads) {
  const int32_t thr = keep_threshold(rate);
  const T scale = T(1.0 / (1.0 - rate));
  // Chunks of 2^31 elements keep the loop index 32-bit (so the hash vectorises);
  // the high half of the element index, hence the key, is constant within a chunk.
  constexpr int64_t kChunk = int64_t(1) << 31;
  for (int64_t base = 0; base < n; base += kChunk) {
    const uint32_t lo0 = uint32_t(uint64_t(base));
    const uint32_t key = chunk_key(seed, uint32_t(uint64_t(base) >> 32));
    const int32_t len = int32_t(n - base < kChunk ? n - base : kChunk);
    T* yc = y + base;
    const T* xc = x + base;
    const int nt = len >= kDropoutParallelMin ? nthreads : 1;
#pragma omp parallel for simd num_threads(nt) if (nt > 1)
    for (int32_t j = 0; j < len; ++j) {
      const int32_t bits = int32_t(random_bits24(key, lo0 + uint32_t(j)));
      const T keep = bits >= thr ? scale : T(0);  // branch-free, so the loop vectorises
      yc[j] = xc[j] * keep;
    }
  }
}

}  // namespace fastdl::cpu::detail

#define FASTDL_DEFINE_DROPOUT_ENTRY_POINT(SUFFIX)                                          \
  namespace fastdl::cpu {                                                                  \
  namespace {                                                                              \
  struct DropoutTag##SUFFIX {};                                                            \
  }                                                                                        \
  template <typename T>                                                                    \
  void dropout_mask_##SUFFIX(T* y, const T* x, int64_t n, double rate, uint64_t seed,      \
                             int nt) {                                                     \
    detail::dropout_loop<DropoutTag##SUFFIX>(y, x, n, rate, seed, nt);                     \
  }                                                                                        \
  template void dropout_mask_##SUFFIX<float>(float*, const float*, int64_t, double,        \
                                             uint64_t, int);                               \
  template void dropout_mask_##SUFFIX<double>(double*, const double*, int64_t, double,     \
                                              uint64_t, int);                              \
  }
