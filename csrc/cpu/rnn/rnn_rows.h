// Row passes of the recurrent kernels: the per-element gate math of
// common/rnn_cell.h over the U units of one batch row of one timestep. These
// loops (exp, divisions) cost about as much as the per-step GEMMs, so they are
// compiled once per capability level (rnn_rows_kernels.cpp) and looked up by
// ctx.isa in rnn_rows_kernels. float64 always uses the generic build.
#pragma once
#include <cstdint>

#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

template <typename T>
struct RnnRows {
  // h = tanh(h) (U) in place.
  void (*tanh_row)(T* h /* (U) */, int64_t U);
  // LSTM step forward: g (5U) holds the gate pre-activations [i f g o] in and
  // the activated gates plus the new c out; h (U) overwritten.
  void (*lstm_forward)(T* g /* (5U) */, const T* c_prev /* (U) */, T* h /* (U) */, int64_t U);
  // LSTM step backward: d (4U) gate pre-activation gradients overwritten; dc (U)
  // in: from the step after, out: towards c_prev; dh (U) the gradient reaching h.
  void (*lstm_backward)(T* d /* (4U) */, T* dc /* (U) */, const T* g /* (5U) */,
                        const T* c_prev /* (U) */, const T* dh /* (U) */, int64_t U);
  // GRU step forward: g (4U) holds [xz xr xh] in and the saved [z r hh hh_rec]
  // out; p (3U) the recurrent projections; h (U) overwritten.
  void (*gru_forward)(T* g /* (4U) */, const T* p /* (3U) */, const T* h_prev /* (U) */,
                      T* h /* (U) */, int64_t U);
  // GRU step backward: ax, ah (3U) the gradients reaching the input / recurrent
  // projections, overwritten; dh (U) in: the gradient reaching h, out: its
  // direct part towards h_prev (dh z).
  void (*gru_backward)(T* ax /* (3U) */, T* ah /* (3U) */, T* dh /* (U) */, const T* g /* (4U) */,
                       const T* h_prev /* (U) */, int64_t U);
};

struct RnnRowsKernels {
  RnnRows<float> f32;
  RnnRows<double> f64;
};
inline DispatchTable<RnnRowsKernels> rnn_rows_kernels;

// The row passes for level isa (float); the generic ones for double.
template <typename T>
const RnnRows<T>& rnn_rows(Isa isa) {
  if constexpr (sizeof(T) == sizeof(float)) return rnn_rows_kernels[isa].f32;
  else return rnn_rows_kernels[Isa::generic].f64;
}

}  // namespace fastdl::cpu
