// Element-wise activations, forward and backward (relu, sigmoid, tanh).
#pragma once
#include <cstdint>

#include "common/activation_math.h"
#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// y = act(x). y is overwritten; y may be x itself (in place).
template <typename T>
void activation_forward(T* y /* (n,) */, const T* x /* (n,) */, int64_t n, Act act,
                        const Context& ctx);

// dx = dy * act'(x), written through the forward output y. dx is overwritten; it may be dy.
template <typename T>
void activation_backward(T* dx /* (n,) */, const T* dy /* (n,) */, const T* y /* (n,) */,
                         int64_t n, Act act, const Context& ctx);

}  // namespace fastdl::cpu
