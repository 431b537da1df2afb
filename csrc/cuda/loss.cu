// Fused sparse softmax cross-entropy: loss and gradient in one pass per row,
// then a deterministic single-block mean. See nn.h.
#include <limits>

#include "cuda/nn.h"
#include "cuda/util.cuh"

namespace fastdl::cuda {
namespace {

using hd::exp_;
using hd::log_;

// One warp per row: max, sum of exponentials, the row's loss and its gradient.
template <typename T, typename L>
__global__ void softmax_xent_rows_kernel(T* dlogits, T* row_loss, const T* logits,
                                         const L* labels, int64_t N, int64_t C) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = grid_threads() / 32;
  const T invN = T(1) / T(N);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (int64_t r = global_thread() / 32; r < N; r += warps) {
    const T* xr = logits + r * C;
    T* dr = dlogits + r * C;
    const int64_t label = int64_t(labels[r]);
    const bool valid = label >= 0 && label < C;
    T mx = -INFINITY;
    for (int64_t j = lane; j < C; j += 32) mx = xr[j] > mx ? xr[j] : mx;
    mx = warp_max(mx);
    T s = T(0);
    for (int64_t j = lane; j < C; j += 32) s += exp_(xr[j] - mx);
    s = warp_sum(s);
    const T inv = T(1) / s;
    for (int64_t j = lane; j < C; j += 32) {
      T p = exp_(xr[j] - mx) * inv;
      dr[j] = valid ? (p - (j == label ? T(1) : T(0))) * invN : nan;
    }
    if (lane == 0) row_loss[r] = valid ? mx + log_(s) - xr[label] : nan;
  }
}

// One block of kThreads sums the row losses in a fixed order.
template <typename T>
__global__ void mean_kernel(T* out, const T* v, int64_t n) {
  __shared__ T sh[kThreads];
  T s = T(0);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += v[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = sh[0] / T(n);  // n == 0: 0/0 = NaN
}

}  // namespace

template <typename T, typename L>
cudaError_t sparse_softmax_cross_entropy(T* mean_loss, T* dlogits, T* row_loss, const T* logits,
                                         const L* labels, int64_t N, int64_t C,
                                         cudaStream_t stream) {
  if (N > 0 && C > 0)
    softmax_xent_rows_kernel<T, L><<<blocks_for(N * 32), kThreads, 0, stream>>>(
        dlogits, row_loss, logits, labels, N, C);
  if (N > 0 && C == 0) {  // no classes: every label is out of range
    cudaError_t e = cudaMemsetAsync(row_loss, 0xff, size_t(N) * sizeof(T), stream);  // NaN bits
    if (e != cudaSuccess) return e;
  }
  mean_kernel<T><<<1, kThreads, 0, stream>>>(mean_loss, row_loss, N);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T, L)                                                          \
  template cudaError_t sparse_softmax_cross_entropy<T, L>(T*, T*, T*, const T*, const L*,  \
                                                          int64_t, int64_t, cudaStream_t);
FASTDL_INSTANTIATE(float, int32_t)
FASTDL_INSTANTIATE(float, int64_t)
FASTDL_INSTANTIATE(double, int32_t)
FASTDL_INSTANTIATE(double, int64_t)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
