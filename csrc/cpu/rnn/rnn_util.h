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
// descheduled; its only cost is that each thread packs the recurrent weights
// for its own GEMMs.
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

// The per-step product C (m,n) = h (m,k) . W (k,n) + beta C, with W row-major
// (the recurrent weights, or their transpose in backward), called in column
// chunks whose slice of W is at most kStepChunkBytes. A step reads its weights
// once, for a few batch rows, so cpu::gemm reads slices this size in place
// rather than packing them (packing all of W every step costs ~15% for U=256).
constexpr int64_t kStepChunkBytes = 512 * 1024;

template <typename T>
void step_gemm(T* c /* (m,n) row stride rs_c */, int64_t rs_c, const T* a /* (m,k) */,
               int64_t rs_a, const T* w /* (k,n) row stride rs_w */, int64_t rs_w, int64_t m,
               int64_t n, int64_t k, T beta, const GemmEpilogue<T>& ep, const Context& ctx) {
  int64_t chunk = std::max<int64_t>(kStepChunkBytes / (int64_t(sizeof(T)) * std::max<int64_t>(k, 1)), 1);
  const int64_t nchunks = (n + chunk - 1) / chunk;
  chunk = ((n + nchunks - 1) / nchunks + 31) / 32 * 32;  // equal chunks, whole 32-wide panels
  for (int64_t j0 = 0; j0 < n; j0 += chunk) {
    GemmEpilogue<T> e = ep;
    if (e.bias) e.bias += j0;
    gemm<T>(c + j0, rs_c, 1, a, rs_a, 1, w + j0, rs_w, 1, m, std::min(chunk, n - j0), k, T(1),
            beta, e, ctx);
  }
}

// h_prev (N,L,U) = [h0, hs[:, :L-1]] row by row: the left operand of
// drecurrent = h_prev^T . dgates over all N*L rows, for rows [n0, n1).
template <typename T>
void shift_states(T* hprev /* (N,L,U) */, const T* h0 /* (N,U) */, const T* hs /* (N,L,U) */,
                  int64_t n0, int64_t n1, int64_t L, int64_t U) {
  for (int64_t n = n0; n < n1; ++n) {
    std::memcpy(hprev + n * L * U, h0 + n * U, sizeof(T) * U);
    std::memcpy(hprev + n * L * U + U, hs + n * L * U, sizeof(T) * (L - 1) * U);
  }
}

// dst (cols,rows) = src (rows,cols) transposed, both row-major. The backward
// passes multiply by recurrent^T every step; transposing it once up front lets
// the GEMM pack it with row copies instead of a strided gather each step.
template <typename T>
void transpose(T* dst /* (cols,rows) */, const T* src /* (rows,cols) */, int64_t rows,
               int64_t cols) {
  constexpr int64_t B = 32;  // tiles keep both sides in cache
  for (int64_t i0 = 0; i0 < rows; i0 += B)
    for (int64_t j0 = 0; j0 < cols; j0 += B)
      for (int64_t i = i0; i < std::min(rows, i0 + B); ++i)
        for (int64_t j = j0; j < std::min(cols, j0 + B); ++j) dst[j * rows + i] = src[i * cols + j];
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
