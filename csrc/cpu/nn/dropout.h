// Inverted dropout with a counter-based mask: element i is kept when
// uniform01(seed, i) >= rate, so the mask needs no storage (backward recomputes
// it) and is the same for any thread count.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

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

// The mask pass both use (dropout_kernels.cpp, one build per capability level):
// y = x * keep(i) / (1 - rate) on nthreads threads (1: no parallel region).
struct DropoutKernels {
  template <typename T>
  using Mask = void (*)(T* y, const T* x, int64_t n, double rate, uint64_t seed, int nthreads);
  Mask<float> mask_f32;
  Mask<double> mask_f64;
  template <typename T>
  Mask<T> mask() const {
    if constexpr (sizeof(T) == sizeof(float)) return mask_f32; else return mask_f64;
  }
};
inline DispatchTable<DropoutKernels> dropout_kernels;

}  // namespace fastdl::cpu
