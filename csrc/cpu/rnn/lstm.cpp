// LSTM forward and backward through time (see lstm.h).
//
// The weights each step multiplies by are packed once per call (rnn_util.h),
// forward [W; R] and backward R^T, and shared by every thread's batch slice.
// Forward:  per step gates_t = [x_t, h_{t-1}] [W; R] + b (one GEMM of depth
//           I+U, bias in the epilogue, into the cache) and one fused pass that
//           applies the nonlinearities and updates c and h.
// Backward: from the last step down, dh_t = dhs_t + dgates_{t+1} R^T (one GEMM)
//           and one fused pass giving dgates_t and carrying dc; then
//           dx = dgates W^T over all N*L rows, and [dW; dR; db] as one GEMM
//           [x_t, h_{t-1}, 1]^T dgates over all N*L rows.
#include "cpu/rnn/lstm.h"

#include <algorithm>
#include <cstring>

#include "cpu/gemm/gemm.h"
#include "cpu/rnn/rnn_rows.h"
#include "cpu/rnn/rnn_util.h"

namespace fastdl::cpu {

using namespace rnn_detail;  // the shared plumbing in rnn_util.h

template <typename T>
void lstm_forward(T* hs, T* cT, T* cache, const T* x, const T* h0, const T* c0, const T* kernel,
                  const T* recurrent, const T* bias, int64_t N, int64_t L, int64_t I, int64_t U,
                  const Context& ctx) {
  ArenaScope scope(ctx.arena);
  const int64_t G = 4 * U;       // gate columns
  const int64_t C = 5 * U;       // cache columns per step: [i f g o c]
  const int64_t LC = L * C, LU = L * U;
  const int64_t K = I + U;       // depth of a step's product
  GemmEpilogue<T> ep;
  ep.bias = bias;
  const PackedB<T> wr = pack_stacked(kernel, recurrent, I, U, G, ctx);  // (I+U,4U)
  const RnnRows<T>& pass = rnn_rows<T>(ctx.isa);  // gate math for this ISA
  const double macs = double(N * L) * double(K * G);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& cx) {
    const int64_t nb = n1 - n0;
    ArenaScope slice_scope(cx.arena);
    T* a = cx.arena->alloc<T>(size_t(nb * K));  // (nb,I+U) [x_t, h_{t-1}] of one step
    T* cache_s = cache + n0 * LC;
    T* hs_s = hs + n0 * LU;
    for (int64_t t = 0; t < L; ++t) {
      T* gt = cache_s + t * C;  // row n of this step at gt + n * LC
      const StateRows<T> hprev = prev_state(h0, hs_s, n0, t, L, U);
      const T* cprev = t == 0 ? c0 + n0 * U : gt - C + G;
      const int64_t rs_c = t == 0 ? U : LC;
      stack_step(a, x + n0 * L * I, hprev, nb, t, L, I, U);
      step_gemm<T>(gt, LC, a, K, wr, nb, T(0), ep, cx);
      for (int64_t n = 0; n < nb; ++n)
        pass.lstm_forward(gt + n * LC, cprev + n * rs_c, hs_s + n * LU + t * U, U);
    }
    for (int64_t n = 0; n < nb; ++n)
      std::memcpy(cT + (n0 + n) * U, cache_s + n * LC + (L - 1) * C + G, sizeof(T) * U);
  });
}

template <typename T>
void lstm_backward(T* dx, T* dh0, T* dc0, T* dkernel, T* drecurrent, T* dbias, const T* dhs,
                   bool dhs_all_steps, const T* dcT, const T* x, const T* h0, const T* c0,
                   const T* kernel, const T* recurrent, const T* hs, const T* cache, int64_t N,
                   int64_t L, int64_t I, int64_t U, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  const int64_t G = 4 * U, C = 5 * U;
  const int64_t LC = L * C, LG = L * G;
  T* dg = ctx.arena->alloc<T>(N * LG);     // (N,L,4U) gate pre-activation gradients
  T* xh = ctx.arena->alloc<T>(N * L * (I + U + 1));  // (N,L,I+U+1) [x_t, h_{t-1}, 1] per step
  const PackedB<T> rec_t = pack_recurrent(recurrent, U, G, true, ctx);  // (4U,U) recurrent^T
  const GemmEpilogue<T> none;
  const RnnRows<T>& pass = rnn_rows<T>(ctx.isa);  // gate math for this ISA
  const double macs = double(N * L) * double((I + U) * G);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& cx) {
    const int64_t nb = n1 - n0;
    T* dg_s = dg + n0 * LG;
    const T* cache_s = cache + n0 * LC;
    T* dh = dh0 + n0 * U;  // (nb,U) dh_t from the recurrence; ends as dh0
    T* dc = dc0 + n0 * U;  // (nb,U) dc carried backwards; ends as dc0
    if (dcT)
      std::memcpy(dc, dcT + n0 * U, sizeof(T) * nb * U);
    else
      std::fill(dc, dc + nb * U, T(0));
    for (int64_t t = L - 1; t >= 0; --t) {
      T* dgt = dg_s + t * G;  // row n at dgt + n * LG
      // dh = dhs_t + dgates_{t+1} R^T: the loss's part first, then the GEMM adds.
      const StateRows<T> dout = step_dhs(dhs, dhs_all_steps, n0, t, L, U);
      if (dout.p)
        for (int64_t n = 0; n < nb; ++n)
          std::memcpy(dh + n * U, dout.p + n * dout.rs, sizeof(T) * U);
      if (t < L - 1)
        step_gemm<T>(dh, U, dgt + G, LG, rec_t, nb, dout.p ? T(1) : T(0), none, cx);
      for (int64_t n = 0; n < nb; ++n) {
        const T* g = cache_s + n * LC + t * C;
        const T* cp = t == 0 ? c0 + (n0 + n) * U : g - C + G;
        pass.lstm_backward(dgt + n * LG, dc + n * U, g, cp, dh + n * U, U);
      }
    }
    // dh0 = dgates_0 R^T, dx = dgates W^T (all steps of the slice at once).
    step_gemm<T>(dh, U, dg_s, LG, rec_t, nb, T(0), none, cx);
    if (dx) input_gradient<T>(dx + n0 * L * I, dg_s, kernel, nb * L, I, G, cx);
    stack_inputs(xh, x, h0, hs, n0, n1, L, I, U, true);
  });
  // Weight gradients over all N*L rows at once.
  stacked_weight_gradients<T>(dkernel, drecurrent, dbias, xh, dg, N * L, I, U, G, ctx);
}

#define FASTDL_INSTANTIATE(T)                                                                    \
  template void lstm_forward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,    \
                                const T*, int64_t, int64_t, int64_t, int64_t, const Context&);   \
  template void lstm_backward<T>(T*, T*, T*, T*, T*, T*, const T*, bool, const T*, const T*,     \
                                 const T*, const T*, const T*, const T*, const T*, const T*,     \
                                 int64_t, int64_t, int64_t, int64_t, const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
