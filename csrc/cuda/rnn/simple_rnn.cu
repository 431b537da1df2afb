// SimpleRNN over a whole sequence, forward and backward (BPTT). See rnn.h.
//
// Forward:   hs = x K + b                       (one GEMM for all steps)
//            per step: hs_t += h_{t-1} RK;  hs_t = act(hs_t)
// Backward:  per step, last to first:
//              dz_t = (dhs_t + dh) * act'(hs_t);   dh = dz_t RK^T
//            then dx = dz K^T, dK = x^T dz, dRK = hprev^T dz, db = sum dz, dh0 = dh.
#include "common/rnn_cell.h"
#include "cuda/gemm/gemm.h"
#include "cuda/nn/nn.h"
#include "cuda/rnn/rnn.h"
#include "cuda/rnn/rnn_util.cuh"

namespace fastdl::cuda {
namespace {

using namespace rnn_detail;

// hs(n,t,:) = act(hs(n,t,:)) in place, with the CPU's per-element functions
// (common/rnn_cell.h for tanh, common/activation_math.h for relu).
template <typename T>
__global__ void rnn_activate_kernel(T* hs, int64_t N, int64_t Tn, int64_t U, int64_t t, Act act) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    T* p = hs + (n * Tn + t) * U + u;
    *p = act == Act::tanh ? rnn::tanh_act(*p) : act_forward<Act::relu>(*p);
  }
}

// dz(n,t,:) = (upstream + dh(n,:)) * act'(hs(n,t,:))
template <typename T>
__global__ void rnn_step_backward_kernel(T* dz, const T* dh, const T* dhs, bool seq, const T* hs,
                                         int64_t N, int64_t Tn, int64_t U, int64_t t,
                                         Act act) {
  FASTDL_GRID_LOOP(idx, N * U) {
    int64_t n = idx / U, u = idx % U;
    int64_t e = (n * Tn + t) * U + u;
    T g = dh_upstream(dhs, seq, n, t, u, Tn, U) + dh[idx];
    dz[e] = g * (act == Act::tanh ? rnn::tanh_grad_from_out(hs[e]) : rnn::relu_grad_from_out(hs[e]));
  }
}

}  // namespace

template <typename T>
cudaError_t simple_rnn(T* hs, const T* x, const T* h0, const T* kernel, const T* rk,
                       const T* bias, int64_t N, int64_t Tn, int64_t I, int64_t U, Act act,
                       bool tf32, cudaStream_t stream) {
  if (N * Tn * U <= 0) return cudaSuccess;
  cudaError_t e;
  if ((e = gemm_rm<T>(hs, x, false, kernel, false, N * Tn, U, I, T(0), {bias, Activation::identity},
                      tf32, stream)))
    return e;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t == 0 ? h0 : hs + (t - 1) * U;
    const int64_t rs_hp = t == 0 ? U : Tn * U;
    if ((e = gemm<T>(hs + t * U, Tn * U, 1, hp, rs_hp, 1, rk, U, 1, N, U, U, T(1), T(1), {}, tf32,
                     stream)))
      return e;
    rnn_activate_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(hs, N, Tn, U, t, act);
    if ((e = launch_status())) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t simple_rnn_backward(T* dx, T* dh0, T* dk, T* drk, T* db, const T* dhs, bool dhs_seq,
                                const T* x, const T* h0, const T* kernel, const T* rk,
                                const T* hs, T* dz, T* hprev, T* partial, T* work,
                                int64_t work_elems, int64_t N, int64_t Tn, int64_t I, int64_t U,
                                Act act, bool tf32, cudaStream_t stream) {
  cudaError_t e;
  if ((e = zero(dh0, N * U, sizeof(T), stream))) return e;
  for (int64_t t = Tn - 1; t >= 0 && N * U > 0; --t) {
    rnn_step_backward_kernel<T><<<blocks_for(N * U), kThreads, 0, stream>>>(dz, dh0, dhs, dhs_seq,
                                                                           hs, N, Tn, U, t, act);
    if ((e = launch_status())) return e;
    // dh0 = dz_t RK^T (the gradient reaching h_{t-1}); RK^T: rs 1, cs U.
    if ((e = gemm<T>(dh0, U, 1, dz + t * U, Tn * U, 1, rk, 1, U, N, U, U, T(1), T(0), {}, tf32,
                     stream)))
      return e;
  }
  const int64_t rows = N * Tn;
  GemmEpilogue<T> none{};
  if (dx && (e = gemm_rm<T>(dx, dz, false, kernel, true, rows, I, U, T(0), none, tf32, stream))) return e;
  if ((e = gemm_rm<T>(dk, x, true, dz, false, I, U, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  if ((e = shift_hidden<T>(hprev, h0, hs, N, Tn, U, stream))) return e;
  if ((e = gemm_rm<T>(drk, hprev, true, dz, false, U, U, rows, T(0), none, tf32, stream, work,
                      work_elems)))
    return e;
  return sum_rows<T>(db, dz, partial, rows, U, false, stream);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t simple_rnn<T>(T*, const T*, const T*, const T*, const T*, const T*,       \
                                     int64_t, int64_t, int64_t, int64_t, Act, bool,          \
                                     cudaStream_t);                                              \
  template cudaError_t simple_rnn_backward<T>(T*, T*, T*, T*, T*, const T*, bool, const T*,      \
                                              const T*, const T*, const T*, const T*, T*, T*, T*, \
                                              T*, int64_t, int64_t, int64_t, int64_t, int64_t, Act, \
                                              bool,                                           \
                                              cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
