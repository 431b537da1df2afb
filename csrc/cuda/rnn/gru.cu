// GRU (Keras reset_after=True) over a whole sequence, forward and backward.
// See rnn.h; the cell math is common/rnn_cell.h, shared with the CPU kernels.
//
// Forward:   xz = x K + b[0]                      (N,T,3U), one GEMM for all steps
//            per step: rec = h_{t-1} RK + b[1]    (N,3U)
//                      gate kernel: z, r, hh, h_t (and the cache z, r, hh, rh)
// Backward:  per step, last to first: gate kernel -> dzx_t (x part), dzr_t
//            (recurrent part) and dh = direct part; dh += dzr_t RK^T
//            then dx = dzx K^T, dK = x^T dzx, dRK = hprev^T dzr,
//            db[0] = sum dzx, db[1] = sum dzr.
#include "common/rnn_cell.h"
#include "cuda/gemm/gemm.h"
#include "cuda/nn/nn.h"
#include "cuda/rnn/rnn.h"
#include "cuda/rnn/rnn_util.cuh"

namespace fastdl::cuda {
namespace {

using namespace rnn_detail;

template <typename T>
__global__ void gru_step_kernel(T* hs, T* cache, const T* xz, const T* rec, const T* h0,
                                int64_t N, int64_t Tn, int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    const T* zx = xz + (n * Tn + t) * 3 * U + u;
    const T* zr = rec + n * 3 * U + u;
    const T h_prev = t == 0 ? h0[idx] : hs[(n * Tn + t - 1) * U + u];
    T z, r, hh, h;
    rnn::gru_cell_forward(zx[0], zx[U], zx[2 * U], zr[0], zr[U], zr[2 * U], h_prev, z, r, hh, h);
    hs[(n * Tn + t) * U + u] = h;
    if (cache) {
      T* c = cache + (n * Tn + t) * 4 * U + u;
      c[0] = z; c[U] = r; c[2 * U] = hh; c[3 * U] = zr[2 * U];
    }
  }
}

// dh (N,U): in, the recurrent gradient reaching h_t; out, the direct part of
// the gradient reaching h_{t-1} (the caller adds dzr_t RK^T).
template <typename T>
__global__ void gru_step_backward_kernel(T* dzx, T* dzr, T* dh, const T* dhs, bool seq,
                                         const T* cache, const T* hs, const T* h0, int64_t N,
                                         int64_t Tn, int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    const T* c = cache + (n * Tn + t) * 4 * U + u;
    const T h_prev = t == 0 ? h0[idx] : hs[(n * Tn + t - 1) * U + u];
    const T dh_total = dh_upstream(dhs, seq, n, t, u, Tn, U) + dh[idx];
    T dxz, dxr, dxh, drh, dh_direct;
    rnn::gru_cell_backward(c[0], c[U], c[2 * U], c[3 * U], h_prev, dh_total, dxz, dxr, dxh, drh,
                           dh_direct);
    dh[idx] = dh_direct;
    const int64_t g3 = (n * Tn + t) * 3 * U + u;
    dzx[g3] = dxz; dzx[g3 + U] = dxr; dzx[g3 + 2 * U] = dxh;
    dzr[g3] = dxz; dzr[g3 + U] = dxr; dzr[g3 + 2 * U] = drh;
  }
}

}  // namespace

template <typename T>
cudaError_t gru(T* hs, T* cache, const T* x, const T* h0, const T* kernel, const T* rk,
                const T* bias, T* xz, T* rec, int64_t N, int64_t Tn, int64_t I, int64_t U,
                bool tf32, cudaStream_t stream) {
  if (N * Tn * U <= 0) return cudaSuccess;
  const int64_t G = 3 * U;
  const T* b_in = bias;
  const T* b_rec = bias ? bias + G : nullptr;
  cudaError_t e;
  if ((e = gemm_rm<T>(xz, x, false, kernel, false, N * Tn, G, I, T(0),
                      {b_in, Activation::identity}, tf32, stream)))
    return e;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t == 0 ? h0 : hs + (t - 1) * U;
    const int64_t rs_hp = t == 0 ? U : Tn * U;
    if ((e = gemm<T>(rec, G, 1, hp, rs_hp, 1, rk, G, 1, N, G, U, T(1), T(0),
                     {b_rec, Activation::identity}, tf32, stream)))
      return e;
    gru_step_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(hs, cache, xz, rec, h0, N, Tn,
                                                                  U, t);
    if ((e = launch_status())) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t gru_backward(T* dx, T* dh0, T* dk, T* drk, T* db, const T* dhs, bool dhs_seq,
                         const T* x, const T* h0, const T* kernel, const T* rk, const T* hs,
                         const T* cache, T* dzx, T* dzr, T* hprev, T* partial, T* work,
                         int64_t work_elems, int64_t N, int64_t Tn, int64_t I, int64_t U,
                         bool tf32, cudaStream_t stream) {
  const int64_t G = 3 * U;
  cudaError_t e;
  if ((e = zero(dh0, N * U, sizeof(T), stream))) return e;
  for (int64_t t = Tn - 1; t >= 0 && N * U > 0; --t) {
    gru_step_backward_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(
        dzx, dzr, dh0, dhs, dhs_seq, cache, hs, h0, N, Tn, U, t);
    if ((e = launch_status())) return e;
    // dh0 += dzr_t RK^T: RK is (U, 3U), so RK^T is read with rs 1, cs 3U.
    if ((e = gemm<T>(dh0, U, 1, dzr + t * G, Tn * G, 1, rk, 1, G, N, U, G, T(1), T(1), {}, tf32,
                     stream)))
      return e;
  }
  const int64_t rows = N * Tn;
  GemmEpilogue<T> none{};
  if (dx && (e = gemm_rm<T>(dx, dzx, false, kernel, true, rows, I, G, T(0), none, tf32, stream))) return e;
  if ((e = gemm_rm<T>(dk, x, true, dzx, false, I, G, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  if ((e = shift_hidden<T>(hprev, h0, hs, N, Tn, U, stream))) return e;
  if ((e = gemm_rm<T>(drk, hprev, true, dzr, false, U, G, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  if ((e = sum_rows<T>(db, dzx, partial, rows, G, false, stream))) return e;
  return sum_rows<T>(db + G, dzr, partial, rows, G, false, stream);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t gru<T>(T*, T*, const T*, const T*, const T*, const T*, const T*, T*, T*,  \
                              int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t);           \
  template cudaError_t gru_backward<T>(T*, T*, T*, T*, T*, const T*, bool, const T*, const T*,   \
                                       const T*, const T*, const T*, const T*, T*, T*, T*, T*,   \
                                       T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool,    \
                                       cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
