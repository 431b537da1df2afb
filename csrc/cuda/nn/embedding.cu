// Embedding forward (gather) and backward (sum of dy rows per table row), side by
// side. The backward is deterministic without atomics: the caller hands in the ids
// sorted stably with the order they came from, and the first position of each run
// of equal ids sums that run in the order of the tokens. See nn.h.
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// y[i, j] = table[ids[i], j]; one thread per output element, j fastest (coalesced).
template <typename T>
__global__ void embedding_gather_kernel(T* y /* (n, D) */, const T* table /* (V, D) */,
                                        const int64_t* ids /* (n,) */, int64_t n, int64_t D) {
  FASTDL_GRID_LOOP(e, n * D) {
    const int64_t i = e / D, j = e - i * D;
    y[e] = table[ids[i] * D + j];
  }
}

template <typename T>
__global__ void embedding_zero_kernel(T* a /* (n,) */, int64_t n) {
  FASTDL_GRID_LOOP(e, n) a[e] = T(0);
}

// One thread per (position p of the sorted ids, column j): where a run of equal ids
// starts, dtable[id, j] = the sum of dy[order[q], j] over the run, q increasing.
template <typename T>
__global__ void embedding_scatter_kernel(T* dtable /* (V, D) */, const T* dy /* (n, D) */,
                                         const int64_t* sorted_ids /* (n,) */,
                                         const int64_t* order /* (n,) */, int64_t n, int64_t D) {
  FASTDL_GRID_LOOP(e, n * D) {
    const int64_t p = e / D, j = e - p * D;
    const int64_t r = sorted_ids[p];
    if (p > 0 && sorted_ids[p - 1] == r) continue;
    T s = T(0);
    for (int64_t q = p; q < n && sorted_ids[q] == r; ++q) s += dy[order[q] * D + j];
    dtable[r * D + j] = s;
  }
}

}  // namespace

template <typename T>
cudaError_t embedding_forward(T* y, const T* table, const int64_t* ids, int64_t n, int64_t D,
                              cudaStream_t stream) {
  if (n <= 0 || D <= 0) return cudaSuccess;
  embedding_gather_kernel<T><<<blocks_for(n * D), kThreads, 0, stream>>>(y, table, ids, n, D);
  return launch_status();
}

template <typename T>
cudaError_t embedding_backward(T* dtable, const T* dy, const int64_t* sorted_ids,
                               const int64_t* order, int64_t n, int64_t V, int64_t D,
                               cudaStream_t stream) {
  if (V <= 0 || D <= 0) return cudaSuccess;
  embedding_zero_kernel<T><<<blocks_for(V * D), kThreads, 0, stream>>>(dtable, V * D);
  if (n > 0)
    embedding_scatter_kernel<T><<<blocks_for(n * D), kThreads, 0, stream>>>(dtable, dy, sorted_ids,
                                                                          order, n, D);
  return launch_status();
}

template cudaError_t embedding_forward<float>(float*, const float*, const int64_t*, int64_t,
                                              int64_t, cudaStream_t);
template cudaError_t embedding_forward<double>(double*, const double*, const int64_t*, int64_t,
                                               int64_t, cudaStream_t);
template cudaError_t embedding_backward<float>(float*, const float*, const int64_t*,
                                               const int64_t*, int64_t, int64_t, int64_t,
                                               cudaStream_t);
template cudaError_t embedding_backward<double>(double*, const double*, const int64_t*,
                                                const int64_t*, int64_t, int64_t, int64_t,
                                                cudaStream_t);

}  // namespace fastdl::cuda
