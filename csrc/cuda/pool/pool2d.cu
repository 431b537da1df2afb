// Max, average and global-average pooling, forward and backward. The backward
// passes gather (one thread per input element sums what reaches it), so they
// are deterministic and need no atomics. See conv2d.h.
#include "cuda/conv/conv2d.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {


// Position of the first maximum of window (oh, ow) of channel c of image n
// (padding skipped); false when the window lies entirely in the padding. The
// forward and backward passes both use it, so they agree on ties.
template <typename T>
__device__ bool window_argmax(const T* x, const Conv2dGeom& g, int64_t n, int64_t oh, int64_t ow,
                              int64_t c, int64_t* bh, int64_t* bw, T* best) {
  bool found = false;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    int64_t ih = tap_input(oh, kh, g.SH, int64_t(1), g.PT);
    if (ih < 0 || ih >= g.H) continue;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      int64_t iw = tap_input(ow, kw, g.SW, int64_t(1), g.PL);
      if (iw < 0 || iw >= g.W) continue;
      T v = x[((n * g.H + ih) * g.W + iw) * g.C + c];
      if (!found || v > *best) { *best = v; *bh = ih; *bw = iw; found = true; }
    }
  }
  return found;
}

// Number of window taps of (oh, ow) inside the image (valid_taps, shared with the CPU).
__device__ __forceinline__ int64_t window_count(const Conv2dGeom& g, int64_t oh, int64_t ow) {
  int64_t h0, h1, w0, w1;
  valid_taps(oh, g.H, g.KH, g.SH, 1, g.PT, &h0, &h1);
  valid_taps(ow, g.W, g.KW, g.SW, 1, g.PL, &w0, &w1);
  return (h1 - h0) * (w1 - w0);
}

// Range [lo, hi) of outputs along one axis whose window covers input i:
// o*S - P <= i < o*S - P + K.
__device__ __forceinline__ void covering(int64_t i, int64_t K, int64_t S, int64_t P, int64_t O,
                                         int64_t* lo, int64_t* hi) {
  int64_t t = i + P - K + 1;  // o*S >= t
  int64_t a = t <= 0 ? 0 : (t + S - 1) / S;
  int64_t b = (i + P) / S + 1;  // o*S <= i + P
  *lo = a;
  *hi = b < O ? b : O;
}

template <typename T>
__global__ void max_pool_kernel(T* y, const T* x, Conv2dGeom g) {
  FASTDL_GRID_LOOP(idx, g.N * g.OH * g.OW * g.C) {
    int64_t c = idx % g.C, ow = (idx / g.C) % g.OW, oh = (idx / (g.C * g.OW)) % g.OH;
    int64_t n = idx / (g.C * g.OW * g.OH);
    int64_t bh, bw;
    T best = T(0);
    y[idx] = window_argmax(x, g, n, oh, ow, c, &bh, &bw, &best) ? best : T(0);
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(T* dx, const T* dy, const T* x, Conv2dGeom g, bool relu) {
  FASTDL_GRID_LOOP(idx, g.N * g.H * g.W * g.C) {
    int64_t c = idx % g.C, iw = (idx / g.C) % g.W, ih = (idx / (g.C * g.W)) % g.H;
    int64_t n = idx / (g.C * g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.KH, g.SH, g.PT, g.OH, &oh0, &oh1);
    covering(iw, g.KW, g.SW, g.PL, g.OW, &ow0, &ow1);
    T s = T(0);
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        int64_t bh, bw;
        T best;
        if (window_argmax(x, g, n, oh, ow, c, &bh, &bw, &best) && bh == ih && bw == iw)
          s += dy[((n * g.OH + oh) * g.OW + ow) * g.C + c];
      }
    dx[idx] = relu && !(x[idx] > T(0)) ? T(0) : s;  // relu: the gradient of the ReLU's input
  }
}

template <typename T>
__global__ void avg_pool_kernel(T* y, const T* x, Conv2dGeom g) {
  FASTDL_GRID_LOOP(idx, g.N * g.OH * g.OW * g.C) {
    int64_t c = idx % g.C, ow = (idx / g.C) % g.OW, oh = (idx / (g.C * g.OW)) % g.OH;
    int64_t n = idx / (g.C * g.OW * g.OH);
    T s = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t ih = tap_input(oh, kh, g.SH, int64_t(1), g.PT);
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        int64_t iw = tap_input(ow, kw, g.SW, int64_t(1), g.PL);
        if (iw >= 0 && iw < g.W) s += x[((n * g.H + ih) * g.W + iw) * g.C + c];
      }
    }
    int64_t cnt = window_count(g, oh, ow);
    y[idx] = cnt > 0 ? s / T(cnt) : T(0);
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(T* dx, const T* dy, Conv2dGeom g) {
  FASTDL_GRID_LOOP(idx, g.N * g.H * g.W * g.C) {
    int64_t c = idx % g.C, iw = (idx / g.C) % g.W, ih = (idx / (g.C * g.W)) % g.H;
    int64_t n = idx / (g.C * g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.KH, g.SH, g.PT, g.OH, &oh0, &oh1);
    covering(iw, g.KW, g.SW, g.PL, g.OW, &ow0, &ow1);
    T s = T(0);
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        s += dy[((n * g.OH + oh) * g.OW + ow) * g.C + c] / T(window_count(g, oh, ow));
    dx[idx] = s;
  }
}

template <typename T>
__global__ void global_avg_kernel(T* y, const T* x, int64_t N, int64_t HW, int64_t C) {
  FASTDL_GRID_LOOP(idx, N * C) {
    int64_t n = idx / C, c = idx % C;
    const T* xp = x + n * HW * C + c;
    T s = T(0);
    for (int64_t p = 0; p < HW; ++p) s += xp[p * C];
    y[idx] = s / T(HW);
  }
}

template <typename T>
__global__ void global_avg_backward_kernel(T* dx, const T* dy, int64_t N, int64_t HW, int64_t C) {
  FASTDL_GRID_LOOP(idx, N * HW * C) {
    int64_t c = idx % C, n = idx / (HW * C);
    dx[idx] = dy[n * C + c] / T(HW);
  }
}

}  // namespace

template <typename T>
cudaError_t max_pool2d(T* y, const T* x, const Conv2dGeom& g, cudaStream_t stream) {
  int64_t total = g.N * g.OH * g.OW * g.C;
  if (total <= 0) return cudaSuccess;
  max_pool_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(y, x, g);
  return launch_status();
}

template <typename T>
cudaError_t max_pool2d_backward(T* dx, const T* dy, const T* x, const Conv2dGeom& g, bool relu,
                                cudaStream_t stream) {
  int64_t total = g.N * g.H * g.W * g.C;
  if (total <= 0) return cudaSuccess;
  max_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(dx, dy, x, g, relu);
  return launch_status();
}

template <typename T>
cudaError_t avg_pool2d(T* y, const T* x, const Conv2dGeom& g, cudaStream_t stream) {
  int64_t total = g.N * g.OH * g.OW * g.C;
  if (total <= 0) return cudaSuccess;
  avg_pool_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(y, x, g);
  return launch_status();
}

template <typename T>
cudaError_t avg_pool2d_backward(T* dx, const T* dy, const Conv2dGeom& g, cudaStream_t stream) {
  int64_t total = g.N * g.H * g.W * g.C;
  if (total <= 0) return cudaSuccess;
  avg_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(dx, dy, g);
  return launch_status();
}

template <typename T>
cudaError_t global_avg_pool2d(T* y, const T* x, int64_t N, int64_t HW, int64_t C,
                              cudaStream_t stream) {
  if (N * C <= 0) return cudaSuccess;
  global_avg_kernel<T><<<blocks_for(N * C), kThreads, 0, stream>>>(y, x, N, HW, C);
  return launch_status();
}

template <typename T>
cudaError_t global_avg_pool2d_backward(T* dx, const T* dy, int64_t N, int64_t HW, int64_t C,
                                       cudaStream_t stream) {
  if (N * HW * C <= 0) return cudaSuccess;
  global_avg_backward_kernel<T><<<blocks_for(N * HW * C), kThreads, 0, stream>>>(dx, dy, N, HW, C);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T)                                                                  \
  template cudaError_t max_pool2d<T>(T*, const T*, const Conv2dGeom&, cudaStream_t);               \
  template cudaError_t max_pool2d_backward<T>(T*, const T*, const T*, const Conv2dGeom&, bool,     \
                                              cudaStream_t);                                   \
  template cudaError_t avg_pool2d<T>(T*, const T*, const Conv2dGeom&, cudaStream_t);               \
  template cudaError_t avg_pool2d_backward<T>(T*, const T*, const Conv2dGeom&, cudaStream_t);      \
  template cudaError_t global_avg_pool2d<T>(T*, const T*, int64_t, int64_t, int64_t,           \
                                            cudaStream_t);                                     \
  template cudaError_t global_avg_pool2d_backward<T>(T*, const T*, int64_t, int64_t, int64_t,  \
                                                     cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
