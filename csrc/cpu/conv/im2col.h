// The patch matrix ("im2col") of a convolution and its adjoint ("col2im"),
// for pixels [m0, m1) of the M = N*OH*OW output pixels (see conv2d.h for the
// matrix view: row m is pixel m's receptive field in (kh, kw, c) order).
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"

namespace fastdl::cpu {

// col (m1-m0, KH*KW*C) is overwritten; padding taps are zeros.
template <typename T>
void im2col(T* col /* (m1-m0, KH*KW*C) */, const T* x /* (N,H,W,C) */, const Conv2dGeom& g,
            int64_t m0, int64_t m1);

// The adjoint: adds row m - m0 of col (the gradient of pixel m's receptive
// field) into the pixels of dx it was read from (dx is accumulated; padding
// taps are dropped).
template <typename T>
void col2im(T* dx /* (N,H,W,C) */, const T* col /* (m1-m0, KH*KW*C) */, const Conv2dGeom& g,
            int64_t m0, int64_t m1);

}  // namespace fastdl::cpu
