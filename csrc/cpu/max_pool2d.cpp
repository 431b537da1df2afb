// Max pooling: the kernels are in max_pool2d_impl.h, built once per SIMD
// level; this file holds the generic build and picks a level by ctx.isa.
#include "cpu/max_pool2d.h"

#define FASTDL_POOL_NS generic
#include "cpu/max_pool2d_impl.h"

namespace fastdl::cpu {

#define FASTDL_POOL_DECLARE(ns)                                                             \
  namespace ns {                                                                            \
  template <typename T>                                                                     \
  void max_pool2d_forward_impl(T*, const T*, const Conv2dGeom&, const Context&);            \
  template <typename T>                                                                     \
  void max_pool2d_backward_impl(T*, const T*, const T*, T*, const Conv2dGeom&, bool,          \
                                const Context&);                                            \
  }
FASTDL_POOL_DECLARE(avx2)
FASTDL_POOL_DECLARE(avx512)
#undef FASTDL_POOL_DECLARE

template <typename T>
void max_pool2d_forward(T* y, const T* x, const Conv2dGeom& g, const Context& ctx) {
#ifdef FASTDL_X86
  if (ctx.isa == Isa::avx512) return avx512::max_pool2d_forward_impl<T>(y, x, g, ctx);
  if (ctx.isa == Isa::avx2) return avx2::max_pool2d_forward_impl<T>(y, x, g, ctx);
#endif
  generic::max_pool2d_forward_impl<T>(y, x, g, ctx);
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const Conv2dGeom& g, bool relu,
                         const Context& ctx) {
  ArenaScope scope(ctx.arena);
  T* scratch = ctx.arena->alloc<T>(int64_t(ctx.nthreads) * g.C);
#ifdef FASTDL_X86
  if (ctx.isa == Isa::avx512)
    return avx512::max_pool2d_backward_impl<T>(dx, dy, x, scratch, g, relu, ctx);
  if (ctx.isa == Isa::avx2)
    return avx2::max_pool2d_backward_impl<T>(dx, dy, x, scratch, g, relu, ctx);
#endif
  generic::max_pool2d_backward_impl<T>(dx, dy, x, scratch, g, relu, ctx);
}

template void max_pool2d_forward<float>(float*, const float*, const Conv2dGeom&, const Context&);
template void max_pool2d_forward<double>(double*, const double*, const Conv2dGeom&,
                                         const Context&);
template void max_pool2d_backward<float>(float*, const float*, const float*, const Conv2dGeom&,
                                         bool, const Context&);
template void max_pool2d_backward<double>(double*, const double*, const double*,
                                          const Conv2dGeom&, bool, const Context&);

}  // namespace fastdl::cpu
