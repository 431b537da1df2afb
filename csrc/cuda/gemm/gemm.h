// GPU general matrix multiply with a fused epilogue, the twin of cpu/gemm.h:
//
//   C(m,n) = act(alpha * A(m,k) . B(k,n) + beta * C(m,n) + bias(n))
//
// C is overwritten; beta == 0 ignores what C held (even NaN). Every matrix is a
// device pointer with element strides (row stride rs, column stride cs), so a
// transposed operand is the same pointer with its strides swapped. C must not
// overlap A, B or bias. Launched on `stream`; returns the launch error, if any.
//
// float runs a shared-memory tiled kernel (128x128 block tiles, 8x8 outputs per
// thread; 128x64 when n <= 64, 64x64 for small outputs; warp-tiled, two shared-
// memory stages, 16-byte vector loads where the layout allows); with tf32 = true
// on sm_80+ it runs a tensor-core (wmma TF32) kernel instead. double runs the
// same tiled kernel with 64x64 tiles and 4x4 per thread.
//
// Split-K: an output of few tiles over a long k (a weight gradient, (K, F) summed
// over every pixel of a batch) would leave most multiprocessors idle, each block
// walking all of k. Given a workspace of at least gemm_workspace_elems(m, n, k)
// elements (0 when the shape gains nothing from it), gemm cuts k into slices,
// writes each slice's product into the workspace and sums them in a second pass,
// in slice order, so the result is the same on every run (not the same bits as
// the unsplit product). Without a workspace, or with too small a one, it does
// not split.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace fastdl::cuda {

enum class Activation : int { identity = 0, relu = 1 };

template <typename T>
struct GemmEpilogue {
  const T* bias = nullptr;              // (n,) added to every row, or null
  Activation act = Activation::identity;
};

template <typename T>
cudaError_t gemm(T* c /* (m,n) strides rs_c, cs_c */, int64_t rs_c, int64_t cs_c,
                 const T* a /* (m,k) strides rs_a, cs_a */, int64_t rs_a, int64_t cs_a,
                 const T* b /* (k,n) strides rs_b, cs_b */, int64_t rs_b, int64_t cs_b,
                 int64_t m, int64_t n, int64_t k, T alpha, T beta, const GemmEpilogue<T>& ep,
                 bool tf32, cudaStream_t stream, T* work /* (work_elems,) or null */ = nullptr,
                 int64_t work_elems = 0);

// Workspace elements for split-K on the current device (0: gemm will not split).
int64_t gemm_workspace_elems(int64_t m, int64_t n, int64_t k);

// One thread per output, a plain loop over k: the specification and test oracle.
template <typename T>
cudaError_t gemm_ref(T* c /* (m,n) */, int64_t rs_c, int64_t cs_c,
                     const T* a /* (m,k) */, int64_t rs_a, int64_t cs_a,
                     const T* b /* (k,n) */, int64_t rs_b, int64_t cs_b,
                     int64_t m, int64_t n, int64_t k, T alpha, T beta,
                     const GemmEpilogue<T>& ep, cudaStream_t stream);

// Convenience for row-major contiguous operands: C(m,n) = op(A) op(B) (+ beta C).
// A is (m,k), or (k,m) when trans_a; B is (k,n), or (n,k) when trans_b.
template <typename T>
cudaError_t gemm_rm(T* c, const T* a, bool trans_a, const T* b, bool trans_b, int64_t m,
                    int64_t n, int64_t k, T beta, const GemmEpilogue<T>& ep, bool tf32,
                    cudaStream_t stream, T* work = nullptr, int64_t work_elems = 0) {
  int64_t rs_a = trans_a ? 1 : k, cs_a = trans_a ? m : 1;
  int64_t rs_b = trans_b ? 1 : n, cs_b = trans_b ? k : 1;
  return gemm<T>(c, n, 1, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, T(1), beta, ep, tf32, stream,
                 work, work_elems);
}

}  // namespace fastdl::cuda
