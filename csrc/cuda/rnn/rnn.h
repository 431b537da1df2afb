// GPU recurrent layers over whole sequences: one GEMM for the input projection
// of all steps, then per step a recurrent GEMM and a fused gate kernel
// (common/rnn_cell.h, shared with the CPU kernels). Keras weight layouts: kernel (I, G*U), recurrent
// kernel (U, G*U), gate blocks side by side (LSTM i,f,c,o; GRU z,r,h).
// Sizes: N batch, T steps (Tn in code), I inputs, U units. All arrays are
// contiguous device arrays; outputs are overwritten. A backward pass's dx may be
// null (not computed). dhs is (N,T,U) when dhs_seq, else (N,U): the gradient of
// the last step only.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "common/activation_math.h"
#include "cuda/gemm/gemm.h"

namespace fastdl::cuda {

// ---------------------------------------------------------------- simple_rnn.cu
// h_t = act(x_t K + h_{t-1} RK + b), act tanh or relu
template <typename T>
cudaError_t simple_rnn(T* hs /* (N,T,U) */, const T* x /* (N,T,I) */, const T* h0 /* (N,U) */,
                       const T* kernel /* (I,U) */, const T* recurrent_kernel /* (U,U) */,
                       const T* bias /* (U,) or null */, int64_t N, int64_t Tn, int64_t I,
                       int64_t U, Act act, bool tf32, cudaStream_t stream);
// Scratch: dz and hprev (N,T,U), partial (sum_rows_partials(N*T), U). Every backward
// pass also takes work, of work_elems = rnn_weight_grad_work(N*T, I, U, gates) (may be 0),
// which lets the weight gradients' products split k (gemm.h).
template <typename T>
cudaError_t simple_rnn_backward(T* dx /* (N,T,I) */, T* dh0 /* (N,U) */, T* dk /* (I,U) */,
                                T* drk /* (U,U) */, T* db /* (U,) */, const T* dhs, bool dhs_seq,
                                const T* x /* (N,T,I) */, const T* h0 /* (N,U) */,
                                const T* kernel /* (I,U) */, const T* recurrent_kernel /* (U,U) */,
                                const T* hs /* (N,T,U) */, T* dz, T* hprev, T* partial, T* work,
                                int64_t work_elems, int64_t N, int64_t Tn, int64_t I, int64_t U,
                                Act act, bool tf32, cudaStream_t stream);

// ---------------------------------------------------------------- lstm.cu
// cache (N,T,5U) receives, per step, the activated gates i,f,g,o and the cell
// state c: the CPU's cache layout (cpu/lstm.h), what the backward pass needs.
template <typename T>
cudaError_t lstm(T* hs /* (N,T,U) */, T* c_last /* (N,U) */, T* cache /* (N,T,5U) */,
                 const T* x /* (N,T,I) */, const T* h0 /* (N,U) */,
                 const T* c0 /* (N,U) */, const T* kernel /* (I,4U) */,
                 const T* recurrent_kernel /* (U,4U) */, const T* bias /* (4U,) or null */,
                 int64_t N, int64_t Tn, int64_t I, int64_t U, bool tf32, cudaStream_t stream);
// dc_last (N,U) or null. Scratch: dz (N,T,4U), hprev (N,T,U), partial (P, 4U).
template <typename T>
cudaError_t lstm_backward(T* dx /* (N,T,I) */, T* dh0 /* (N,U) */, T* dc0 /* (N,U) */,
                          T* dk /* (I,4U) */, T* drk /* (U,4U) */, T* db /* (4U,) */,
                          const T* dhs, bool dhs_seq, const T* dc_last /* (N,U) or null */,
                          const T* x, const T* h0, const T* c0, const T* kernel,
                          const T* recurrent_kernel, const T* hs, const T* cache /* (N,T,5U) */,
                          T* dz, T* hprev, T* partial, T* work, int64_t work_elems, int64_t N,
                          int64_t Tn, int64_t I, int64_t U, bool tf32, cudaStream_t stream);

// ---------------------------------------------------------------- gru.cu
// bias (2,3U) or null: row 0 the input bias, row 1 the recurrent bias.
// cache (N,T,4U) or null receives z, r, hh and the recurrent candidate part rh.
// Scratch: xz (N,T,3U), rec (N,3U).
template <typename T>
cudaError_t gru(T* hs /* (N,T,U) */, T* cache /* (N,T,4U) or null */, const T* x /* (N,T,I) */,
                const T* h0 /* (N,U) */, const T* kernel /* (I,3U) */,
                const T* recurrent_kernel /* (U,3U) */, const T* bias /* (2,3U) or null */,
                T* xz, T* rec, int64_t N, int64_t Tn, int64_t I, int64_t U, bool tf32,
                cudaStream_t stream);
// db (2,3U). Scratch: dzx and dzr (N,T,3U), hprev (N,T,U), partial (P, 3U).
template <typename T>
cudaError_t gru_backward(T* dx /* (N,T,I) */, T* dh0 /* (N,U) */, T* dk /* (I,3U) */,
                         T* drk /* (U,3U) */, T* db /* (2,3U) */, const T* dhs, bool dhs_seq,
                         const T* x, const T* h0, const T* kernel, const T* recurrent_kernel,
                         const T* hs, const T* cache /* (N,T,4U) */, T* dzx, T* dzr, T* hprev,
                         T* partial, T* work, int64_t work_elems, int64_t N, int64_t Tn,
                         int64_t I, int64_t U, bool tf32, cudaStream_t stream);

// Workspace elements for the split-K weight gradients of a backward pass over
// rows = N*T steps of a cell with `gates` blocks of U (1 SimpleRNN, 4 LSTM, 3 GRU):
// dk (I, gates*U) and drk (U, gates*U) run one after the other on one stream.
inline int64_t rnn_weight_grad_work(int64_t rows, int64_t I, int64_t U, int64_t gates) {
  const int64_t a = gemm_workspace_elems(I, gates * U, rows);
  const int64_t b = gemm_workspace_elems(U, gates * U, rows);
  return a > b ? a : b;
}

}  // namespace fastdl::cuda
