// The dropout mask loop, compiled once per capability level (the same loop
// with wider integer multiplies) and registered in dropout_kernels.
#include <cstdint>

#include "common/random_math.h"
#include "cpu/nn/dropout.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// y[j] = x[j] * (bits(j) >= thr ? scale : 0) for j in [0, len), bits(j) =
// random_bits24(key, lo0 + j): a plain loop over 32-bit indices, so the hash
// vectorises (branch-free keep). In place (y == x) is fine: element j reads
// x[j] before writing y[j].
template <typename T>
void dropout_range(T* y, const T* x, int32_t len, uint32_t key, uint32_t lo0, int32_t thr,
                   T scale) {
#pragma omp simd
  for (int32_t j = 0; j < len; ++j) {
    const int32_t bits = int32_t(random_bits24(key, lo0 + uint32_t(j)));
    const T keep = bits >= thr ? scale : T(0);
    y[j] = x[j] * keep;
  }
}

// y[i] = x[i] * (keep(i) ? scale : 0), keep(i) = uniform01(seed, i) >= rate.
// Threads take contiguous ranges of a chunk; with one thread there is no
// OpenMP region (a combined `omp parallel for simd` with an if-clause made
// GCC 12 run a scalar copy of the loop: 10x slower).
template <typename T>
void dropout_loop(T* y, const T* x, int64_t n, double rate, uint64_t seed, int nthreads) {
  const int32_t thr = keep_threshold(rate);
  const T scale = T(1.0 / (1.0 - rate));
  // Chunks of 2^31 elements keep the loop index 32-bit; the high half of the
  // element index, hence the key, is constant within a chunk.
  constexpr int64_t kChunk = int64_t(1) << 31;
  for (int64_t base = 0; base < n; base += kChunk) {
    const uint32_t lo0 = uint32_t(uint64_t(base));
    const uint32_t key = chunk_key(seed, uint32_t(uint64_t(base) >> 32));
    const int64_t len = n - base < kChunk ? n - base : kChunk;
    T* yc = y + base;
    const T* xc = x + base;
#ifdef _OPENMP
    if (nthreads > 1) {  // the driver (dropout.cpp) decided from the size
#pragma omp parallel num_threads(nthreads)
      {
        const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
        const int64_t j0 = len * t / k, j1 = len * (t + 1) / k;
        dropout_range(yc + j0, xc + j0, int32_t(j1 - j0), key, lo0 + uint32_t(j0), thr,
                           scale);
      }
      continue;
    }
#endif
    dropout_range(yc, xc, int32_t(len), key, lo0, thr, scale);
  }
}

constexpr DropoutKernels kKernels{&dropout_loop<float>, &dropout_loop<double>};
FASTDL_REGISTER_KERNELS(dropout_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
