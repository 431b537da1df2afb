// Embedding lookup: a gather of table rows forward, a scatter-add of the output
// gradient into the table's gradient backward. Ids are checked by the caller
// (bindings_common/checks.h: embedding_id_range), so the kernels never see an id
// outside [0, V).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// y[i, :] = table[ids[i], :]. y is overwritten.
template <typename T>
void embedding_forward(T* y /* (n, D) */, const T* table /* (V, D) */,
                       const int64_t* ids /* (n,) */, int64_t n, int64_t V, int64_t D,
                       const Context& ctx);

// dtable = 0; dtable[ids[i], :] += dy[i, :] for i = 0..n-1 in order. dtable is
// overwritten. Threads own disjoint ranges of table rows and each adds its rows'
// contributions in the order of i, so the result is the same for any thread count.
template <typename T>
void embedding_backward(T* dtable /* (V, D) */, const T* dy /* (n, D) */,
                        const int64_t* ids /* (n,) */, int64_t n, int64_t V, int64_t D,
                        const Context& ctx);

// The loops both use (embedding_kernels.cpp, one build per capability level), on
// nthreads threads (1: no parallel region).
struct EmbeddingKernels {
  template <typename T>
  using Gather = void (*)(T* y, const T* table, const int64_t* ids, int64_t n, int64_t D,
                          int nthreads);
  template <typename T>
  using Scatter = void (*)(T* dtable, const T* dy, const int64_t* ids, int64_t n, int64_t V,
                           int64_t D, int nthreads);
  Gather<float> gather_f32;
  Gather<double> gather_f64;
  Scatter<float> scatter_f32;
  Scatter<double> scatter_f64;
  template <typename T>
  Gather<T> gather() const {
    if constexpr (sizeof(T) == sizeof(float)) return gather_f32; else return gather_f64;
  }
  template <typename T>
  Scatter<T> scatter() const {
    if constexpr (sizeof(T) == sizeof(float)) return scatter_f32; else return scatter_f64;
  }
};
inline DispatchTable<EmbeddingKernels> embedding_kernels;

}  // namespace fastdl::cpu
