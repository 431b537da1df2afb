// SimpleRNN forward and backward through time (see simple_rnn.h).
//
// Forward:  per step hs_t = act([x_t, h_{t-1}] [W; R] + b): one GEMM of depth
//           I+U against the stacked weights packed once (bias and relu in its
//           epilogue) and, for tanh, one pass.
// Backward: dz_t = (dhs_t + dz_{t+1} R^T) * act'(h_t) from the last step down
//           (R^T packed once), then dx = dz W^T over all N*L rows and
//           [dW; dR; db] as one GEMM [x_t, h_{t-1}, 1]^T dz over all N*L rows.
#include "cpu/rnn/simple_rnn.h"

#include <algorithm>
#include <cstring>

#include "common/rnn_cell.h"
#include "cpu/gemm/gemm.h"
#include "cpu/rnn/rnn_rows.h"
#include "cpu/rnn/rnn_util.h"

namespace fastdl::cpu {
namespace {

using namespace rnn_detail;  // the shared plumbing in rnn_util.h

// dz *= act'(h) over one row (act' read from the output h).
template <typename T>
void grad_row(T* __restrict dz /* (U) */, const T* __restrict h /* (U) */, int64_t U,
              RnnActivation act) {
  if (act == RnnActivation::tanh) {
#pragma omp simd
    for (int64_t u = 0; u < U; ++u) dz[u] *= rnn::tanh_grad_from_out(h[u]);
  } else {
#pragma omp simd
    for (int64_t u = 0; u < U; ++u) dz[u] *= rnn::relu_grad_from_out(h[u]);
  }
}

}  // namespace

template <typename T>
void simple_rnn_forward(T* hs, const T* x, const T* h0, const T* kernel, const T* recurrent,
                        const T* bias, int64_t N, int64_t L, int64_t I, int64_t U,
                        RnnActivation act, const Context& ctx) {
  const int64_t LU = L * U;  // row stride of one timestep's (N,U) block inside hs
  const int64_t K = I + U;   // depth of a step's product
  GemmEpilogue<T> step_ep;   // bias and relu fuse into the step GEMM; tanh is a separate pass
  step_ep.bias = bias;
  step_ep.act = act == RnnActivation::relu ? Activation::relu : Activation::identity;
  ArenaScope scope(ctx.arena);
  const PackedB<T> wr = pack_stacked(kernel, recurrent, I, U, U, ctx);  // (I+U,U)
  const RnnRows<T>& pass = rnn_rows<T>(ctx.isa);  // gate math for this ISA
  const double macs = double(N * L) * double(K * U);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& c) {
    const int64_t nb = n1 - n0;
    ArenaScope slice_scope(c.arena);
    T* a = c.arena->alloc<T>(size_t(nb * K));  // (nb,I+U) [x_t, h_{t-1}] of one step
    T* hs_s = hs + n0 * LU;
    for (int64_t t = 0; t < L; ++t) {
      const StateRows<T> hprev = prev_state(h0, hs_s, n0, t, L, U);
      T* ht = hs_s + t * U;
      stack_step(a, x + n0 * L * I, hprev, nb, t, L, I, U);
      step_gemm<T>(ht, LU, a, K, wr, nb, T(0), step_ep, c);
      if (act == RnnActivation::tanh)
        for (int64_t n = 0; n < nb; ++n) pass.tanh_row(ht + n * LU, U);
    }
  });
}

template <typename T>
void simple_rnn_backward(T* dx, T* dh0, T* dkernel, T* drecurrent, T* dbias, const T* dhs,
                         bool dhs_all_steps, const T* x, const T* h0, const T* kernel,
                         const T* recurrent, const T* hs, int64_t N, int64_t L, int64_t I,
                         int64_t U, RnnActivation act, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  const int64_t LU = L * U;
  T* dz = ctx.arena->alloc<T>(N * LU);     // (N,L,U) pre-activation gradients
  T* xh = ctx.arena->alloc<T>(N * L * (I + U + 1));  // (N,L,I+U+1) [x_t, h_{t-1}, 1] per step
  const PackedB<T> rec_t = pack_recurrent(recurrent, U, U, true, ctx);  // (U,U) recurrent^T
  const GemmEpilogue<T> none;
  const double macs = double(N * L) * double((I + U) * U);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& c) {
    const int64_t nb = n1 - n0;
    T* dz_s = dz + n0 * LU;
    const T* hs_s = hs + n0 * LU;
    for (int64_t t = L - 1; t >= 0; --t) {
      T* dzt = dz_s + t * U;  // row n at dzt + n * LU
      // dz_t = (dhs_t + dz_{t+1} R^T) * act'(h_t): the loss's part first, the GEMM adds.
      const StateRows<T> dout = step_dhs(dhs, dhs_all_steps, n0, t, L, U);
      if (dout.p)
        for (int64_t n = 0; n < nb; ++n)
          std::memcpy(dzt + n * LU, dout.p + n * dout.rs, sizeof(T) * U);
      if (t < L - 1)
        step_gemm<T>(dzt, LU, dzt + U, LU, rec_t, nb, dout.p ? T(1) : T(0), none, c);
      for (int64_t n = 0; n < nb; ++n) grad_row(dzt + n * LU, hs_s + t * U + n * LU, U, act);
    }
    // dh0 = dz_0 R^T, dx = dz W^T (all steps of the slice at once).
    step_gemm<T>(dh0 + n0 * U, U, dz_s, LU, rec_t, nb, T(0), none, c);
    if (dx) input_gradient<T>(dx + n0 * L * I, dz_s, kernel, nb * L, I, U, c);
    stack_inputs(xh, x, h0, hs, n0, n1, L, I, U, true);
  });
  // Weight gradients over all N*L rows at once.
  stacked_weight_gradients<T>(dkernel, drecurrent, dbias, xh, dz, N * L, I, U, U, ctx);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template void simple_rnn_forward<T>(T*, const T*, const T*, const T*, const T*, const T*,     \
                                      int64_t, int64_t, int64_t, int64_t, RnnActivation,        \
                                      const Context&);                                          \
  template void simple_rnn_backward<T>(T*, T*, T*, T*, T*, const T*, bool, const T*, const T*,  \
                                       const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                       int64_t, RnnActivation, const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
