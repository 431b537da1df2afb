// One axis of a pooling window, shared by the average and max pooling kernels:
// output row oh (or column ow) covers input rows origin + t for the taps t in
// [t0, t1), which are only the taps inside x (valid_taps), so padding needs no
// special values. Internal linkage (anonymous namespace), so the per-ISA max
// pooling files each get their own copy.
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"

namespace fastdl::cpu {
namespace {

struct PoolTaps {
  int64_t t0, t1;   // taps [t0, t1) of the window lie inside x
  int64_t origin;   // input index of tap 0 (negative under padding)
};

inline PoolTaps pool_rows(const Conv2dGeom& g, int64_t oh) {
  PoolTaps p;
  valid_taps(oh, g.H, g.KH, g.SH, 1, g.PT, &p.t0, &p.t1);
  p.origin = oh * g.SH - g.PT;
  return p;
}

inline PoolTaps pool_cols(const Conv2dGeom& g, int64_t ow) {
  PoolTaps p;
  valid_taps(ow, g.W, g.KW, g.SW, 1, g.PL, &p.t0, &p.t1);
  p.origin = ow * g.SW - g.PL;
  return p;
}

}  // namespace
}  // namespace fastdl::cpu
