// GPU 2-D convolution (channels-last, Keras kernel layout) through im2col + GEMM,
// and pooling. Geometry (strides, dilation, resolved padding, output size) comes
// in a Conv2dGeom (common/conv_geometry.h, shared with the CPU kernels); the
// binding resolves "same" etc.
// Argument order: outputs, inputs, scratch, sizes, switches, stream.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "common/conv_geometry.h"
#include "cuda/gemm/gemm.h"

namespace fastdl::cuda {


// ---------------------------------------------------------------- conv2d.cu
// col row r = (n, oh, ow), column q = (kh, kw, c): the input pixel tap (kh, kw)
// of output (oh, ow) reads, zero in the padding. nb images starting at x.
template <typename T>
cudaError_t im2col(T* col /* (nb*OH*OW, KH*KW*C) */, const T* x /* (nb,H,W,C) */,
                   const Conv2dGeom& g, int64_t nb, cudaStream_t stream);
// The adjoint of im2col, as a gather (each dx element sums the col entries that
// read it; deterministic, no atomics). dx is overwritten.
template <typename T>
cudaError_t col2im(T* dx /* (nb,H,W,C) */, const T* col /* (nb*OH*OW, KH*KW*C) */,
                   const Conv2dGeom& g, int64_t nb, cudaStream_t stream);

// True when the convolution is a plain GEMM on x (1x1 kernel, stride 1, no
// padding): then no col scratch is needed.
inline bool conv_is_pointwise(const Conv2dGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PL == 0 &&
         g.OH == g.H && g.OW == g.W;
}

// y = act(conv(x, w) + b) (act: identity or relu, fused into the GEMM), images in chunks of `chunk` so that col holds
// chunk*OH*OW x KH*KW*C elements (unused for pointwise convolutions).
template <typename T>
cudaError_t conv2d(T* y /* (N,OH,OW,F) */, const T* x /* (N,H,W,C) */,
                   const T* w /* (KH,KW,C,F) */, const T* b /* (F,) or null */,
                   T* col /* (chunk*OH*OW, KH*KW*C) scratch */, const Conv2dGeom& g, int64_t F,
                   int64_t chunk, Activation act, bool tf32, cudaStream_t stream);

// dx, dw, db overwritten; dx, or dw and db together, may be null (not computed: without
// dw, x's values are not read and col is unused). dcol is scratch of col's size (unused for pointwise);
// partial is sum_rows_partials(N*OH*OW) x F scratch for db; work, of work_elems =
// gemm_workspace_elems(KH*KW*C, F, chunk*OH*OW) (may be 0), lets dw's product split k.
template <typename T>
cudaError_t conv2d_backward(T* dx /* (N,H,W,C) */, T* dw /* (KH,KW,C,F) */, T* db /* (F,) */,
                            const T* dy /* (N,OH,OW,F) */, const T* x /* (N,H,W,C) */,
                            const T* w /* (KH,KW,C,F) */, T* col /* scratch */,
                            T* dcol /* scratch */, T* partial /* scratch */,
                            T* work /* (work_elems,) scratch */, int64_t work_elems,
                            const Conv2dGeom& g, int64_t F, int64_t chunk, bool tf32,
                            cudaStream_t stream);

// ---------------------------------------------------------------- depthwise_conv2d.cu
// y = act(depthwise(x, w) + b): channel j = c*M + m of y convolves channel c of x
// with w[:, :, c, m]; F = g.F = C*M. act: identity or relu; b may be null.
template <typename T>
cudaError_t depthwise_conv2d(T* y /* (N,OH,OW,C*M) */, const T* x /* (N,H,W,C) */,
                             const T* w /* (KH,KW,C,M) */, const T* b /* (C*M,) or null */,
                             const Conv2dGeom& g, Activation act, cudaStream_t stream);
// dx (may be null: not computed), dw, db (may be null) overwritten.
template <typename T>
cudaError_t depthwise_conv2d_backward(T* dx /* (N,H,W,C) */, T* dw /* (KH,KW,C,M) */,
                                      T* db /* (C*M,) */, const T* dy /* (N,OH,OW,C*M) */,
                                      const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,M) */,
                                      const Conv2dGeom& g, cudaStream_t stream);

// ---------------------------------------------------------------- pool2d.cu
// Window (KH,KW), strides (SH,SW), padding (PT,PL) from g (DH = DW = 1). Padding
// never wins a max and is not counted in an average; a window entirely in the
// padding gives 0. Max ties go to the first maximum in (kh, kw) order.
template <typename T>
cudaError_t max_pool2d(T* y /* (N,OH,OW,C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
                       cudaStream_t stream);
template <typename T>
cudaError_t max_pool2d_backward(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                                const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
                                bool relu /* x is a ReLU's output: dx * (x > 0) */,
                                cudaStream_t stream);
template <typename T>
cudaError_t avg_pool2d(T* y /* (N,OH,OW,C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
                       cudaStream_t stream);
template <typename T>
cudaError_t avg_pool2d_backward(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                                const Conv2dGeom& g, cudaStream_t stream);
// Mean over H*W.
template <typename T>
cudaError_t global_avg_pool2d(T* y /* (N,C) */, const T* x /* (N,H*W,C) */, int64_t N, int64_t HW,
                              int64_t C, cudaStream_t stream);
template <typename T>
cudaError_t global_avg_pool2d_backward(T* dx /* (N,H*W,C) */, const T* dy /* (N,C) */, int64_t N,
                                       int64_t HW, int64_t C, cudaStream_t stream);

}  // namespace fastdl::cuda
