// LSTM over a whole sequence, forward and backward through time.
//
//   [i f g o]_t = x_t W + h_{t-1} R + b           (pre-activations, Keras order i, f, c~, o)
//   i, f, o = sigmoid, g = tanh
//   c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
//
// Keras layout: W = kernel (I,4U), R = recurrent_kernel (U,4U), b = bias (4U,).
// L is the number of timesteps (T in the Python API). Every array is
// C-contiguous.
//
// The cache (N,L,5U) is what backward needs: per step the activated gates
// [i f g o] (4U) then the cell state c (U).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// hs, cT and cache are overwritten. bias may be null (no bias).
template <typename T>
void lstm_forward(T* hs /* (N,L,U) */, T* cT /* (N,U) */, T* cache /* (N,L,5U) */,
                  const T* x /* (N,L,I) */, const T* h0 /* (N,U) */, const T* c0 /* (N,U) */,
                  const T* kernel /* (I,4U) */, const T* recurrent /* (U,4U) */,
                  const T* bias /* (4U,) or null */, int64_t N, int64_t L, int64_t I, int64_t U,
                  const Context& ctx);

// Every gradient is overwritten; dx may be null (not computed, e.g. for a first
// layer). dhs is (N,L,U) when dhs_all_steps, else (N,U)
// (the gradient of the last step only). dcT may be null (zero).
template <typename T>
void lstm_backward(T* dx /* (N,L,I) */, T* dh0 /* (N,U) */, T* dc0 /* (N,U) */,
                   T* dkernel /* (I,4U) */, T* drecurrent /* (U,4U) */, T* dbias /* (4U,) */,
                   const T* dhs /* (N,L,U) or (N,U) */, bool dhs_all_steps,
                   const T* dcT /* (N,U) or null */, const T* x /* (N,L,I) */,
                   const T* h0 /* (N,U) */, const T* c0 /* (N,U) */, const T* kernel /* (I,4U) */,
                   const T* recurrent /* (U,4U) */, const T* hs /* (N,L,U) */,
                   const T* cache /* (N,L,5U) */, int64_t N, int64_t L, int64_t I, int64_t U,
                   const Context& ctx);

}  // namespace fastdl::cpu
