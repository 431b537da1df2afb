// Helpers shared by the CPU recurrent kernels (simple_rnn, lstm, gru).
//
// Threading: batch rows of a recurrence are independent, so the kernels give
// each thread a contiguous slice of the batch and let it run every timestep
// of its slice on its own: no synchronisation between steps, and the per-step
// GEMMs run single-threaded on (rows/threads x G*U) blocks. When the batch is
// too small to split (fewer than kMinRowsPerThread rows per thread), a single
// slice runs and the GEMMs thread internally instead.
//
// Measured (2 threads, N=64 T=28 and N=32 T=100, fwd+bwd, on a busy 2-core
// machine): the batch split ran 2-3x faster (median) than threading inside
// each step's GEMM, whose fork/join per step stalls whenever one thread is
// descheduled. The recurrent weights are packed once, before the slices
// start, and every thread reads the same packed copy.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/runtime/context.h"
#include "cpu/gemm/gemm.h"
#include "cpu/runtime/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::rnn_detail {

constexpr int64_t kMinRowsPerThread = 4;

// Runs body(n0, n1, ctx1) over slices [n0, n1) covering [0, N); never with an
// empty slice (nothing runs when N = 0). With several threads each slice runs
// on its own OpenMP thread with a single-threaded Context and its own arena
// (thread 0 keeps ctx.arena); with one thread (or fewer than kParallelMinMacs
// multiply-adds in all, runtime/threading.h) there is no parallel region.
template <typename Body>
void for_batch_slices(int64_t N, double macs, const Context& ctx, Body&& body) {
  int64_t nt = std::min<int64_t>(threads_for(macs, kParallelMinMacs, ctx.nthreads),
                                 N / kMinRowsPerThread);
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(int(nt))
    {
      const int64_t tid = omp_get_thread_num(), team = omp_get_num_threads();
      Arena local;
      Context c1;
      c1.isa = ctx.isa;
      c1.nthreads = 1;
      c1.arena = tid == 0 ? ctx.arena : &local;
      body(N * tid / team, N * (tid + 1) / team, c1);
    }
    return;
  }
#endif
  if (N > 0) body(int64_t(0), N, ctx);  // one slice; its GEMMs may still use ctx.nthreads
}

// A (nb,U) block of states with its row stride, e.g. h_{t-1} of one slice.
template <typename T>
struct StateRows {
  const T* p;
  int64_t rs;
};

// h_{t-1} of the slice starting at batch row n0: h0 (row stride U) at t = 0,
// else step t-1 of the slice's hs_s (N,L,U) (row stride L*U).
template <typename T>
StateRows<T> prev_state(const T* h0 /* (N,U) */, const T* hs_s /* (nb,L,U) */, int64_t n0,
                        int64_t t, int64_t L, int64_t U) {
  if (t == 0) return {h0 + n0 * U, U};
  return {hs_s + (t - 1) * U, L * U};
}

// The loss's gradient for step t of the slice starting at n0: dhs is (N,L,U)
// when dhs_all_steps, else (N,U) for the last step only ({nullptr, 0} at the
// other steps).
template <typename T>
StateRows<T> step_dhs(const T* dhs, bool dhs_all_steps, int64_t n0, int64_t t, int64_t L,
                      int64_t U) {
  if (dhs_all_steps) return {dhs + n0 * L * U + t * U, L * U};
  if (t == L - 1) return {dhs + n0 * U, U};
  return {nullptr, 0};
}

// out (rows,G) row stride rs_out = x (rows,I) kernel (I,G) + bias: the input
// side of every step of a slice in one GEMM. Overwrites out.
template <typename T>
void input_projection(T* out, int64_t rs_out, const T* x /* (rows,I) */,
                      const T* kernel /* (I,G) */, const T* bias /* (G) */, int64_t rows,
                      int64_t I, int64_t G, const Context& ctx) {
  GemmEpilogue<T> ep;
  ep.bias = bias;
  gemm<T>(out, rs_out, 1, x, I, 1, kernel, G, 1, rows, G, I, T(1), T(0), ep, ctx);
}

// dx (rows,I) = dg (rows,G) kernel^T: the input gradient of every step of a
// slice in one GEMM. Overwrites dx.
template <typename T>
void input_gradient(T* dx /* (rows,I) */, const T* dg /* (rows,G) */,
                    const T* kernel /* (I,G) */, int64_t rows, int64_t I, int64_t G, const Context& ctx) {
  gemm<T>(dx, I, 1, dg, G, 1, kernel, 1, G, rows, I, G, T(1), T(0), GemmEpilogue<T>(), ctx);
}

// dkernel (I,G) = x^T dgx and drecurrent (U,G) = hprev^T dgh over all rows =
// N*L rows (zeros when there are none), threaded inside gemm. Overwrites both.
template <typename T>
void weight_gradients(T* dkernel /* (I,G) */, T* drecurrent /* (U,G) */,
                      const T* x /* (rows,I) */, const T* hprev /* (rows,U) */,
                      const T* dgx /* (rows,G) */, const T* dgh /* (rows,G) */, int64_t rows,
                      int64_t I, int64_t U, int64_t G, const Context& ctx) {
  if (rows == 0) {  // empty batch: nothing to sum
    std::fill(dkernel, dkernel + I * G, T(0));
    std::fill(drecurrent, drecurrent + U * G, T(0));
    return;
  }
  const GemmEpilogue<T> none;
  gemm<T>(dkernel, G, 1, x, 1, I, dgx, G, 1, I, G, rows, T(1), T(0), none, ctx);
  gemm<T>(drecurrent, G, 1, hprev, 1, U, dgh, G, 1, U, G, rows, T(1), T(0), none, ctx);
}

// The weights every step multiplies by, packed once for the whole sequence
// (gemm_pack_b) into scratch from ctx.arena: recurrent (k,n) = (U,G) in
// forward (transposed = false), recurrent^T (G,U) in backward (transposed =
// true, read from the same (U,G) array). Packing per step cost ~10% of an
// LSTM(128) at batch 64; reading them in place instead (4 KiB row stride for
// U = 256) kept too little of each column panel in L1.
template <typename T>
PackedB<T> pack_recurrent(const T* recurrent /* (U,G) */, int64_t U, int64_t G, bool transposed,
                          const Context& ctx) {
  const int64_t k = transposed ? G : U, n = transposed ? U : G;
  T* p = ctx.arena->alloc<T>(size_t(gemm_packed_b_size<T>(k, n, ctx.isa)));
  if (transposed) return gemm_pack_b<T>(p, recurrent, 1, G, k, n, ctx.isa);
  return gemm_pack_b<T>(p, recurrent, G, 1, k, n, ctx.isa);
}

// [kernel; recurrent] (I+U,G) packed once (gemm_pack_b_rows, from the two
// arrays) into scratch from ctx.arena: the right operand of a forward step that
// multiplies the stacked [x_t, h_{t-1}] (stack_step), input and recurrent sides
// in one product.
template <typename T>
PackedB<T> pack_stacked(const T* kernel /* (I,G) */, const T* recurrent /* (U,G) */, int64_t I,
                        int64_t U, int64_t G, const Context& ctx) {
  T* p = ctx.arena->alloc<T>(size_t(gemm_packed_b_size<T>(I + U, G, ctx.isa)));
  gemm_pack_b_rows<T>(p, kernel, G, 0, I, I + U, G, ctx.isa);
  return gemm_pack_b_rows<T>(p, recurrent, G, I, U, I + U, G, ctx.isa);
}

// a (nb,I+U) = [x_t, h_{t-1}] for the nb batch rows of a slice: x_s is the
// slice's (nb,L,I) input, hprev its h_{t-1} rows (prev_state).
template <typename T>
void stack_step(T* a /* (nb,I+U) */, const T* x_s /* (nb,L,I) */, StateRows<T> hprev,
                int64_t nb, int64_t t, int64_t L, int64_t I, int64_t U) {
  const int64_t K = I + U;
  for (int64_t n = 0; n < nb; ++n) {
    if (I > 0) std::memcpy(a + n * K, x_s + (n * L + t) * I, sizeof(T) * I);
    std::memcpy(a + n * K + I, hprev.p + n * hprev.rs, sizeof(T) * U);
  }
}

// The per-step product C (m,n) = h (m,k) . W (k,n) + beta C, with W packed by
// pack_recurrent; h and C rows at strides rs_a, rs_c.
template <typename T>
void step_gemm(T* c /* (m,n) row stride rs_c */, int64_t rs_c, const T* a /* (m,k) */,
                      int64_t rs_a, const PackedB<T>& w /* (k,n) */, int64_t m, T beta,
                      const GemmEpilogue<T>& ep, const Context& ctx) {
  gemm_packed<T>(c, rs_c, 1, a, rs_a, 1, w, m, T(1), beta, ep, ctx);
}

// xh (N,L,W): row (n, t) = [x_t, h_{t-1}] with h_{-1} = h0, then a 1 when
// ones (W = I+U+1, else I+U), for batch rows [n0, n1): the left operand of the
// weight gradients over all N*L rows (the 1 gives the bias gradient). I may
// be 0 (x unused, may be null): the states alone, h_prev = [h0, hs[:, :L-1]].
template <typename T>
void stack_inputs(T* xh /* (N,L,W) */, const T* x /* (N,L,I) */, const T* h0 /* (N,U) */,
                  const T* hs /* (N,L,U) */, int64_t n0, int64_t n1, int64_t L, int64_t I,
                  int64_t U, bool ones) {
  const int64_t W = I + U + (ones ? 1 : 0);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t t = 0; t < L; ++t) {
      T* row = xh + (n * L + t) * W;
      if (I > 0) std::memcpy(row, x + (n * L + t) * I, sizeof(T) * I);
      const T* h = t == 0 ? h0 + n * U : hs + (n * L + t - 1) * U;
      std::memcpy(row + I, h, sizeof(T) * U);
      if (ones) row[I + U] = T(1);
    }
  }
}

// [dkernel; drecurrent; dbias] (I+U+1,G) = xh^T dg over all rows = N*L rows
// (xh from stack_inputs with ones), as one GEMM: dg is packed once, the short
// input side shares the tiles of the U side, and the bias gradient (the sum
// of dg's rows) comes out of the same pass. Through scratch from ctx.arena;
// overwrites all three (zeros when rows = 0).
template <typename T>
void stacked_weight_gradients(T* dkernel /* (I,G) */, T* drecurrent /* (U,G) */,
                              T* dbias /* (G,) */, const T* xh /* (rows,I+U+1) */,
                              const T* dg /* (rows,G) */, int64_t rows, int64_t I, int64_t U,
                              int64_t G, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  const int64_t W = I + U + 1;
  T* dw = ctx.arena->alloc<T>(size_t(W * G));  // (I+U+1,G)
  if (rows == 0)
    std::fill(dw, dw + W * G, T(0));
  else
    gemm<T>(dw, G, 1, xh, 1, W, dg, G, 1, W, G, rows, T(1), T(0), GemmEpilogue<T>(), ctx);
  std::memcpy(dkernel, dw, sizeof(T) * I * G);
  std::memcpy(drecurrent, dw + I * G, sizeof(T) * U * G);
  std::memcpy(dbias, dw + (I + U) * G, sizeof(T) * G);
}

// out[j] = sum over rows of a[r, j]; a has rows rows of width cols, row stride rs.
// Overwrites out (cols,), with zeros when rows = 0.
template <typename T>
void column_sums(T* out /* (cols,) */, const T* a /* (rows,cols) stride rs */, int64_t rows,
                 int64_t cols, int64_t rs) {
  for (int64_t j = 0; j < cols; ++j) out[j] = T(0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * rs;
    for (int64_t j = 0; j < cols; ++j) out[j] += ar[j];
  }
}

}  // namespace fastdl::cpu::rnn_detail
