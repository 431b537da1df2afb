// 2-D max pooling, channels-last: x (N,H,W,C) -> y (N,OH,OW,C). The geometry
// uses Conv2dGeom with the pool window as (KH,KW), no dilation, F unused.
// Padding never wins: a window's maximum is taken over its taps inside x
// (the binding guarantees every window has at least one).
#pragma once
#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// y is overwritten.
template <typename T>
void max_pool2d_forward(T* y /* (N,OH,OW,C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
                        const Context& ctx);

// dx is overwritten: each dy goes to the first maximum of its window (row-major
// tap order, as TensorFlow breaks ties); overlapping windows accumulate. The
// argmax is recomputed from x rather than saved by the forward pass.
// relu: x is the output of a ReLU and dx becomes the gradient of the ReLU's
// input, dx * (x > 0), in the same pass (a window whose maximum is 0 passes nothing).
template <typename T>
void max_pool2d_backward(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                         const T* x /* (N,H,W,C) */, const Conv2dGeom& g, bool relu,
                         const Context& ctx);

// The kernels behind them (max_pool2d_kernels.cpp, one build per capability
// level). scratch: ctx.nthreads * C values (the kernels allocate nothing).
struct MaxPoolKernels {
  template <typename T>
  using Forward = void (*)(T* y, const T* x, const Conv2dGeom& g, const Context& ctx);
  template <typename T>
  using Backward = void (*)(T* dx, const T* dy, const T* x, T* scratch, const Conv2dGeom& g,
                            bool relu, const Context& ctx);
  Forward<float> forward_f32;
  Forward<double> forward_f64;
  Backward<float> backward_f32;
  Backward<double> backward_f64;

  template <typename T>
  Forward<T> forward() const {
    if constexpr (sizeof(T) == sizeof(float)) return forward_f32; else return forward_f64;
  }
  template <typename T>
  Backward<T> backward() const {
    if constexpr (sizeof(T) == sizeof(float)) return backward_f32; else return backward_f64;
  }
};
inline DispatchTable<MaxPoolKernels> max_pool_kernels;

}  // namespace fastdl::cpu
