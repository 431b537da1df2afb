// Element-wise activations, softmax / log-softmax and the column sum used for
// bias gradients. Forward and backward side by side. See nn.h.
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// ------------------------------------------------------------ element-wise
// The per-element math is common/activation_math.h, shared with the CPU kernels.
template <Act A, typename T>
__global__ void activation_forward_kernel(T* y, const T* x, int64_t n) {
  FASTDL_GRID_LOOP(i, n) y[i] = act_forward<A>(x[i]);
}

template <Act A, typename T>
__global__ void activation_backward_kernel(T* dx, const T* dy, const T* y, int64_t n) {
  FASTDL_GRID_LOOP(i, n) dx[i] = act_backward<A>(dy[i], y[i]);
}

// ------------------------------------------------------------ softmax
// Last axis (inner == 1): one warp per row, lanes stride along the row.
template <typename T>
__global__ void softmax_rows_kernel(T* y, const T* x, int64_t rows, int64_t len, bool log) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = grid_threads() / 32;
  for (int64_t r = global_thread() / 32; r < rows; r += warps) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    T mx = -INFINITY;
    for (int64_t j = lane; j < len; j += 32) mx = xr[j] > mx ? xr[j] : mx;
    mx = warp_max(mx);
    T s = T(0);
    for (int64_t j = lane; j < len; j += 32) s += std::exp(xr[j] - mx);
    s = warp_sum(s);
    if (log) {
      T lse = mx + std::log(s);
      for (int64_t j = lane; j < len; j += 32) yr[j] = xr[j] - lse;
    } else {
      T inv = T(1) / s;
      for (int64_t j = lane; j < len; j += 32) yr[j] = std::exp(xr[j] - mx) * inv;
    }
  }
}

// Any other axis: one thread per (outer, inner) column, walking the axis with
// stride inner (neighbouring threads read neighbouring addresses).
template <typename T>
__global__ void softmax_cols_kernel(T* y, const T* x, int64_t outer, int64_t len, int64_t inner,
                                    bool log) {
  FASTDL_GRID_LOOP(idx, outer * inner) {
    int64_t o = idx / inner, in = idx % inner;
    const T* xc = x + o * len * inner + in;
    T* yc = y + o * len * inner + in;
    T mx = -INFINITY;
    for (int64_t j = 0; j < len; ++j) mx = xc[j * inner] > mx ? xc[j * inner] : mx;
    T s = T(0);
    for (int64_t j = 0; j < len; ++j) s += std::exp(xc[j * inner] - mx);
    if (log) {
      T lse = mx + std::log(s);
      for (int64_t j = 0; j < len; ++j) yc[j * inner] = xc[j * inner] - lse;
    } else {
      T inv = T(1) / s;
      for (int64_t j = 0; j < len; ++j) yc[j * inner] = std::exp(xc[j * inner] - mx) * inv;
    }
  }
}

// dx = y (dy - <dy, y>)   or, for log-softmax,   dx = dy - exp(y) sum(dy)
template <typename T>
__global__ void softmax_backward_rows_kernel(T* dx, const T* dy, const T* y, int64_t rows,
                                             int64_t len, bool log) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = grid_threads() / 32;
  for (int64_t r = global_thread() / 32; r < rows; r += warps) {
    const T* dyr = dy + r * len;
    const T* yr = y + r * len;
    T* dxr = dx + r * len;
    T s = T(0);
    for (int64_t j = lane; j < len; j += 32) s += log ? dyr[j] : dyr[j] * yr[j];
    s = warp_sum(s);
    for (int64_t j = lane; j < len; j += 32)
      dxr[j] = log ? log_softmax_grad(dyr[j], yr[j], s) : softmax_grad(dyr[j], yr[j], s);
  }
}

template <typename T>
__global__ void softmax_backward_cols_kernel(T* dx, const T* dy, const T* y, int64_t outer,
                                             int64_t len, int64_t inner, bool log) {
  FASTDL_GRID_LOOP(idx, outer * inner) {
    int64_t base = (idx / inner) * len * inner + idx % inner;
    T s = T(0);
    for (int64_t j = 0; j < len; ++j) {
      int64_t e = base + j * inner;
      s += log ? dy[e] : dy[e] * y[e];
    }
    for (int64_t j = 0; j < len; ++j) {
      int64_t e = base + j * inner;
      dx[e] = log ? log_softmax_grad(dy[e], y[e], s) : softmax_grad(dy[e], y[e], s);
    }
  }
}

// ------------------------------------------------------------ column sums
// Block (32, 8): 32 columns, 8 row lanes; blockIdx.y picks a slab of rows.
constexpr int kSumCols = 32, kSumRowLanes = 8, kSumMaxPartials = 64;

template <typename T>
__global__ void sum_rows_partial_kernel(T* partial, const T* x, int64_t m, int64_t n,
                                        int64_t rows_per_slab) {
  __shared__ T sh[kSumRowLanes][kSumCols];
  const int64_t j = int64_t(blockIdx.x) * kSumCols + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_slab;
  int64_t r1 = r0 + rows_per_slab;
  if (r1 > m) r1 = m;
  T s = T(0);
  if (j < n)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kSumRowLanes) s += x[r * n + j];
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < n) {
    T t = T(0);
    for (int l = 0; l < kSumRowLanes; ++l) t += sh[l][threadIdx.x];
    partial[int64_t(blockIdx.y) * n + j] = t;
  }
}

template <typename T>
__global__ void sum_rows_final_kernel(T* out, const T* partial, int64_t parts, int64_t n,
                                      bool accumulate) {
  FASTDL_GRID_LOOP(j, n) {
    T t = T(0);
    for (int64_t p = 0; p < parts; ++p) t += partial[p * n + j];
    out[j] = accumulate ? out[j] + t : t;
  }
}

}  // namespace

template <typename T>
cudaError_t activation_forward(T* y, const T* x, int64_t n, Act act, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned b = blocks_for(n);
  switch (act) {
    case Act::relu: activation_forward_kernel<Act::relu, T><<<b, kThreads, 0, stream>>>(y, x, n); break;
    case Act::sigmoid: activation_forward_kernel<Act::sigmoid, T><<<b, kThreads, 0, stream>>>(y, x, n); break;
    case Act::tanh: activation_forward_kernel<Act::tanh, T><<<b, kThreads, 0, stream>>>(y, x, n); break;
    default: activation_forward_kernel<Act::linear, T><<<b, kThreads, 0, stream>>>(y, x, n); break;
  }
  return launch_status();
}

template <typename T>
cudaError_t activation_backward(T* dx, const T* dy, const T* y, int64_t n, Act act,
                                cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned b = blocks_for(n);
  switch (act) {
    case Act::relu: activation_backward_kernel<Act::relu, T><<<b, kThreads, 0, stream>>>(dx, dy, y, n); break;
    case Act::sigmoid: activation_backward_kernel<Act::sigmoid, T><<<b, kThreads, 0, stream>>>(dx, dy, y, n); break;
    case Act::tanh: activation_backward_kernel<Act::tanh, T><<<b, kThreads, 0, stream>>>(dx, dy, y, n); break;
    default: activation_backward_kernel<Act::linear, T><<<b, kThreads, 0, stream>>>(dx, dy, y, n); break;
  }
  return launch_status();
}

template <typename T>
cudaError_t softmax(T* y, const T* x, int64_t outer, int64_t len, int64_t inner, bool log,
                    cudaStream_t stream) {
  if (outer <= 0 || len <= 0 || inner <= 0) return cudaSuccess;
  if (inner == 1)
    softmax_rows_kernel<T><<<blocks_for(outer * 32), kThreads, 0, stream>>>(y, x, outer, len, log);
  else
    softmax_cols_kernel<T><<<blocks_for(outer * inner), kThreads, 0, stream>>>(y, x, outer, len,
                                                                                inner, log);
  return launch_status();
}

template <typename T>
cudaError_t softmax_backward(T* dx, const T* dy, const T* y, int64_t outer, int64_t len,
                             int64_t inner, bool log, cudaStream_t stream) {
  if (outer <= 0 || len <= 0 || inner <= 0) return cudaSuccess;
  if (inner == 1)
    softmax_backward_rows_kernel<T><<<blocks_for(outer * 32), kThreads, 0, stream>>>(
        dx, dy, y, outer, len, log);
  else
    softmax_backward_cols_kernel<T><<<blocks_for(outer * inner), kThreads, 0, stream>>>(
        dx, dy, y, outer, len, inner, log);
  return launch_status();
}

int64_t sum_rows_partials(int64_t m) {
  int64_t p = (m + 255) / 256;  // at least 256 rows per slab
  if (p < 1) p = 1;
  return p > kSumMaxPartials ? kSumMaxPartials : p;
}

template <typename T>
cudaError_t sum_rows(T* out, const T* x, T* partial, int64_t m, int64_t n, bool accumulate,
                     cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int64_t parts = sum_rows_partials(m);
  const int64_t per = m > 0 ? (m + parts - 1) / parts : 0;
  if (m > 0) {
    dim3 grid(unsigned((n + kSumCols - 1) / kSumCols), unsigned(parts));
    sum_rows_partial_kernel<T><<<grid, dim3(kSumCols, kSumRowLanes), 0, stream>>>(partial, x, m,
                                                                                 n, per);
  }
  sum_rows_final_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(out, partial, m > 0 ? parts : 0,
                                                                    n, accumulate);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t activation_forward<T>(T*, const T*, int64_t, Act, cudaStream_t);          \
  template cudaError_t activation_backward<T>(T*, const T*, const T*, int64_t, Act, cudaStream_t); \
  template cudaError_t softmax<T>(T*, const T*, int64_t, int64_t, int64_t, bool, cudaStream_t);  \
  template cudaError_t softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t,    \
                                           bool, cudaStream_t);                                  \
  template cudaError_t sum_rows<T>(T*, const T*, T*, int64_t, int64_t, bool, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
