// Kernels shared by the three recurrent layers (header-only, .cu files only).
#pragma once
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda::rnn_detail {

// hprev(n,t,:) = t == 0 ? h0(n,:) : hs(n,t-1,:), the h_{t-1} every step saw.
template <typename T>
__global__ void shift_hidden_kernel(T* hprev, const T* h0, const T* hs, int64_t N, int64_t Tn,
                                    int64_t U) {
  FASTDL_GRID_LOOP(idx, N * Tn * U) {
    int64_t u = idx % U, t = (idx / U) % Tn, n = idx / (U * Tn);
    hprev[idx] = t == 0 ? h0[n * U + u] : hs[idx - U];
  }
}

template <typename T>
cudaError_t shift_hidden(T* hprev, const T* h0, const T* hs, int64_t N, int64_t Tn, int64_t U,
                         cudaStream_t stream) {
  if (N * Tn * U <= 0) return cudaSuccess;
  shift_hidden_kernel<T><<<blocks_for(N * Tn * U), kThreads, 0, stream>>>(hprev, h0, hs, N, Tn, U);
  return launch_status();
}

// The upstream gradient of h(n,t,u).
template <typename T>
__device__ __forceinline__ T dh_upstream(const T* dhs, bool seq, int64_t n, int64_t t, int64_t u,
                                         int64_t Tn, int64_t U) {
  if (seq) return dhs[(n * Tn + t) * U + u];
  return t == Tn - 1 ? dhs[n * U + u] : T(0);
}

inline cudaError_t zero(void* p, int64_t elems, size_t size, cudaStream_t stream) {
  if (elems <= 0) return cudaSuccess;
  return cudaMemsetAsync(p, 0, size_t(elems) * size, stream);
}

}  // namespace fastdl::cuda::rnn_detail
