// Geometry of 2-D convolution and pooling on channels-last images, host/device:
// output sizes, Keras/TF "same" padding, and the input pixel a window tap reads.
//
//   x (N,H,W,C), kernel or pool window (KH,KW), strides (SH,SW), dilation (DH,DW),
//   padding (PT,PB) rows and (PL,PR) columns, output (N,OH,OW,·).
//   Output pixel (oh,ow), tap (kh,kw) reads input row  ih = oh*SH - PT + kh*DH
//                                          and column  iw = ow*SW - PL + kw*DW
//   (outside [0,H) x [0,W) it reads the zero padding).
#pragma once
#include <stdint.h>

#include "common/hd.h"

namespace fastdl::hd {

struct Geom2d {
  int64_t N, H, W, C;     // input
  int64_t KH, KW;         // window
  int64_t SH, SW;         // strides
  int64_t DH, DW;         // dilation (1 for pooling)
  int64_t PT, PL;         // padding before (top, left); after is implied by OH, OW
  int64_t OH, OW;         // output
};

// Extent of a dilated window: (k - 1) * d + 1.
FASTDL_HD int64_t window_extent(int64_t k, int64_t d) { return (k - 1) * d + 1; }

// floor((in + pad_lo + pad_hi - extent) / stride) + 1, or 0 when the window does not fit.
FASTDL_HD int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t dil,
                                int64_t pad_lo, int64_t pad_hi) {
  int64_t span = in + pad_lo + pad_hi - window_extent(k, dil);
  return span < 0 ? 0 : span / stride + 1;
}

// Keras/TF "same": out = ceil(in / stride); the padding needed for that is split
// with the smaller half before (top/left) and the larger half after.
FASTDL_HD void same_padding(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t* pad_lo,
                            int64_t* pad_hi) {
  int64_t out = (in + stride - 1) / stride;
  int64_t total = (out - 1) * stride + window_extent(k, dil) - in;
  if (total < 0) total = 0;
  *pad_lo = total / 2;
  *pad_hi = total - total / 2;
}

// Input row (or column) that output position o, tap t reads.
FASTDL_HD int64_t tap_input(int64_t o, int64_t t, int64_t stride, int64_t dil, int64_t pad_lo) {
  return o * stride - pad_lo + t * dil;
}

}  // namespace fastdl::hd
