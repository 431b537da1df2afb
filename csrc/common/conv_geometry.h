// Output size and padding arithmetic of 2-D convolution and pooling, shared by
// the CPU kernels and their CUDA twins (host/device).
//
// Along one axis, an input of length `in`, padded with `lo` zeros before and
// `hi` after, is covered by windows of `k` taps spaced `d` apart (dilation),
// whose starts step by `s` (stride). Output o reads input rows
//     o*s - lo + t*d,   t = 0 .. k-1
// and the taps that land outside [0, in) read padding.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace fastdl {
// Internal linkage on purpose: these are also compiled into the *_kernels.cpp
// kernels at every capability level, and an out-of-line copy built with AVX flags must not
// be picked by the linker for generic code.
namespace {

// Span of a dilated window: k taps, d apart.
FASTDL_HD int64_t dilated_extent(int64_t k, int64_t d) { return (k - 1) * d + 1; }

// Number of whole windows that fit in the padded input (0 when none does).
FASTDL_HD int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo,
                                int64_t hi) {
  const int64_t room = in + lo + hi - dilated_extent(k, d);
  return room < 0 ? 0 : room / s + 1;
}

// Keras/TensorFlow 'same' padding: out = ceil(in / s); the total padding
// needed for that is split with the odd element going after (bottom/right).
FASTDL_HD void same_padding(int64_t in, int64_t k, int64_t s, int64_t d, int64_t* lo,
                            int64_t* hi) {
  const int64_t out = (in + s - 1) / s;
  int64_t total = (out - 1) * s + dilated_extent(k, d) - in;
  if (total < 0) total = 0;
  *lo = total / 2;
  *hi = total - *lo;
}

// Input row (or column) that tap t of output o reads: o*s - lo + t*d (outside
// [0, in) it reads padding). I: int64_t, or int32_t where a kernel knows its
// indices fit (32-bit arithmetic is several times faster on a GPU).
template <typename I>
FASTDL_HD I tap_input(I o, I t, I s, I d, I lo) {
  return o * s - lo + t * d;
}

// First and one-past-last tap t of output o whose input row o*s - lo + t*d is
// inside [0, in): the taps that do not read padding.
FASTDL_HD void valid_taps(int64_t o, int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo,
                          int64_t* t0, int64_t* t1) {
  const int64_t start = o * s - lo;
  int64_t a = 0, b = k;
  if (start < 0) a = (-start + d - 1) / d;                 // first t with start + t*d >= 0
  if (start + (k - 1) * d >= in) b = (in - start + d - 1) / d;  // first t with start + t*d >= in
  if (b < a) b = a;
  *t0 = a;
  *t1 = b;
}

}  // namespace

// Everything a convolution or pooling kernel needs to know about its shapes.
// x is (N,H,W,C); the window is (KH,KW) with strides (SH,SW), dilation (DH,DW)
// and padding top/bottom/left/right (PT,PB,PL,PR); y is (N,OH,OW,F) for a
// convolution with F filters, (N,OH,OW,C) for pooling (F unused).
struct Conv2dGeom {
  int64_t N, H, W, C;
  int64_t KH, KW, F;
  int64_t SH, SW, DH, DW;
  int64_t PT, PB, PL, PR;
  int64_t OH, OW;
};

}  // namespace fastdl
