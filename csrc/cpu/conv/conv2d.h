// 2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,F) (Keras layout),
// y (N,OH,OW,F).
//
// Viewed as matrices, w is (K, F) with K = KH*KW*C in (kh, kw, c) order: row
// m of the patch matrix (M, K), M = N*OH*OW, is output pixel m's receptive
// field in that order (zeros where it reads padding), and
//     y (M, F)   = patches . w + b
//     dw (K, F)  = patches^T . dy,          db (F,) = sum of dy over M
//     dx         = col2im(dy . w^T).
// conv2d.cpp evaluates these without materialising the patch matrix where
// that is faster (see its header comment for the routes).
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"
#include "cpu/gemm/gemm.h"

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

// The adjoint of the patch matrix: adds row m - m0 of col (the gradient of
// pixel m's receptive field) into the pixels of dx it was read from (dx is
// accumulated; padding taps are dropped).
template <typename T>
void col2im(T* dx /* (N,H,W,C) */, const T* col /* (m1-m0, KH*KW*C) */, const Conv2dGeom& g,
            int64_t m0, int64_t m1);

}  // namespace fastdl::cpu
