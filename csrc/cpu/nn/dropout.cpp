// Forward and backward are the same mask pass (dropout_kernels.cpp), looked
// up for ctx.isa.
#include "cpu/nn/dropout.h"

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// Cost per element about that of relu (runtime/threading.h).
int dropout_threads(int64_t n, const Context& ctx) {
  return threads_for(double(n), kParallelMinElements, ctx.nthreads);
}
}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, int64_t n, double rate, uint64_t seed, const Context& ctx) {
  dropout_kernels[ctx.isa].mask<T>()(y, x, n, rate, seed, dropout_threads(n, ctx));
}

template <typename T>
void dropout_backward(T* dx, const T* dy, int64_t n, double rate, uint64_t seed,
                      const Context& ctx) {
  dropout_kernels[ctx.isa].mask<T>()(dx, dy, n, rate, seed, dropout_threads(n, ctx));
}

template void dropout_forward<float>(float*, const float*, int64_t, double, uint64_t,
                                     const Context&);
template void dropout_forward<double>(double*, const double*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<float>(float*, const float*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<double>(double*, const double*, int64_t, double, uint64_t,
                                       const Context&);

}  // namespace fastdl::cpu
