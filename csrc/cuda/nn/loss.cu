// Losses, value and gradient in one pass: per-row (or per-element) terms in
// double, then a deterministic one-block sum. The per-element formulas are
// common/loss_math.h, shared with cpu/losses.cpp. See nn.h.
#include "common/loss_math.h"
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// One warp per row: max (and its first index), sum of exponentials, the row's
// loss, whether the argmax is the label, whether the label is out of range, and
// the gradient. rows is (3, N): loss, correct, bad label.
template <typename T, typename L>
__global__ void sparse_xent_rows_kernel(T* dlogits, double* rows, const T* logits,
                                        const L* labels, int64_t N, int64_t C, T g) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = grid_threads() / 32;
  for (int64_t r = global_thread() / 32; r < N; r += warps) {
    const T* z = logits + r * C;
    const int64_t lab = int64_t(labels[r]);
    const bool valid = lab >= 0 && lab < C;
    // Per-lane max and its first index, then across the warp (ties: the lower index).
    T mx = z[0];
    int64_t arg = 0;
    for (int64_t j = lane; j < C; j += 32)
      if (z[j] > mx || (z[j] == mx && j < arg)) { mx = z[j]; arg = j; }
    for (int o = 16; o > 0; o >>= 1) {
      T om = __shfl_xor_sync(0xffffffffu, mx, o);
      int64_t oa = __shfl_xor_sync(0xffffffffu, arg, o);
      if (om > mx || (om == mx && oa < arg)) { mx = om; arg = oa; }
    }
    T s = T(0);
    for (int64_t j = lane; j < C; j += 32) s += std::exp(z[j] - mx);
    s = warp_sum(s);
    if (dlogits) {
      T* d = dlogits + r * C;
      const T scale = g / s;
      for (int64_t j = lane; j < C; j += 32) d[j] = sparse_xent_grad(z[j], mx, scale, j == lab, g);
    }
    if (lane == 0) {
      rows[r] = valid ? sparse_xent_loss(z[lab], mx, s) : 0.0;
      rows[N + r] = valid && arg == lab ? 1.0 : 0.0;
      rows[2 * N + r] = valid ? 0.0 : 1.0;
    }
  }
}

// Row-wise losses against target distributions: one thread per row.
template <typename T>
__global__ void softmax_xent_rows_kernel(T* d, double* rows, const T* z, const T* t, int64_t R,
                                         int64_t C, T g) {
  FASTDL_GRID_LOOP(r, R) {
    const T* zr = z + r * C;
    const T* tr = t + r * C;
    T mx = zr[0];
    for (int64_t j = 1; j < C; ++j) mx = zr[j] > mx ? zr[j] : mx;
    T sum = 0, tsum = 0;
    for (int64_t j = 0; j < C; ++j) { sum += std::exp(zr[j] - mx); tsum += tr[j]; }
    const T lse = mx + std::log(sum);
    double l = 0;
    for (int64_t j = 0; j < C; ++j) l += softmax_xent_loss(zr[j], tr[j], lse);
    rows[r] = l;
    if (d)
      for (int64_t j = 0; j < C; ++j) d[r * C + j] = softmax_xent_grad(zr[j], tr[j], lse, tsum, g);
  }
}

template <typename T>
__global__ void categorical_xent_rows_kernel(T* dp, double* rows, const T* p, const T* t,
                                             int64_t R, int64_t C, T lo, T hi, T g) {
  FASTDL_GRID_LOOP(r, R) {
    const T* pr = p + r * C;
    const T* tr = t + r * C;
    T S = 0;
    for (int64_t j = 0; j < C; ++j) S += pr[j];
    double l = 0;
    T dot = 0;
    for (int64_t j = 0; j < C; ++j) {
      const T q = pr[j] / S;
      const T qc = clip_prob(q, lo, hi);
      l += categorical_xent_loss(tr[j], qc);
      if (dp) {
        const T dq = categorical_xent_dq(q, tr[j], qc, lo, hi);
        dp[r * C + j] = dq;
        dot += dq * q;
      }
    }
    rows[r] = l;
    if (dp)
      for (int64_t j = 0; j < C; ++j) dp[r * C + j] = categorical_xent_grad(dp[r * C + j], dot, S, g);
  }
}

// Element-wise losses: one element per thread.
template <LossKind K, typename T>
__global__ void elementwise_loss_kernel(T* d, double* terms, const T* p, const T* t, int64_t n,
                                        T lo, T hi, T g) {
  FASTDL_GRID_LOOP(i, n) {
    const T a = p[i], b = t[i];
    if constexpr (K == LossKind::sigmoid_xent) {
      terms[i] = sigmoid_xent_loss(a, b);
      if (d) d[i] = sigmoid_xent_grad(a, b, g);
    } else if constexpr (K == LossKind::binary_xent) {
      terms[i] = binary_xent_loss(a, b, lo, hi);
      if (d) d[i] = binary_xent_grad(a, b, lo, hi, g);
    } else if constexpr (K == LossKind::mse) {
      terms[i] = squared_error_loss(a - b);
      if (d) d[i] = squared_error_grad(a - b, T(2) * g);
    } else {
      terms[i] = absolute_error_loss(a - b);
      if (d) d[i] = absolute_error_grad(a - b, g);
    }
  }
}

// out[q] = sum of v[q*n .. q*n+n), q < k, by one block in a fixed order.
__global__ void sum_doubles_kernel(double* out, const double* v, int64_t n, int k) {
  __shared__ double sh[kThreads];
  for (int q = 0; q < k; ++q) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) s += v[q * n + i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w >>= 1) {
      if (int(threadIdx.x) < w) sh[threadIdx.x] += sh[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[q] = sh[0];
    __syncthreads();
  }
}

}  // namespace

template <typename T, typename L>
cudaError_t sparse_softmax_xent(T* dlogits, double* stats, double* rows, const T* logits,
                                const L* labels, int64_t N, int64_t C, double grad_scale,
                                cudaStream_t stream) {
  if (N > 0 && C > 0)
    sparse_xent_rows_kernel<T, L><<<blocks_for(N * 32), kThreads, 0, stream>>>(
        dlogits, rows, logits, labels, N, C, T(grad_scale));
  sum_doubles_kernel<<<1, kThreads, 0, stream>>>(stats, rows, N, 3);
  return launch_status();
}

template <typename T>
cudaError_t loss(LossKind kind, T* d, double* sum, double* terms, const T* pred, const T* target,
                 int64_t rows, int64_t cols, double eps, double grad_scale, cudaStream_t stream) {
  const T g = T(grad_scale), lo = T(eps), hi = T(1 - eps);
  const int64_t n = rows * cols;
  int64_t count = n;
  switch (kind) {
    case LossKind::softmax_xent:
      count = rows;
      if (rows > 0 && cols > 0)
        softmax_xent_rows_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(d, terms, pred,
                                                                              target, rows, cols, g);
      break;
    case LossKind::categorical_xent:
      count = rows;
      if (rows > 0 && cols > 0)
        categorical_xent_rows_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(
            d, terms, pred, target, rows, cols, lo, hi, g);
      break;
    case LossKind::sigmoid_xent:
      if (n > 0)
        elementwise_loss_kernel<LossKind::sigmoid_xent, T><<<blocks_for(n), kThreads, 0, stream>>>(
            d, terms, pred, target, n, lo, hi, g);
      break;
    case LossKind::binary_xent:
      if (n > 0)
        elementwise_loss_kernel<LossKind::binary_xent, T><<<blocks_for(n), kThreads, 0, stream>>>(
            d, terms, pred, target, n, lo, hi, g);
      break;
    case LossKind::mse:
      if (n > 0)
        elementwise_loss_kernel<LossKind::mse, T><<<blocks_for(n), kThreads, 0, stream>>>(
            d, terms, pred, target, n, lo, hi, g);
      break;
    case LossKind::mae:
      if (n > 0)
        elementwise_loss_kernel<LossKind::mae, T><<<blocks_for(n), kThreads, 0, stream>>>(
            d, terms, pred, target, n, lo, hi, g);
      break;
  }
  if ((kind == LossKind::softmax_xent || kind == LossKind::categorical_xent) && cols == 0)
    count = 0;  // rows of nothing: no terms were written
  sum_doubles_kernel<<<1, kThreads, 0, stream>>>(sum, terms, count, 1);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T, L)                                                              \
  template cudaError_t sparse_softmax_xent<T, L>(T*, double*, double*, const T*, const L*,     \
                                                 int64_t, int64_t, double, cudaStream_t);
FASTDL_INSTANTIATE(float, int32_t)
FASTDL_INSTANTIATE(float, int64_t)
FASTDL_INSTANTIATE(double, int32_t)
FASTDL_INSTANTIATE(double, int64_t)
#undef FASTDL_INSTANTIATE
template cudaError_t loss<float>(LossKind, float*, double*, double*, const float*, const float*,
                                 int64_t, int64_t, double, double, cudaStream_t);
template cudaError_t loss<double>(LossKind, double*, double*, double*, const double*,
                                  const double*, int64_t, int64_t, double, double, cudaStream_t);

}  // namespace fastdl::cuda
