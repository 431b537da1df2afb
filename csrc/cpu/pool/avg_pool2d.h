// 2-D average pooling, channels-last: x (N,H,W,C) -> y (N,OH,OW,C). Geometry
// as for max pooling. Padding is not counted: each window averages over its
// taps inside x only (Keras/TensorFlow semantics).
#pragma once
#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// y is overwritten.
template <typename T>
void avg_pool2d_forward(T* y /* (N,OH,OW,C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
                        const Context& ctx);

// dx is overwritten: every tap inside x of a window gets dy / (its tap count).
template <typename T>
void avg_pool2d_backward(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                         const Conv2dGeom& g, const Context& ctx);

}  // namespace fastdl::cpu
