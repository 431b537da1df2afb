// Inverted dropout with a counter-based mask: element i is kept when
// uniform01(seed, i) >= rate, so the mask needs no storage (backward recomputes
// it) and is the same for any thread count.
#pragma once
#include <cstdint>

#include "cpu/context.h"

namespace fastdl::cpu {

// y = x * keep(i) / (1 - rate). y is overwritten; it may be x.
template <typename T>
void dropout_forward(T* y /* (n,) */, const T* x /* (n,) */, int64_t n, double rate,
                     uint64_t seed, const Context& ctx);

// dx = dy * keep(i) / (1 - rate), the same mask as the forward call with this seed.
// dx is overwritten; it may be dy.
template <typename T>
void dropout_backward(T* dx /* (n,) */, const T* dy /* (n,) */, int64_t n, double rate,
                      uint64_t seed, const Context& ctx);

}  // namespace fastdl::cpu
