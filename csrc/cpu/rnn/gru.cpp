// GRU forward and backward through time (see gru.h).
//
// Forward:  x W + b_in for all N*L rows in one GEMM (into the cache), then per
//           step h_{t-1} R + b_rec (one GEMM against R packed once, bias fused)
//           and one fused pass for the gates and h_t. (reset_after keeps the two
//           sides apart, so they cannot share one product as in the LSTM.)
// Backward: from the last step down, one fused pass gives the gate gradients of
//           the input side (dgx) and of the recurrent side (dgh, which differs
//           only in the candidate block: times r), and dh_{t-1} = dh_t z +
//           dgh_t R^T (one GEMM against R^T packed once, beta = 1). Then the weight gradients as single
//           GEMMs over all N*L rows: dW = x^T dgx, dR = h_prev^T dgh,
//           db = [sum dgx, sum dgh], dx = dgx W^T.
#include "cpu/rnn/gru.h"

#include <algorithm>

#include "cpu/gemm/gemm.h"
#include "cpu/rnn/rnn_rows.h"
#include "cpu/rnn/rnn_util.h"

namespace fastdl::cpu {

using namespace rnn_detail;  // the shared plumbing in rnn_util.h

template <typename T>
void gru_forward(T* hs, T* cache, const T* x, const T* h0, const T* kernel, const T* recurrent,
                 const T* bias_in, const T* bias_rec, int64_t N, int64_t L, int64_t I, int64_t U,
                 const Context& ctx) {
  const int64_t G = 3 * U;  // gate columns
  const int64_t C = 4 * U;  // cache columns per step: [z r hh hh_rec]
  const int64_t LC = L * C, LU = L * U;
  ArenaScope scope(ctx.arena);
  const PackedB<T> rec = pack_recurrent(recurrent, U, G, false, ctx);  // (U,3U)
  const RnnRows<T>& pass = rnn_rows<T>(ctx.isa);  // gate math for this ISA
  const double macs = double(N * L) * double((I + U) * G);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& cx) {
    const int64_t nb = n1 - n0;
    ArenaScope slice_scope(cx.arena);
    T* hp = cx.arena->alloc<T>(nb * G);  // (nb,3U) h_{t-1} R + b_rec of one step
    T* cache_s = cache + n0 * LC;
    T* hs_s = hs + n0 * LU;
    GemmEpilogue<T> ep_rec;
    ep_rec.bias = bias_rec;
    // Input projection of every step of the slice, b_in fused, into the gate columns.
    input_projection<T>(cache_s, C, x + n0 * L * I, kernel, bias_in, nb * L, I, G, cx);
    for (int64_t t = 0; t < L; ++t) {
      const StateRows<T> hprev = prev_state(h0, hs_s, n0, t, L, U);
      step_gemm<T>(hp, G, hprev.p, hprev.rs, rec, nb, T(0), ep_rec, cx);
      for (int64_t n = 0; n < nb; ++n)
        pass.gru_forward(cache_s + n * LC + t * C, hp + n * G, hprev.p + n * hprev.rs,
                         hs_s + n * LU + t * U, U);
    }
  });
}

template <typename T>
void gru_backward(T* dx, T* dh0, T* dkernel, T* drecurrent, T* dbias, const T* dhs,
                  bool dhs_all_steps, const T* x, const T* h0, const T* kernel,
                  const T* recurrent, const T* hs, const T* cache, int64_t N, int64_t L, int64_t I,
                  int64_t U, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  const int64_t G = 3 * U, C = 4 * U;
  const int64_t LC = L * C, LU = L * U, LG = L * G;
  T* dgx = ctx.arena->alloc<T>(N * LG);    // (N,L,3U) gradients reaching x W + b_in
  T* dgh = ctx.arena->alloc<T>(N * LG);    // (N,L,3U) gradients reaching h R + b_rec
  T* hprev = ctx.arena->alloc<T>(N * LU);  // (N,L,U) the state each step started from
  const PackedB<T> rec_t = pack_recurrent(recurrent, U, G, true, ctx);  // (3U,U) recurrent^T
  const GemmEpilogue<T> none;
  const RnnRows<T>& pass = rnn_rows<T>(ctx.isa);  // gate math for this ISA
  const double macs = double(N * L) * double((I + U) * G);  // the step GEMMs
  for_batch_slices(N, macs, ctx, [&](int64_t n0, int64_t n1, const Context& cx) {
    const int64_t nb = n1 - n0;
    T* dgx_s = dgx + n0 * LG;
    T* dgh_s = dgh + n0 * LG;
    const T* cache_s = cache + n0 * LC;
    const T* hs_s = hs + n0 * LU;
    T* dh = dh0 + n0 * U;  // (nb,U) gradient reaching h_t from later steps; ends as dh0
    std::fill(dh, dh + nb * U, T(0));
    for (int64_t t = L - 1; t >= 0; --t) {
      if (t < L - 1)  // dh += dgh_{t+1} R^T (dh holds the direct part dh_{t+1} z)
        step_gemm<T>(dh, U, dgh_s + (t + 1) * G, LG, rec_t, nb, T(1), none, cx);
      const StateRows<T> dout = step_dhs(dhs, dhs_all_steps, n0, t, L, U);
      if (dout.p)  // dh += dhs_t
        for (int64_t n = 0; n < nb; ++n)
          for (int64_t u = 0; u < U; ++u) dh[n * U + u] += dout.p[n * dout.rs + u];
      const StateRows<T> hprev_t = prev_state(h0, hs_s, n0, t, L, U);
      for (int64_t n = 0; n < nb; ++n)
        pass.gru_backward(dgx_s + n * LG + t * G, dgh_s + n * LG + t * G, dh + n * U,
                          cache_s + n * LC + t * C, hprev_t.p + n * hprev_t.rs, U);
    }
    // dh0 = direct part + dgh_0 R^T; dx = dgx W^T (all steps of the slice at once).
    step_gemm<T>(dh, U, dgh_s, LG, rec_t, nb, T(1), none, cx);
    if (dx) input_gradient<T>(dx + n0 * L * I, dgx_s, kernel, nb * L, I, G, cx);
    stack_inputs<T>(hprev, nullptr, h0, hs, n0, n1, L, 0, U, false);
  });
  // Weight gradients over all N*L rows at once.
  weight_gradients<T>(dkernel, drecurrent, x, hprev, dgx, dgh, N * L, I, U, G, ctx);
  column_sums(dbias, dgx, N * L, G, G);
  column_sums(dbias + G, dgh, N * L, G, G);
}

#define FASTDL_INSTANTIATE(T)                                                                     \
  template void gru_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                               int64_t, int64_t, int64_t, int64_t, const Context&);               \
  template void gru_backward<T>(T*, T*, T*, T*, T*, const T*, bool, const T*, const T*, const T*, \
                                const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
