// Conv2D with a ReLU followed by MaxPooling2D, forward, in one pass: the
// pooled output and the argmax codes of
//     max_pool2d(relu(conv2d(x, w) + b), pool, return_argmax=True)
// (the same bits, codes included: cpu/pool/max_pool2d.h), without storing the
// convolution's output. Pooling windows tile the output from its top-left
// corner (strides = pool size, no padding); rows and columns past the last
// window are dropped, and not computed. Training then goes back through
// conv2d_relu_max_pool2d_backward.
//
// Layers whose convolution conv2d runs by the direct kernels (conv2d.h: all
// but 1x1 and wide, deep ones) are computed in bands of output rows, whole
// pooling windows high, into a small per-thread buffer that is pooled while it
// is in cache. The others run conv2d_forward and max_pool2d_forward through a
// full-size buffer (the GEMM path has nothing to fuse with).
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// g: the convolution; pg: the pooling of its output (N, OH, OW, F), with
// KH,KW the window, SH,SW = KH,KW, no padding, OH = g.OH / KH, OW = g.OW / KW.
// y and argmax are overwritten. b may be null (no bias).
template <typename T>
void conv2d_relu_max_pool2d_forward(T* y /* (N,PH,PW,F) */, uint8_t* argmax /* (N,PH,PW,F) */,
                                    const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,F) */,
                                    const T* b /* (F,) or null */, const Conv2dGeom& g,
                                    const Conv2dGeom& pg, const Context& ctx);

// Its backward pass: dx (or null: not wanted), dw and db (or null: no bias),
// overwritten, for the upstream gradient dy of the pooled output and the
// forward pass's argmax codes. For finite x and w, the same bits as
//     dz = max_pool2d_backward_argmax(dy, argmax, relu=true)   (cpu/pool/max_pool2d.h)
//     conv2d_backward(dx, dw, db, dz, x, w)                     (automatic algorithm)
// without storing dz where conv2d_backward runs the direct kernels' bands
// (conv2d_backward_by_bands): each thread scatters one image's dz into its own
// buffer and takes that image's dw bands and dx while it is in cache. There,
// the rows and columns the pooling drops (zero dz) are skipped, as in the
// forward pass (direct_backward.h): an Inf or NaN of x that only they read
// does not turn dw into NaN as it does through the two ops.
template <typename T>
void conv2d_relu_max_pool2d_backward(T* dx /* (N,H,W,C) or null */, T* dw /* (KH,KW,C,F) */,
                                     T* db /* (F,) or null */, const T* dy /* (N,PH,PW,F) */,
                                     const uint8_t* argmax /* (N,PH,PW,F) */,
                                     const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,F) */,
                                     const Conv2dGeom& g, const Conv2dGeom& pg,
                                     const Context& ctx);

}  // namespace fastdl::cpu
