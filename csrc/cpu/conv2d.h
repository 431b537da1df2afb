// 2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,F) (Keras layout),
// y (N,OH,OW,F). Forward and backward by im2col + the GEMM engine.
//
// Viewed as matrices, w is (K, F) with K = KH*KW*C in (kh, kw, c) order, which
// is exactly the order im2col lays one output pixel's receptive field in, so
//     y (M, F)   = patches (M, K) . w (K, F) + b,        M = N*OH*OW
//     dw (K, F)  = patches^T . dy
//     dpatches   = dy . w^T, scattered back into dx by col2im
//     db (F,)    = sum of dy over M.
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/context.h"
#include "cpu/gemm.h"

namespace fastdl::cpu {

// y is overwritten with act(conv(x, w) + b). b may be null (no bias).
template <typename T>
void conv2d_forward(T* y /* (N,OH,OW,F) */, const T* x /* (N,H,W,C) */,
                    const T* w /* (KH,KW,C,F) */, const T* b /* (F,) or null */,
                    const Conv2dGeom& g, Activation act, const Context& ctx);

// Gradients of y = conv(x, w) + b for the upstream gradient dy. Every output is
// overwritten; dx or db may be null when not wanted.
template <typename T>
void conv2d_backward(T* dx /* (N,H,W,C) or null */, T* dw /* (KH,KW,C,F) */,
                     T* db /* (F,) or null */, const T* dy /* (N,OH,OW,F) */,
                     const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,F) */,
                     const Conv2dGeom& g, const Context& ctx);

// im2col for output pixels [m0, m1) of the flat (N*OH*OW) order: row m - m0 of
// col (overwritten) is the receptive field of pixel m, zeros where it reads padding.
template <typename T>
void im2col(T* col /* (m1-m0, KH*KW*C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
            int64_t m0, int64_t m1);

// The adjoint of im2col: adds row m - m0 of col into the pixels of dx it was
// read from (dx is accumulated; padding taps are dropped).
template <typename T>
void col2im(T* dx /* (N,H,W,C) */, const T* col /* (m1-m0, KH*KW*C) */, const Conv2dGeom& g,
            int64_t m0, int64_t m1);

}  // namespace fastdl::cpu
