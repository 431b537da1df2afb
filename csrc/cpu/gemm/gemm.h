// General matrix multiply with a fused epilogue, the engine under Dense,
// convolution and the recurrent layers.
//
//   C(m,n) = act(alpha * A(m,k) . B(k,n) + beta * C(m,n) + bias(n))
//
// C is overwritten; beta == 0 ignores what C held (even NaN). Every matrix is
// given by a pointer and element strides (row stride rs, column stride cs), so a
// transposed operand is just the same pointer with its strides swapped and any
// strided view is read in place by the packing routines.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

enum class Activation : int { identity = 0, relu = 1 };

template <typename T>
struct GemmEpilogue {
  const T* bias = nullptr;              // (n,) added to every row, or null
  Activation act = Activation::identity;
};

// Blocked, packed, threaded driver (BLIS style); picks micro-kernels by ctx.isa.
template <typename T>
void gemm(T* c /* (m,n) strides rs_c, cs_c */, int64_t rs_c, int64_t cs_c,
          const T* a /* (m,k) strides rs_a, cs_a */, int64_t rs_a, int64_t cs_a,
          const T* b /* (k,n) strides rs_b, cs_b */, int64_t rs_b, int64_t cs_b,
          int64_t m, int64_t n, int64_t k, T alpha, T beta,
          const GemmEpilogue<T>& ep, const Context& ctx);

// Naive triple loop with the same contract: the specification, and the oracle.
template <typename T>
void gemm_ref(T* c /* (m,n) */, int64_t rs_c, int64_t cs_c,
              const T* a /* (m,k) */, int64_t rs_a, int64_t cs_a,
              const T* b /* (k,n) */, int64_t rs_b, int64_t cs_b,
              int64_t m, int64_t n, int64_t k, T alpha, T beta,
              const GemmEpilogue<T>& ep);

}  // namespace fastdl::cpu
