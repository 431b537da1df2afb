// 2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,F) (Keras layout),
// y (N,OH,OW,F).
//
// Viewed as matrices, w is (K, F) with K = KH*KW*C in (kh, kw, c) order: row
// m of the patch matrix (M, K), M = N*OH*OW, is output pixel m's receptive
// field in that order (zeros where it reads padding), and
//     y (M, F)   = patches . w + b
//     dw (K, F)  = patches^T . dy,          db (F,) = sum of dy over M
//     dx         = col2im(dy . w^T).
// Two algorithms evaluate them (conv2d.cpp's header comment has the routes):
//   direct:  register-blocked kernels that read the taps in place, no patch matrix;
//   im2col:  the patch matrix, built in chunks of pixels (im2col.h), times w by the
//            GEMM engine (a 1x1 stride-1 unpadded layer: x already is the patch matrix);
// and `automatic` picks one per layer shape (conv2d_pick_algorithm).
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"
#include "cpu/gemm/gemm.h"

namespace fastdl::cpu {

enum class ConvAlgorithm : int { automatic = 0, direct = 1, im2col = 2 };

// The algorithm `automatic` runs for this layer (direct or im2col), forward or backward.
ConvAlgorithm conv2d_pick_algorithm(const Conv2dGeom& g, bool backward);

// Whether conv2d_backward (automatic) takes this layer's dw and db by the
// direct kernels' bands and, with need_dx, its dx image by image by the dx
// kernel (direct_backward.h): the route a fused caller can run piece by piece
// for the same bits.
bool conv2d_backward_by_bands(const Conv2dGeom& g, bool need_dx, int nthreads);

// y is overwritten with act(conv(x, w) + b). b may be null (no bias).
template <typename T>
void conv2d_forward(T* y /* (N,OH,OW,F) */, const T* x /* (N,H,W,C) */,
                    const T* w /* (KH,KW,C,F) */, const T* b /* (F,) or null */,
                    const Conv2dGeom& g, Activation act, const Context& ctx,
                    ConvAlgorithm algo = ConvAlgorithm::automatic);

// Gradients of y = conv(x, w) + b for the upstream gradient dy. Every output is
// overwritten; dx, dw or db may be null when not wanted. With dw null, x's
// values are not read (dx alone is conv2d's input gradient, the forward pass
// of a transposed convolution).
template <typename T>
void conv2d_backward(T* dx /* (N,H,W,C) or null */, T* dw /* (KH,KW,C,F) or null */,
                     T* db /* (F,) or null */, const T* dy /* (N,OH,OW,F) */,
                     const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,F) */,
                     const Conv2dGeom& g, const Context& ctx,
                     ConvAlgorithm algo = ConvAlgorithm::automatic);

}  // namespace fastdl::cpu
