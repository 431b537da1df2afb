// Max pooling: the kernels are in max_pool2d_kernels.cpp, built once per
// capability level; this file looks them up for ctx.isa.
#include "cpu/pool/max_pool2d.h"

namespace fastdl::cpu {

template <typename T>
void max_pool2d_forward(T* y, const T* x, const Conv2dGeom& g, const Context& ctx) {
  max_pool_kernels[ctx.isa].forward<T>()(y, x, g, ctx);
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const Conv2dGeom& g, bool relu,
                         const Context& ctx) {
  ArenaScope scope(ctx.arena);
  T* scratch = ctx.arena->alloc<T>(int64_t(ctx.nthreads) * g.C);
  max_pool_kernels[ctx.isa].backward<T>()(dx, dy, x, scratch, g, relu, ctx);
}

template void max_pool2d_forward<float>(float*, const float*, const Conv2dGeom&, const Context&);
template void max_pool2d_forward<double>(double*, const double*, const Conv2dGeom&,
                                         const Context&);
template void max_pool2d_backward<float>(float*, const float*, const float*, const Conv2dGeom&,
                                         bool, const Context&);
template void max_pool2d_backward<double>(double*, const double*, const double*,
                                          const Conv2dGeom&, bool, const Context&);

}  // namespace fastdl::cpu
