// GRU over a whole sequence (Keras reset_after=True), forward and backward
// through time.
//
//   [xz xr xh]_t = x_t W + b_in,   [hz hr hh_rec]_t = h_{t-1} R + b_rec
//   z = sigmoid(xz + hz),  r = sigmoid(xr + hr),  hh = tanh(xh + r hh_rec)
//   h_t = z h_{t-1} + (1 - z) hh
//
// Keras layout: W = kernel (I,3U), R = recurrent_kernel (U,3U), bias (2,3U)
// with row 0 = b_in and row 1 = b_rec; gate blocks z, r, h. L is the number of
// timesteps (T in the Python API). Every array is C-contiguous.
//
// The cache (N,L,4U) is what backward needs: per step z, r, hh and hh_rec.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// hs and cache are overwritten. bias_in / bias_rec may be null (no bias).
template <typename T>
void gru_forward(T* hs /* (N,L,U) */, T* cache /* (N,L,4U) */, const T* x /* (N,L,I) */,
                 const T* h0 /* (N,U) */, const T* kernel /* (I,3U) */,
                 const T* recurrent /* (U,3U) */, const T* bias_in /* (3U,) or null */,
                 const T* bias_rec /* (3U,) or null */, int64_t N, int64_t L, int64_t I,
                 int64_t U, const Context& ctx);

// Every gradient is overwritten; dx may be null (not computed). dbias is (2,3U)
// like the bias. dhs is (N,L,U) when dhs_all_steps, else (N,U) (the gradient
// of the last step only).
template <typename T>
void gru_backward(T* dx /* (N,L,I) */, T* dh0 /* (N,U) */, T* dkernel /* (I,3U) */,
                  T* drecurrent /* (U,3U) */, T* dbias /* (2,3U) */,
                  const T* dhs /* (N,L,U) or (N,U) */, bool dhs_all_steps,
                  const T* x /* (N,L,I) */, const T* h0 /* (N,U) */,
                  const T* kernel /* (I,3U) */, const T* recurrent /* (U,3U) */,
                  const T* hs /* (N,L,U) */, const T* cache /* (N,L,4U) */, int64_t N, int64_t L,
                  int64_t I, int64_t U, const Context& ctx);

}  // namespace fastdl::cpu
