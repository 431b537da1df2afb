// Global average pooling, channels-last: x (N,H,W,C) -> y (N,C), the mean
// over all H*W pixels of each image and channel (GlobalAveragePooling2D).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// y is overwritten.
template <typename T>
void global_avg_pool2d_forward(T* y /* (N,C) */, const T* x /* (N,HW,C) */, int64_t N,
                               int64_t HW, int64_t C, const Context& ctx);

// dx is overwritten with dy / HW at every pixel.
template <typename T>
void global_avg_pool2d_backward(T* dx /* (N,HW,C) */, const T* dy /* (N,C) */, int64_t N,
                                int64_t HW, int64_t C, const Context& ctx);

}  // namespace fastdl::cpu
