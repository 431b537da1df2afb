// Depthwise 2-D convolution, forward and backward (the CPU twin:
// cpu/conv/depthwise_conv2d.h). y (N,OH,OW,C*M): channel j = c*M + m of y
// reads channel c of x with w[kh,kw,c,m]. Every pass gathers (one thread per
// output element sums what reaches it), so results are deterministic without
// atomics. See conv2d.h.
#include "cuda/conv/conv2d.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// y[n,oh,ow,j] = act(b[j] + sum over the valid taps of x[n,ih,iw,j/M] * w[kh,kw,j]).
template <typename T>
__global__ void depthwise_forward_kernel(T* y /* (N,OH,OW,C*M) */, const T* x /* (N,H,W,C) */,
                                         const T* w /* (KH,KW,C,M) */,
                                         const T* b /* (C*M,) or null */, Conv2dGeom g,
                                         bool relu) {
  const int64_t M = g.F / g.C;
  FASTDL_GRID_LOOP(idx, g.N * g.OH * g.OW * g.F) {
    const int64_t j = idx % g.F, ow = (idx / g.F) % g.OW, oh = (idx / (g.F * g.OW)) % g.OH;
    const int64_t n = idx / (g.F * g.OW * g.OH), c = j / M;
    int64_t kh0, kh1, kw0, kw1;
    valid_taps(oh, g.H, g.KH, g.SH, g.DH, g.PT, &kh0, &kh1);
    valid_taps(ow, g.W, g.KW, g.SW, g.DW, g.PL, &kw0, &kw1);
    T s = b ? b[j] : T(0);
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
      for (int64_t kw = kw0; kw < kw1; ++kw) {
        const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
        s += x[((n * g.H + ih) * g.W + iw) * g.C + c] * w[(kh * g.KW + kw) * g.F + j];
      }
    }
    y[idx] = relu && !(s > T(0)) ? T(0) : s;
  }
}

// dx[n,ih,iw,c] = sum over (kh, kw, m) whose output (oh, ow) reads (ih, iw) of
// dy[n,oh,ow,c*M+m] * w[kh,kw,c,m]: oh*SH = ih + PT - kh*DH, same along w.
template <typename T>
__global__ void depthwise_dx_kernel(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C*M) */,
                                    const T* w /* (KH,KW,C,M) */, Conv2dGeom g) {
  const int64_t M = g.F / g.C;
  FASTDL_GRID_LOOP(idx, g.N * g.H * g.W * g.C) {
    const int64_t c = idx % g.C, iw = (idx / g.C) % g.W, ih = (idx / (g.C * g.W)) % g.H;
    const int64_t n = idx / (g.C * g.W * g.H);
    T s = T(0);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t th = ih + g.PT - kh * g.DH;
      if (th < 0 || th % g.SH != 0 || th / g.SH >= g.OH) continue;
      const int64_t oh = th / g.SH;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t tw = iw + g.PL - kw * g.DW;
        if (tw < 0 || tw % g.SW != 0 || tw / g.SW >= g.OW) continue;
        const int64_t ow = tw / g.SW;
        const T* d = dy + ((n * g.OH + oh) * g.OW + ow) * g.F + c * M;
        const T* wr = w + (kh * g.KW + kw) * g.F + c * M;
        for (int64_t m = 0; m < M; ++m) s += d[m] * wr[m];
      }
    }
    dx[idx] = s;
  }
}

// dw[kh,kw,j] = sum over (n, oh, ow) with tap (kh, kw) inside x of
// x[n,ih,iw,j/M] * dy[n,oh,ow,j]; one thread per element of dw.
template <typename T>
__global__ void depthwise_dw_kernel(T* dw /* (KH,KW,C,M) */, const T* dy /* (N,OH,OW,C*M) */,
                                    const T* x /* (N,H,W,C) */, Conv2dGeom g) {
  const int64_t M = g.F / g.C;
  FASTDL_GRID_LOOP(idx, g.KH * g.KW * g.F) {
    const int64_t j = idx % g.F, kw = (idx / g.F) % g.KW, kh = idx / (g.F * g.KW);
    const int64_t c = j / M;
    T s = T(0);
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
          if (iw < 0 || iw >= g.W) continue;
          s += x[((n * g.H + ih) * g.W + iw) * g.C + c] * dy[((n * g.OH + oh) * g.OW + ow) * g.F + j];
        }
      }
    dw[idx] = s;
  }
}

// db[j] = sum of dy[..., j] over the N*OH*OW pixels.
template <typename T>
__global__ void depthwise_db_kernel(T* db /* (F,) */, const T* dy /* (rows,F) */, int64_t rows,
                                    int64_t F) {
  FASTDL_GRID_LOOP(j, F) {
    T s = T(0);
    for (int64_t r = 0; r < rows; ++r) s += dy[r * F + j];
    db[j] = s;
  }
}

}  // namespace

template <typename T>
cudaError_t depthwise_conv2d(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                             Activation act, cudaStream_t stream) {
  const int64_t total = g.N * g.OH * g.OW * g.F;
  if (total <= 0) return cudaSuccess;
  depthwise_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      y, x, w, b, g, act == Activation::relu);
  return launch_status();
}

template <typename T>
cudaError_t depthwise_conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                      const Conv2dGeom& g, cudaStream_t stream) {
  const int64_t nx = g.N * g.H * g.W * g.C, nw = g.KH * g.KW * g.F;
  if (dx && nx > 0)
    depthwise_dx_kernel<T><<<blocks_for(nx), kThreads, 0, stream>>>(dx, dy, w, g);
  if (nw > 0) depthwise_dw_kernel<T><<<blocks_for(nw), kThreads, 0, stream>>>(dw, dy, x, g);
  if (db && g.F > 0)
    depthwise_db_kernel<T><<<blocks_for(g.F), kThreads, 0, stream>>>(db, dy, g.N * g.OH * g.OW,
                                                                      g.F);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T)                                                                 \
  template cudaError_t depthwise_conv2d<T>(T*, const T*, const T*, const T*, const Conv2dGeom&, \
                                           Activation, cudaStream_t);                         \
  template cudaError_t depthwise_conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*,  \
                                                    const Conv2dGeom&, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
