// LSTM over a whole sequence, forward and backward (BPTT). See rnn.h.
//
// Forward:   z = x K + b                         (N,T,4U), one GEMM for all steps
//            per step: z_t += h_{t-1} RK;  gate kernel: i,f,g,o = act(z_t) (kept in
//            place as the cache), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
// Backward:  per step, last to first: gate kernel -> dz_t and dc; dh = dz_t RK^T
//            then dx = dz K^T, dK = x^T dz, dRK = hprev^T dz, db = sum dz.
#include "common/cuda_rnn_cell.h"
#include "cuda/gemm.h"
#include "cuda/nn.h"
#include "cuda/rnn.h"
#include "cuda/rnn_util.cuh"

namespace fastdl::cuda {
namespace {

using namespace rnn_detail;

template <typename T>
__global__ void lstm_step_kernel(T* hs, T* gates, T* cs, T* c_last, const T* c0, int64_t N,
                                 int64_t Tn, int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    T* z = gates + (n * Tn + t) * 4 * U + u;  // z[0], z[U], z[2U], z[3U]: i, f, g, o
    const T c_prev = t == 0 ? c0[idx] : cs[(n * Tn + t - 1) * U + u];
    hd::LstmGates<T> a = hd::lstm_gates(z[0], z[U], z[2 * U], z[3 * U]);
    z[0] = a.i; z[U] = a.f; z[2 * U] = a.g; z[3 * U] = a.o;
    T c = a.f * c_prev + a.i * a.g;
    cs[(n * Tn + t) * U + u] = c;
    hs[(n * Tn + t) * U + u] = a.o * hd::tanh_(c);
    if (c_last) c_last[idx] = c;
  }
}

// dc (N,U) carries the gradient of c between steps (in: from step t+1, out: to
// step t-1); dh (N,U) holds the recurrent part of the gradient reaching h_t.
template <typename T>
__global__ void lstm_step_backward_kernel(T* dz, T* dc, const T* dh, const T* dhs, bool seq,
                                          const T* gates, const T* cs, const T* c0, int64_t N,
                                          int64_t Tn, int64_t U, int64_t t) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    const int64_t e = (n * Tn + t) * U + u, g4 = (n * Tn + t) * 4 * U + u;
    hd::LstmGates<T> a{gates[g4], gates[g4 + U], gates[g4 + 2 * U], gates[g4 + 3 * U]};
    const T c_prev = t == 0 ? c0[idx] : cs[e - U];
    const T dh_total = dh_upstream(dhs, seq, n, t, u, Tn, U) + dh[idx];
    T dzi, dzf, dzg, dzo;
    dc[idx] = hd::lstm_cell_backward(a, cs[e], c_prev, dh_total, dc[idx], &dzi, &dzf, &dzg, &dzo);
    dz[g4] = dzi; dz[g4 + U] = dzf; dz[g4 + 2 * U] = dzg; dz[g4 + 3 * U] = dzo;
  }
}

}  // namespace

template <typename T>
cudaError_t lstm(T* hs, T* c_last, T* gates, T* cs, const T* x, const T* h0, const T* c0,
                 const T* kernel, const T* rk, const T* bias, int64_t N, int64_t Tn, int64_t I,
                 int64_t U, bool tf32, cudaStream_t stream) {
  if (N * U <= 0) return cudaSuccess;
  if (Tn == 0)
    return cudaMemcpyAsync(c_last, c0, size_t(N * U) * sizeof(T), cudaMemcpyDeviceToDevice, stream);
  const int64_t G = 4 * U;
  cudaError_t e;
  if ((e = gemm_rm<T>(gates, x, false, kernel, false, N * Tn, G, I, T(0),
                      {bias, Activation::identity}, tf32, stream)))
    return e;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t == 0 ? h0 : hs + (t - 1) * U;
    const int64_t rs_hp = t == 0 ? U : Tn * U;
    if ((e = gemm<T>(gates + t * G, Tn * G, 1, hp, rs_hp, 1, rk, G, 1, N, G, U, T(1), T(1), {},
                     tf32, stream)))
      return e;
    lstm_step_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(
        hs, gates, cs, t == Tn - 1 ? c_last : nullptr, c0, N, Tn, U, t);
    if ((e = launch_status())) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t lstm_backward(T* dx, T* dh0, T* dc0, T* dk, T* drk, T* db, const T* dhs, bool dhs_seq,
                          const T* dc_last, const T* x, const T* h0, const T* c0,
                          const T* kernel, const T* rk, const T* hs, const T* gates, const T* cs,
                          T* dz, T* hprev, T* partial, int64_t N, int64_t Tn, int64_t I, int64_t U,
                          bool tf32, cudaStream_t stream) {
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
        dz, dc0, dh0, dhs, dhs_seq, gates, cs, c0, N, Tn, U, t);
    if ((e = launch_status())) return e;
    // dh0 = dz_t RK^T: RK is (U, 4U), so RK^T is read with rs 1, cs 4U.
    if ((e = gemm<T>(dh0, U, 1, dz + t * G, Tn * G, 1, rk, 1, G, N, U, G, T(1), T(0), {}, tf32,
                     stream)))
      return e;
  }
  const int64_t rows = N * Tn;
  GemmEpilogue<T> none{};
  if ((e = gemm_rm<T>(dx, dz, false, kernel, true, rows, I, G, T(0), none, tf32, stream))) return e;
  if ((e = gemm_rm<T>(dk, x, true, dz, false, I, G, rows, T(0), none, tf32, stream))) return e;
  if ((e = shift_hidden<T>(hprev, h0, hs, N, Tn, U, stream))) return e;
  if ((e = gemm_rm<T>(drk, hprev, true, dz, false, U, G, rows, T(0), none, tf32, stream))) return e;
  return sum_rows<T>(db, dz, partial, rows, G, false, stream);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t lstm<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                               const T*, int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t); \
  template cudaError_t lstm_backward<T>(T*, T*, T*, T*, T*, T*, const T*, bool, const T*,        \
                                        const T*, const T*, const T*, const T*, const T*,        \
                                        const T*, const T*, const T*, T*, T*, T*, int64_t,       \
                                        int64_t, int64_t, int64_t, bool, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
