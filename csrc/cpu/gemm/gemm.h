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

// B packed once for many products with the same right operand (the recurrent
// weights of a whole sequence): the panels gemm would otherwise pack, or read
// in place with a large stride, at every call. Layout: k in blocks of the
// driver's depth kc; within a block, NR-wide column panels over all n columns
// (zero-padded to a multiple of NR), element (p, j) of block pc at
// p[pc * n_pad + (j / NR) * NR * kc + (p - pc) * NR + j % NR].
template <typename T>
struct PackedB {
  const T* p = nullptr;  // (k, n_pad) panels
  int64_t k = 0, n = 0;
  Isa isa = Isa::generic;  // the kernel set it was packed for
};

// Elements a PackedB of a (k,n) B needs at level isa.
template <typename T>
int64_t gemm_packed_b_size(int64_t k, int64_t n, Isa isa);

// Packs B (k,n) into dst (gemm_packed_b_size elements) for the kernels of isa.
template <typename T>
PackedB<T> gemm_pack_b(T* dst /* panels */, const T* b /* (k,n) strides rs_b, cs_b */,
                       int64_t rs_b, int64_t cs_b, int64_t k, int64_t n, Isa isa);

// Packs rows [r0, r0 + rows) of a (k,n) B, given row-major with row stride
// rs_b, into their place in dst (gemm_packed_b_size(k, n) elements), so that
// once every row is in, dst holds what gemm_pack_b packs from the whole B: a B
// stacked from several arrays (the input and recurrent weights of a recurrent
// step) without copying them together first. Returns the PackedB of the whole B.
template <typename T>
PackedB<T> gemm_pack_b_rows(T* dst /* panels */, const T* b_rows /* (rows,n) row stride rs_b */,
                            int64_t rs_b, int64_t r0, int64_t rows, int64_t k, int64_t n,
                            Isa isa);

// gemm with a prepacked B (packed for ctx.isa): same contract and, for every
// m >= 1, the same kernels and order of additions as the tiled path of gemm.
template <typename T>
void gemm_packed(T* c /* (m,n) strides rs_c, cs_c */, int64_t rs_c, int64_t cs_c,
                 const T* a /* (m,k) strides rs_a, cs_a */, int64_t rs_a, int64_t cs_a,
                 const PackedB<T>& b /* (k,n) */, int64_t m, T alpha, T beta,
                 const GemmEpilogue<T>& ep, const Context& ctx);

// Naive triple loop with the same contract: the specification, and the oracle.
template <typename T>
void gemm_ref(T* c /* (m,n) */, int64_t rs_c, int64_t cs_c,
              const T* a /* (m,k) */, int64_t rs_a, int64_t cs_a,
              const T* b /* (k,n) */, int64_t rs_b, int64_t cs_b,
              int64_t m, int64_t n, int64_t k, T alpha, T beta,
              const GemmEpilogue<T>& ep);

}  // namespace fastdl::cpu
