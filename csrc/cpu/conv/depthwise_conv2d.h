// Depthwise 2-D convolution, channels-last: every input channel c is convolved
// with its own M = depth_multiplier filters,
//     y[n,oh,ow,c*M+m] = b[c*M+m] + sum_{kh,kw} x[n, ih, iw, c] * w[kh,kw,c,m],
//     ih = oh*SH - PT + kh*DH,  iw = ow*SW - PL + kw*DW  (taps in the padding read 0).
// x (N,H,W,C), w (KH,KW,C,M) (Keras layout), y (N,OH,OW,C*M). The geometry is a
// Conv2dGeom with C input channels and F = C*M output channels.
//
// No patch matrix and no GEMM: each output pixel reads its KH*KW input pixels in
// place and multiplies them by the matching kernel rows, vectorised across the
// channels (contiguous in x, w and y). Backward does dx (a scatter into the
// image the thread owns), dw and db in one pass over dy.
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/gemm/gemm.h"
#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// y overwritten with act(depthwise(x, w) + b); act is linear or relu, b may be null.
template <typename T>
void depthwise_conv2d_forward(T* y /* (N,OH,OW,C*M) */, const T* x /* (N,H,W,C) */,
                              const T* w /* (KH,KW,C,M) */, const T* b /* (C*M,) or null */,
                              const Conv2dGeom& g, Activation act, const Context& ctx);

// Gradients of y = depthwise(x, w) + b for dy. Every output is overwritten; dx
// and db may be null when not wanted.
template <typename T>
void depthwise_conv2d_backward(T* dx /* (N,H,W,C) or null */, T* dw /* (KH,KW,C,M) */,
                               T* db /* (C*M,) or null */, const T* dy /* (N,OH,OW,C*M) */,
                               const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,M) */,
                               const Conv2dGeom& g, const Context& ctx);

// The kernels (depthwise_conv2d_kernels.cpp, one build per capability level).
//   rows:  y rows [oh0, oh1) of image n (act(... + b), relu when `relu`).
//   image: for image n, dx (its image, overwritten; skipped when null), and
//          dw (KH,KW,C,M) += and db (C*M,) += (skipped when null).
struct DepthwiseConvKernels {
  template <typename T>
  using Rows = void (*)(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                        int64_t n, int64_t oh0, int64_t oh1, bool relu);
  template <typename T>
  using Image = void (*)(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                         const Conv2dGeom& g, int64_t n);
  Rows<float> rows_f32;
  Rows<double> rows_f64;
  Image<float> image_f32;
  Image<double> image_f64;

  template <typename T>
  Rows<T> rows() const {
    if constexpr (sizeof(T) == sizeof(float)) return rows_f32; else return rows_f64;
  }
  template <typename T>
  Image<T> image() const {
    if constexpr (sizeof(T) == sizeof(float)) return image_f32; else return image_f64;
  }
};
inline DispatchTable<DepthwiseConvKernels> depthwise_conv_kernels;

}  // namespace fastdl::cpu
