// The embedding row loops, compiled once per capability level (the same loops,
// vectorised at that level's width) and registered in embedding_kernels.
#include <cstdint>
#include <cstring>

#include "cpu/nn/embedding.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// dst[j] += src[j], j < D.
template <typename T>
inline void add_row(T* dst /* (D,) */, const T* src /* (D,) */, int64_t D) {
#pragma omp simd
  for (int64_t j = 0; j < D; ++j) dst[j] += src[j];
}

// Rows [i0, i1) of y from the table.
template <typename T>
void gather_rows(T* y /* (n, D) */, const T* table /* (V, D) */, const int64_t* ids /* (n,) */,
                 int64_t i0, int64_t i1, int64_t D) {
  for (int64_t i = i0; i < i1; ++i)
    std::memcpy(y + i * D, table + ids[i] * D, size_t(D) * sizeof(T));
}

// Table rows [r0, r1) of dtable: zeroed, then every dy row whose id falls in
// the range added, in the order of i.
template <typename T>
void scatter_rows(T* dtable /* (V, D) */, const T* dy /* (n, D) */, const int64_t* ids /* (n,) */,
                  int64_t n, int64_t r0, int64_t r1, int64_t D) {
  if (r1 > r0) std::memset(dtable + r0 * D, 0, size_t((r1 - r0) * D) * sizeof(T));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = ids[i];
    if (r >= r0 && r < r1) add_row(dtable + r * D, dy + i * D, D);
  }
}

template <typename T>
void gather_loop(T* y /* (n, D) */, const T* table /* (V, D) */, const int64_t* ids /* (n,) */,
                 int64_t n, int64_t D, int nthreads) {
#ifdef _OPENMP
  if (nthreads > 1) {  // the driver (embedding.cpp) decided from the size
#pragma omp parallel num_threads(nthreads)
    {
      const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
      gather_rows(y, table, ids, n * t / k, n * (t + 1) / k, D);
    }
    return;
  }
#endif
  gather_rows(y, table, ids, 0, n, D);
}

template <typename T>
void scatter_loop(T* dtable /* (V, D) */, const T* dy /* (n, D) */, const int64_t* ids /* (n,) */,
                  int64_t n, int64_t V, int64_t D, int nthreads) {
#ifdef _OPENMP
  if (nthreads > 1) {
#pragma omp parallel num_threads(nthreads)
    {
      const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
      scatter_rows(dtable, dy, ids, n, V * t / k, V * (t + 1) / k, D);
    }
    return;
  }
#endif
  scatter_rows(dtable, dy, ids, n, int64_t(0), V, D);
}

constexpr EmbeddingKernels kKernels{&gather_loop<float>, &gather_loop<double>,
                                    &scatter_loop<float>, &scatter_loop<double>};
FASTDL_REGISTER_KERNELS(embedding_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
