// Embedding forward (gather) and backward (scatter-add), side by side; the row
// loops are in embedding_kernels.cpp, looked up for ctx.isa.
#include "cpu/nn/embedding.h"

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// A row copy or add costs about one relu element per element (a streaming
// pass); the backward also zeroes the whole table.
int embedding_threads(double elements, const Context& ctx) {
  return threads_for(elements, kParallelMinElements, ctx.nthreads);
}
}  // namespace

template <typename T>
void embedding_forward(T* y, const T* table, const int64_t* ids, int64_t n, int64_t V, int64_t D,
                       const Context& ctx) {
  const int nt = embedding_threads(double(n) * double(D), ctx);
  embedding_kernels[ctx.isa].gather<T>()(y, table, ids, n, D, nt);
}

template <typename T>
void embedding_backward(T* dtable, const T* dy, const int64_t* ids, int64_t n, int64_t V,
                        int64_t D, const Context& ctx) {
  const int nt = embedding_threads(double(n + V) * double(D), ctx);
  embedding_kernels[ctx.isa].scatter<T>()(dtable, dy, ids, n, V, D, nt);
}

template void embedding_forward<float>(float*, const float*, const int64_t*, int64_t, int64_t,
                                       int64_t, const Context&);
template void embedding_forward<double>(double*, const double*, const int64_t*, int64_t, int64_t,
                                        int64_t, const Context&);
template void embedding_backward<float>(float*, const float*, const int64_t*, int64_t, int64_t,
                                        int64_t, const Context&);
template void embedding_backward<double>(double*, const double*, const int64_t*, int64_t,
                                         int64_t, int64_t, const Context&);

}  // namespace fastdl::cpu
