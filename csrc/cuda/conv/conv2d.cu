// 2-D convolution as im2col + GEMM, forward and backward. See conv2d.h.
//
// Forward, per chunk of images:   col = im2col(x);   y = col . W + b
// Backward, per chunk:            dW += col^T . dy;  dcol = dy . W^T;  dx = col2im(dcol)
//                                 db = column sums of dy (once)
// W (KH,KW,C,F) is read as a (KH*KW*C, F) matrix, dy (N,OH,OW,F) as (N*OH*OW, F).
#include "cuda/conv/conv2d.h"
#include "cuda/gemm/gemm.h"
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {


// The geometry in the index type I of a kernel: int32_t when every index of the
// launch fits (GPU integer division and remainder are several times cheaper in
// 32 bits, and these kernels do little else), int64_t otherwise.
template <typename I>
struct GeomI {
  I H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW;
  explicit GeomI(const Conv2dGeom& g)
      : H(I(g.H)), W(I(g.W)), C(I(g.C)), KH(I(g.KH)), KW(I(g.KW)), SH(I(g.SH)), SW(I(g.SW)),
        DH(I(g.DH)), DW(I(g.DW)), PT(I(g.PT)), PL(I(g.PL)), OH(I(g.OH)), OW(I(g.OW)) {}
};

// for (i = this thread; i < n; i += all threads), in I
#define FASTDL_GRID_LOOP_I(I, i, n)                                                   \
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < (n);              \
       i += I(gridDim.x) * I(blockDim.x))

template <typename T, typename I>
__global__ void im2col_kernel(T* col, const T* x, GeomI<I> g, I nb) {
  const I K = g.KH * g.KW * g.C;
  FASTDL_GRID_LOOP_I(I, idx, nb * g.OH * g.OW * K) {
    I q = idx % K, r = idx / K;
    I c = q % g.C, kw = (q / g.C) % g.KW, kh = q / (g.C * g.KW);
    I ow = r % g.OW, oh = (r / g.OW) % g.OH, n = r / (g.OW * g.OH);
    I ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
    I iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
    col[idx] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                   ? x[((n * g.H + ih) * g.W + iw) * g.C + c]
                   : T(0);
  }
}

// dx(n, ih, iw, c) = sum over taps (kh, kw) and outputs (oh, ow) with
// tap_input(oh, kh) == ih and tap_input(ow, kw) == iw of dcol((n,oh,ow), (kh,kw,c)).
template <typename T, typename I>
__global__ void col2im_kernel(T* dx, const T* col, GeomI<I> g, I nb) {
  const I K = g.KH * g.KW * g.C;
  FASTDL_GRID_LOOP_I(I, idx, nb * g.H * g.W * g.C) {
    I c = idx % g.C, iw = (idx / g.C) % g.W, ih = (idx / (g.C * g.W)) % g.H;
    I n = idx / (g.C * g.W * g.H);
    T s = T(0);
    for (I kh = 0; kh < g.KH; ++kh) {
      I th = ih + g.PT - kh * g.DH;  // = oh * SH
      if (th < 0 || th % g.SH != 0) continue;
      I oh = th / g.SH;
      if (oh >= g.OH) continue;
      for (I kw = 0; kw < g.KW; ++kw) {
        I tw = iw + g.PL - kw * g.DW;
        if (tw < 0 || tw % g.SW != 0) continue;
        I ow = tw / g.SW;
        if (ow >= g.OW) continue;
        s += col[((n * g.OH + oh) * g.OW + ow) * K + (kh * g.KW + kw) * g.C + c];
      }
    }
    dx[idx] = s;
  }
}

// 32-bit indices when the largest index of a launch over nb images, plus a grid's
// worth of threads (the grid-stride step), stays below 2^31.
bool fits_int32(const Conv2dGeom& g, int64_t nb) {
  const int64_t limit = int64_t(1) << 30;
  const int64_t cols = nb * g.OH * g.OW * g.KH * g.KW * g.C;
  const int64_t pixels = nb * g.H * g.W * g.C;
  return cols < limit && pixels < limit;
}

}  // namespace

template <typename T>
cudaError_t im2col(T* col, const T* x, const Conv2dGeom& g, int64_t nb, cudaStream_t stream) {
  int64_t total = nb * g.OH * g.OW * g.KH * g.KW * g.C;
  if (total <= 0) return cudaSuccess;
  if (fits_int32(g, nb))
    im2col_kernel<T, int32_t><<<blocks_for(total), kThreads, 0, stream>>>(
        col, x, GeomI<int32_t>(g), int32_t(nb));
  else
    im2col_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, stream>>>(
        col, x, GeomI<int64_t>(g), nb);
  return launch_status();
}

template <typename T>
cudaError_t col2im(T* dx, const T* col, const Conv2dGeom& g, int64_t nb, cudaStream_t stream) {
  int64_t total = nb * g.H * g.W * g.C;
  if (total <= 0) return cudaSuccess;
  if (fits_int32(g, nb))
    col2im_kernel<T, int32_t><<<blocks_for(total), kThreads, 0, stream>>>(
        dx, col, GeomI<int32_t>(g), int32_t(nb));
  else
    col2im_kernel<T, int64_t><<<blocks_for(total), kThreads, 0, stream>>>(
        dx, col, GeomI<int64_t>(g), nb);
  return launch_status();
}

template <typename T>
cudaError_t conv2d(T* y, const T* x, const T* w, const T* b, T* col, const Conv2dGeom& g, int64_t F,
                   int64_t chunk, Activation act, bool tf32, cudaStream_t stream) {
  const int64_t K = g.KH * g.KW * g.C, P = g.OH * g.OW;
  const bool pointwise = conv_is_pointwise(g);
  if (chunk < 1) chunk = 1;
  GemmEpilogue<T> ep{b, act};
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t nb = g.N - n0 < chunk ? g.N - n0 : chunk;
    const T* xin = x + n0 * g.H * g.W * g.C;
    const T* a = xin;
    if (!pointwise) {
      cudaError_t e = im2col<T>(col, xin, g, nb, stream);
      if (e != cudaSuccess) return e;
      a = col;
    }
    cudaError_t e = gemm_rm<T>(y + n0 * P * F, a, false, w, false, nb * P, F, K, T(0), ep, tf32,
                               stream);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, T* col,
                            T* dcol, T* partial, T* work, int64_t work_elems,
                            const Conv2dGeom& g, int64_t F, int64_t chunk, bool tf32,
                            cudaStream_t stream) {
  const int64_t K = g.KH * g.KW * g.C, P = g.OH * g.OW;
  const bool pointwise = conv_is_pointwise(g);
  if (chunk < 1) chunk = 1;
  GemmEpilogue<T> none{};
  cudaError_t e;
  if (g.N == 0 || P == 0) {  // no output pixels: dw = 0, dx = 0
    if (dw && K * F > 0 && (e = cudaMemsetAsync(dw, 0, size_t(K * F) * sizeof(T), stream)))
      return e;
    int64_t nx = g.N * g.H * g.W * g.C;
    if (dx && nx > 0 && (e = cudaMemsetAsync(dx, 0, size_t(nx) * sizeof(T), stream))) return e;
  }
  for (int64_t n0 = 0; n0 < g.N && P > 0; n0 += chunk) {
    const int64_t nb = g.N - n0 < chunk ? g.N - n0 : chunk;
    const T* xin = x + n0 * g.H * g.W * g.C;
    const T* dyc = dy + n0 * P * F;
    T* dxc = dx ? dx + n0 * g.H * g.W * g.C : nullptr;
    if (dw) {
      const T* a = xin;
      if (!pointwise) {
        if ((e = im2col<T>(col, xin, g, nb, stream))) return e;
        a = col;
      }
      // dW (K,F) (+)= col^T (K, nb*P) . dy (nb*P, F)
      if ((e = gemm_rm<T>(dw, a, true, dyc, false, K, F, nb * P, n0 == 0 ? T(0) : T(1), none,
                          tf32, stream, work, work_elems)))
        return e;
    }
    if (!dx) continue;
    // dcol (nb*P, K) = dy (nb*P, F) . W^T (F, K); pointwise: that is dx itself
    T* target = pointwise ? dxc : dcol;
    if ((e = gemm_rm<T>(target, dyc, false, w, true, nb * P, K, F, T(0), none, tf32, stream)))
      return e;
    if (!pointwise && (e = col2im<T>(dxc, dcol, g, nb, stream))) return e;
  }
  if (!db) return launch_status();
  return sum_rows<T>(db, dy, partial, g.N * P, F, false, stream);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t im2col<T>(T*, const T*, const Conv2dGeom&, int64_t, cudaStream_t);           \
  template cudaError_t col2im<T>(T*, const T*, const Conv2dGeom&, int64_t, cudaStream_t);           \
  template cudaError_t conv2d<T>(T*, const T*, const T*, const T*, T*, const Conv2dGeom&, int64_t,  \
                                 int64_t, Activation, bool, cudaStream_t);                                  \
  template cudaError_t conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, T*, T*, T*, \
                                          T*, int64_t, const Conv2dGeom&, int64_t, int64_t, bool,  \
                                          cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
