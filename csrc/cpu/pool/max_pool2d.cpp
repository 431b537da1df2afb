// Max pooling: the kernels are in max_pool2d_kernels.cpp, built once per
// capability level; this file looks them up for ctx.isa.
#include "cpu/pool/max_pool2d.h"

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// ctx with the threads worth using: every output reads its window once, a
// relu-cost element each (runtime/threading.h).
Context sized(const Conv2dGeom& g, const Context& ctx) {
  Context c = ctx;
  // in doubles: the int64 products may overflow for huge (refused later) geometries
  const double reads = double(g.N) * double(g.OH) * double(g.OW) * double(g.C) * double(g.KH) *
                       double(g.KW);
  c.nthreads = threads_for(reads, kParallelMinElements, ctx.nthreads);
  return c;
}
}  // namespace

template <typename T>
void max_pool2d_forward(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g,
                        const Context& ctx) {
  max_pool_kernels[ctx.isa].forward<T>()(y, argmax, x, g, sized(g, ctx));
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const Conv2dGeom& g, bool relu,
                         const Context& ctx) {
  const Context c = sized(g, ctx);
  ArenaScope scope(c.arena);
  T* scratch = c.arena->alloc<T>(int64_t(c.nthreads) * g.C);
  max_pool_kernels[ctx.isa].backward<T>()(dx, dy, x, scratch, g, relu, c);
}

template <typename T>
void max_pool2d_backward_argmax(T* dx, const T* dy, const uint8_t* argmax, const Conv2dGeom& g,
                                bool relu, const Context& ctx) {
  const Context c = sized(g, ctx);
  ArenaScope scope(c.arena);
  T* scratch = c.arena->alloc<T>(int64_t(c.nthreads) * g.OW * g.C);  // a row of codes each
  max_pool_kernels[ctx.isa].backward_argmax<T>()(dx, dy, argmax, scratch, g, relu, c);
}

template void max_pool2d_forward<float>(float*, uint8_t*, const float*, const Conv2dGeom&,
                                        const Context&);
template void max_pool2d_forward<double>(double*, uint8_t*, const double*, const Conv2dGeom&,
                                         const Context&);
template void max_pool2d_backward<float>(float*, const float*, const float*, const Conv2dGeom&,
                                         bool, const Context&);
template void max_pool2d_backward<double>(double*, const double*, const double*,
                                          const Conv2dGeom&, bool, const Context&);
template void max_pool2d_backward_argmax<float>(float*, const float*, const uint8_t*,
                                                const Conv2dGeom&, bool, const Context&);
template void max_pool2d_backward_argmax<double>(double*, const double*, const uint8_t*,
                                                 const Conv2dGeom&, bool, const Context&);

}  // namespace fastdl::cpu
