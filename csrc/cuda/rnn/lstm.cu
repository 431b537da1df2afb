// LSTM over a whole sequence, forward and backward (BPTT). See rnn.h.
//
// Forward:   z = x K + b           into the cache (N,T,5U), one GEMM for all steps
//            per step: z_t += h_{t-1} RK;  gate kernel: i,f,g,o = act(z_t) (kept in
//            place), c_t = f c_{t-1} + i g (cache columns 4U..5U), h_t = o tanh(c_t)
// The cell math is common/rnn_cell.h, shared with the CPU kernels, and so is
// the cache layout: per step the activated gates [i f g o] then c.
// Backward:  per step, last to first: gate kernel -> dz_t and dc; dh = dz_t RK^T
//            then dx = dz K^T, dK = x^T dz, dRK = hprev^T dz, db = sum dz.
#include "common/rnn_cell.h"
#include "cuda/gemm/gemm.h"
#include "cuda/nn/nn.h"
#include "cuda/rnn/rnn.h"
#include "cuda/rnn/rnn_util.cuh"

namespace fastdl::cuda {
namespace {

using namespace rnn_detail;

template <typename T>
__global__ void lstm_step_kernel(T* hs, T* cache, T* c_last, const T* c0, int64_t N, int64_t Tn,
                                 int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    T* z = cache + (n * Tn + t) * 5 * U + u;  // z[0], z[U], z[2U], z[3U]: i, f, g, o; z[4U]: c
    const T c_prev = t == 0 ? c0[idx] : z[4 * U - 5 * U];
    T c, h;
    rnn::lstm_cell_forward(z[0], z[U], z[2 * U], z[3 * U], c_prev, c, h);
    z[4 * U] = c;
    hs[(n * Tn + t) * U + u] = h;
    if (c_last) c_last[idx] = c;
  }
}

// dc (N,U) carries the gradient of c between steps (in: from step t+1, out: to
// step t-1); dh (N,U) holds the recurrent part of the gradient reaching h_t.
template <typename T>
__global__ void lstm_step_backward_kernel(T* dz, T* dc, const T* dh, const T* dhs, bool seq,
                                          const T* cache, const T* c0, int64_t N, int64_t Tn,
                                          int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    const T* a = cache + (n * Tn + t) * 5 * U + u;
    const int64_t g4 = (n * Tn + t) * 4 * U + u;
    const T c_prev = t == 0 ? c0[idx] : a[4 * U - 5 * U];
    const T dh_total = dh_upstream(dhs, seq, n, t, u, Tn, U) + dh[idx];
    T dci = dc[idx], dzi, dzf, dzg, dzo;
    rnn::lstm_cell_backward(a[0], a[U], a[2 * U], a[3 * U], a[4 * U], c_prev, dh_total, dci, dzi,
                            dzf, dzg, dzo);
    dc[idx] = dci;
    dz[g4] = dzi; dz[g4 + U] = dzf; dz[g4 + 2 * U] = dzg; dz[g4 + 3 * U] = dzo;
  }
}

}  // namespace

template <typename T>
cudaError_t lstm(T* hs, T* c_last, T* cache, const T* x, const T* h0, const T* c0,
                 const T* kernel, const T* rk, const T* bias, int64_t N, int64_t Tn, int64_t I,
                 int64_t U, bool tf32, cudaStream_t stream) {
  if (N * U <= 0) return cudaSuccess;
  if (Tn == 0)
    return cudaMemcpyAsync(c_last, c0, size_t(N * U) * sizeof(T), cudaMemcpyDeviceToDevice, stream);
  const int64_t G = 4 * U, S = 5 * U;  // gate columns, cache row length
  cudaError_t e;
  // z (N*T, 4U) = x K + b, written into the first 4U columns of every cache row.
  if ((e = gemm<T>(cache, S, 1, x, I, 1, kernel, G, 1, N * Tn, G, I, T(1), T(0),
                   {bias, Activation::identity}, tf32, stream)))
    return e;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t == 0 ? h0 : hs + (t - 1) * U;
    const int64_t rs_hp = t == 0 ? U : Tn * U;
    if ((e = gemm<T>(cache + t * S, Tn * S, 1, hp, rs_hp, 1, rk, G, 1, N, G, U, T(1), T(1), {},
                     tf32, stream)))
      return e;
    lstm_step_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(
        hs, cache, t == Tn - 1 ? c_last : nullptr, c0, N, Tn, U, t);
    if ((e = launch_status())) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t lstm_backward(T* dx, T* dh0, T* dc0, T* dk, T* drk, T* db, const T* dhs, bool dhs_seq,
                          const T* dc_last, const T* x, const T* h0, const T* c0,
                          const T* kernel, const T* rk, const T* hs, const T* cache,
                          T* dz, T* hprev, T* partial, T* work, int64_t work_elems, int64_t N,
                          int64_t Tn, int64_t I, int64_t U, bool tf32, cudaStream_t stream) {
  const int64_t G = 4 * U;
  cudaError_t e;
  if ((e = zero(dh0, N * U, sizeof(T), stream))) return e;
  if (dc_last && N * U > 0) {
    if ((e = cudaMemcpyAsync(dc0, dc_last, size_t(N * U) * sizeof(T), cudaMemcpyDeviceToDevice,
                             stream)))
      return e;
  } else if ((e = zero(dc0, N * U, sizeof(T), stream))) {
    return e;
  }
  for (int64_t t = Tn - 1; t >= 0 && N * U > 0; --t) {
    lstm_step_backward_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(
        dz, dc0, dh0, dhs, dhs_seq, cache, c0, N, Tn, U, t);
    if ((e = launch_status())) return e;
    // dh0 = dz_t RK^T: RK is (U, 4U), so RK^T is read with rs 1, cs 4U.
    if ((e = gemm<T>(dh0, U, 1, dz + t * G, Tn * G, 1, rk, 1, G, N, U, G, T(1), T(0), {}, tf32,
                     stream)))
      return e;
  }
  const int64_t rows = N * Tn;
  GemmEpilogue<T> none{};
  if (dx && (e = gemm_rm<T>(dx, dz, false, kernel, true, rows, I, G, T(0), none, tf32, stream))) return e;
  if ((e = gemm_rm<T>(dk, x, true, dz, false, I, G, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  if ((e = shift_hidden<T>(hprev, h0, hs, N, Tn, U, stream))) return e;
  if ((e = gemm_rm<T>(drk, hprev, true, dz, false, U, G, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  return sum_rows<T>(db, dz, partial, rows, G, false, stream);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t lstm<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,     \
                               const T*, int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t); \
  template cudaError_t lstm_backward<T>(T*, T*, T*, T*, T*, T*, const T*, bool, const T*,        \
                                        const T*, const T*, const T*, const T*, const T*,        \
                                        const T*, const T*, T*, T*, T*, T*, int64_t, int64_t,    \
                                        int64_t, int64_t, int64_t, bool, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
