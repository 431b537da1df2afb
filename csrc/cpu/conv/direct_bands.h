// The band machinery of the direct convolution kernels (direct.h), shared by
// conv2d.cpp and the fused conv2d_max_pool2d.cpp: the work is split into bands
// of a few output rows of one image, whose taps are read in place from x or
// from a zero-padded copy of the band's input rows. Portable driver code (no
// ISA flags): include it only from driver sources, never from *_kernels.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"
#include "cpu/runtime/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

// Multiply-adds of the layer (forward; each backward product costs the same).
inline double conv_macs(const Conv2dGeom& g) {
  // in doubles: the int64 products may overflow for huge geometries
  return double(g.N) * double(g.OH) * double(g.OW) * double(g.KH) * double(g.KW) *
         double(g.C) * double(g.F);
}

// direct.h reads the taps in place, without a patch matrix. The work
// is split into bands of about kDirectBand output pixels (a few output rows of
// one image). In x, or in a zero-padded copy of the band's input rows (padded
// width Wp) when the band touches padding, tap (kh, kw, c) of output pixel
// (oh, ow) sits at a fixed offset from the pixel's first tap.
// A band's input rows and outputs (dy for dw) are walked once per register
// block: they should stay in L1. Against 128 pixels (1 thread, min of 15
// interleaved runs, MNIST convnet b64): 64 ran the first layer's forward pass
// in 0.73x and its dw in 0.66x the time, the second layer's dw in 0.86x, its
// forward pass and the 56x56x64 and 16x16x64 'same' layers within 2-7%
// (48 or 40: the 56x56 layer 3-4% slower).
inline constexpr int64_t kDirectBand = 64;

struct DirectPlan {
  int64_t band_rows;  // output rows per band
  int64_t bands;      // bands per image
  int64_t in_rows;    // input rows a band reads (at most)
  int64_t Wp;         // padded width
};

// row_multiple: bands of a multiple of that many rows (at most g.OH, which
// should then be a multiple too: the fused pooling takes whole windows).
inline DirectPlan direct_plan(const Conv2dGeom& g, int64_t row_multiple = 1) {
  DirectPlan p;
  const int64_t rows = std::max<int64_t>((kDirectBand + g.OW - 1) / g.OW, 1);
  p.band_rows = std::min<int64_t>((rows + row_multiple - 1) / row_multiple * row_multiple, g.OH);
  p.bands = (g.OH + p.band_rows - 1) / p.band_rows;
  p.in_rows = (p.band_rows - 1) * g.SH + (g.KH - 1) * g.DH + 1;
  p.Wp = g.W + g.PL + g.PR;
  return p;
}

// Elements of one band buffer (in_rows, Wp, C). Huge (legal) strides,
// dilations or paddings would make it overflow or exceed any memory: that is
// a std::bad_alloc (MemoryError in Python), thrown before any parallel region.
inline int64_t direct_buf_size(const DirectPlan& p, const Conv2dGeom& g) {
  int64_t rows, size;
  if (__builtin_mul_overflow(p.band_rows - 1, g.SH, &rows) ||
      __builtin_add_overflow(rows, (g.KH - 1) * g.DH + 1, &rows) ||
      __builtin_mul_overflow(rows, p.Wp, &size) || __builtin_mul_overflow(size, g.C, &size) ||
      size > (int64_t(1) << 31))
    throw std::bad_alloc();
  return size;
}

// off[k]: where tap k = (kh, kw, c) is, relative to the window's first tap,
// in a buffer of padded width Wp.
inline void tap_offsets(int64_t* off, const Conv2dGeom& g, int64_t Wp) {
  int64_t k = 0;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw)
      for (int64_t c = 0; c < g.C; ++c) off[k++] = (kh * g.DH * Wp + kw * g.DW) * g.C + c;
}

// Points base[p] at the first tap of each pixel of output rows [oh0, oh1) of
// image n. The taps are read from x itself when the band needs no padding;
// otherwise its input rows are first copied, zero-padded, into buf
// (in_rows, Wp, C).
template <typename T>
void direct_band(T* buf, const T** base, const T* x, const Conv2dGeom& g, int64_t Wp, int64_t n,
                 int64_t oh0, int64_t oh1) {
  const int64_t C = g.C, r0 = oh0 * g.SH - g.PT;
  const int64_t rows = (oh1 - oh0 - 1) * g.SH + (g.KH - 1) * g.DH + 1;
  const T* src = buf;
  if (g.PL == 0 && g.PR == 0 && r0 >= 0 && r0 + rows <= g.H) {
    src = x + (n * g.H + r0) * g.W * C;
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = buf + r * Wp * C;
      const int64_t ih = r0 + r;
      if (ih < 0 || ih >= g.H) {
        std::fill(dst, dst + Wp * C, T(0));
        continue;
      }
      std::fill(dst, dst + g.PL * C, T(0));
      std::memcpy(dst + g.PL * C, x + (n * g.H + ih) * g.W * C, sizeof(T) * g.W * C);
      std::fill(dst + (g.PL + g.W) * C, dst + Wp * C, T(0));
    }
  }
  int64_t p = 0;
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow = 0; ow < g.OW; ++ow) base[p++] = src + ((oh - oh0) * g.SH * Wp + ow * g.SW) * C;
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// How many threads share the direct kernels' N * bands items: at most one per
// item, and one for a layer too small to pay for a parallel region.
inline int band_threads(const Conv2dGeom& g, const DirectPlan& plan, const Context& ctx) {
  const int nt = threads_for(conv_macs(g), kParallelMinMacs, ctx.nthreads);
  return int(std::min<int64_t>(nt, g.N * plan.bands));
}

// Items [begin, end) of thread t of nt: contiguous ranges in thread order. Every
// direct pass splits its bands this way, so that per-thread partial sums (dw)
// cover the same bands whichever pass computes them.
struct ItemRange {
  int64_t begin, end;
};
inline ItemRange thread_items(int64_t items, int nt, int t) {
  return {items * t / nt, items * (t + 1) / nt};
}

// Runs body(tid, range) on nt threads (the calling one alone when nt is 1), range
// being thread tid's items (thread_items).
template <typename Body>
void for_thread_items(int64_t items, int nt, Body&& body) {
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = nt > 1 ? thread_id() : 0;
    body(tid, thread_items(items, nt, tid));
  }
}

// Output rows [oh0, oh1) of image n: band `item` of plan, cut at OH rows.
struct BandRows {
  int64_t n, oh0, oh1;
};
inline BandRows band_rows(const DirectPlan& plan, int64_t item, int64_t OH) {
  const int64_t oh0 = item % plan.bands * plan.band_rows;
  return {item / plan.bands, oh0, std::min(oh0 + plan.band_rows, OH)};
}

// Runs body(tid, base, m0, m1) for every band of every image: output pixels
// [m0, m1), base[p] pointing at the first tap of pixel m0 + p (direct_band).
// nt threads take contiguous ranges of bands (thread_items); tid is the
// thread's number. The band buffers come from ctx.arena (the caller's ArenaScope).
template <typename T, typename Body>
void for_each_band(const T* x, const Conv2dGeom& g, const DirectPlan& plan, int64_t buf_size,
                   int nt, const Context& ctx, Body&& body) {
  const int64_t items = g.N * plan.bands;
  T* bufs = ctx.arena->alloc<T>(nt * buf_size);
  const T** bases = ctx.arena->alloc<const T*>(nt * plan.band_rows * g.OW);
  for_thread_items(items, nt, [&](int tid, ItemRange r) {
    const T** base = bases + tid * plan.band_rows * g.OW;
    for (int64_t item = r.begin; item < r.end; ++item) {
      const BandRows b = band_rows(plan, item, g.OH);
      direct_band(bufs + tid * buf_size, base, x, g, plan.Wp, b.n, b.oh0, b.oh1);
      body(tid, base, (b.n * g.OH + b.oh0) * g.OW, (b.n * g.OH + b.oh1) * g.OW);
    }
  });
}

}  // namespace fastdl::cpu
