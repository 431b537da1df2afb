// SimpleRNN over a whole sequence, forward and backward through time.
//
//   h_t = act(x_t W + h_{t-1} R + b),  act = tanh or relu,  t = 0..L-1
//
// Keras layout: W = kernel (I,U), R = recurrent_kernel (U,U), b = bias (U,).
// L is the number of timesteps (T in the Python API). Every array is
// C-contiguous. The forward saves nothing beyond hs: backward reads act'
// from the outputs (tanh' = 1 - h^2, relu' = [h > 0]).
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

enum class RnnActivation : int { tanh = 0, relu = 1 };

// hs is overwritten. bias may be null (no bias).
template <typename T>
void simple_rnn_forward(T* hs /* (N,L,U) */, const T* x /* (N,L,I) */, const T* h0 /* (N,U) */,
                        const T* kernel /* (I,U) */, const T* recurrent /* (U,U) */,
                        const T* bias /* (U,) or null */, int64_t N, int64_t L, int64_t I,
                        int64_t U, RnnActivation act, const Context& ctx);

// Every gradient is overwritten; dx may be null (not computed). dhs is (N,L,U)
// when dhs_all_steps (a gradient for every step), else (N,U): the gradient of
// the last step only.
template <typename T>
void simple_rnn_backward(T* dx /* (N,L,I) */, T* dh0 /* (N,U) */, T* dkernel /* (I,U) */,
                         T* drecurrent /* (U,U) */, T* dbias /* (U,) */,
                         const T* dhs /* (N,L,U) or (N,U) */, bool dhs_all_steps,
                         const T* x /* (N,L,I) */, const T* h0 /* (N,U) */,
                         const T* kernel /* (I,U) */, const T* recurrent /* (U,U) */,
                         const T* hs /* (N,L,U) */, int64_t N, int64_t L, int64_t I, int64_t U,
                         RnnActivation act, const Context& ctx);

}  // namespace fastdl::cpu
