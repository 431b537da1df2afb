// 2-D max pooling, channels-last: x (N,H,W,C) -> y (N,OH,OW,C). The geometry
// uses Conv2dGeom with the pool window as (KH,KW), no dilation, F unused.
// Padding never wins: a window's maximum is taken over its taps inside x
// (the binding guarantees every window has at least one).
#pragma once
#include "common/conv_geometry.h"
#include "cpu/context.h"

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

}  // namespace fastdl::cpu
