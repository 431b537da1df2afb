// The direct convolution's backward pass in pieces (the dw and dx kernels of
// direct.h), shared by conv2d.cpp and the fused conv2d_max_pool2d.cpp so that
// both give the same bits: dw and db by bands of output rows (direct_bands.h),
// each thread summing into its own accumulators, added up in thread order at
// the end; dx of an unpadded layer image by image, each output pixel's dy row
// times w^T added into its patch of dx in place (no patch matrix, no col2im).
// Portable driver code: include it only from driver sources.
#pragma once
#include <algorithm>
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/conv/direct.h"
#include "cpu/conv/direct_bands.h"
#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// out (len,) = the sum of the count partial results parts (count,len), added
// in order (so results do not depend on timing). Overwrites out.
template <typename T>
void sum_parts(T* out, const T* parts, int count, int64_t len) {
  std::copy(parts, parts + len, out);
  for (int t = 1; t < count; ++t)
    for (int64_t i = 0; i < len; ++i) out[i] += parts[t * len + i];
}

// The dx kernel gets an image's pixels in chunks of whole output rows, about
// this many pixels. A dx value sums its terms chunk by chunk and, within one,
// tap by tap (direct.h), so every caller cuts an image at the same rows.
inline constexpr int64_t kDxBand = 128;

// Scratch (from ctx.arena, under the caller's ArenaScope) and kernels for
// `threads` threads, each with its number tid < threads, for the layer g.
// Only the output pixels of `visit` are visited: g's with visit.OH <= g.OH and
// visit.OW <= g.OW (the top-left ones; the others' dy is zero, as where a
// pooling drops rows and columns). Bands and chunks are g's all the same, and
// so are the threads' dw sums and the order of every dx value's terms: with
// finite x and w, skipping pixels of zero dy leaves every bit as it is.
template <typename T>
class DirectBackward {
 public:
  // dw: the per-thread dw (and, with_db, db) accumulators, zeroed; dx: w
  // transposed per tap (w is not read without dx). The layer must be unpadded for dx.
  DirectBackward(const Conv2dGeom& g, const Conv2dGeom& visit, bool dw, bool with_db,
                 const T* w, bool dx, int threads, const Context& ctx)
      : v_(visit), plan_(direct_plan(g)), K_(g.KH * g.KW * g.C), F_(g.F), threads_(threads),
        dx_rows_(std::max<int64_t>(kDxBand / std::max<int64_t>(g.OW, 1), 1)),
        dw_kernel_(direct_conv_kernels[ctx.isa].dw<T>()),
        dx_kernel_(direct_conv_kernels[ctx.isa].dx<T>()) {
    Arena* a = ctx.arena;
    if (dw) {
      buf_size_ = direct_buf_size(plan_, g);  // throws before any offset math overflows
      dw_all_ = a->alloc<T>(threads * K_ * F_);
      std::fill(dw_all_, dw_all_ + threads * K_ * F_, T(0));
      if (with_db) {
        db_all_ = a->alloc<T>(threads * F_);
        std::fill(db_all_, db_all_ + threads * F_, T(0));
      }
      dw_off_ = a->alloc<int64_t>(K_);
      tap_offsets(dw_off_, g, plan_.Wp);
      bufs_ = a->alloc<T>(threads * buf_size_);
      bases_ = a->alloc<const T*>(threads * plan_.band_rows * g.OW);
    }
    if (dx) {
      const int64_t taps = g.KH * g.KW, C = g.C, F = g.F;
      wt_ = a->alloc<T>(taps * F * C);  // (taps, F, C): w's (C, F) of every tap transposed
      for (int64_t k = 0; k < taps; ++k)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t f = 0; f < F; ++f) wt_[(k * F + f) * C + c] = w[(k * C + c) * F + f];
      dx_off_ = a->alloc<int64_t>(taps);
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw)
          dx_off_[kh * g.KW + kw] = (kh * g.DH * g.W + kw * g.DW) * C;
      dsts_ = a->alloc<T*>(threads * dx_rows_ * g.OW);
    }
  }
  DirectBackward(const Conv2dGeom& g, bool dw, bool with_db, const T* w, bool dx, int threads,
                 const Context& ctx)
      : DirectBackward(g, g, dw, with_db, w, dx, threads, ctx) {}

  const DirectPlan& plan() const { return plan_; }
  // The dw bands: N * plan().bands of them, band b of image n being item n * bands + b.
  int64_t items() const { return v_.N * plan_.bands; }

  // Thread tid's accumulators += the terms of band `item` of its image, whose dy
  // is dyn (visit.OH*visit.OW, F); x is the layer's input.
  void dw_band(int tid, const T* x, int64_t item, const T* dyn) {
    const BandRows b = band_rows(plan_, item, v_.OH);
    if (b.oh1 <= b.oh0) return;
    const T** base = bases_ + tid * plan_.band_rows * v_.OW;
    direct_band(bufs_ + tid * buf_size_, base, x, v_, plan_.Wp, b.n, b.oh0, b.oh1);
    dw_kernel_(dw_all_ + tid * K_ * F_, db_all_ ? db_all_ + tid * F_ : nullptr, base, dw_off_,
               dyn + b.oh0 * v_.OW * F_, (b.oh1 - b.oh0) * v_.OW, K_, F_);
  }

  // Image n of dx (overwritten) from the image's dy dyn (visit.OH*visit.OW, F),
  // on thread tid.
  void dx_image(int tid, T* dx, int64_t n, const T* dyn) {
    const int64_t C = v_.C, image = v_.H * v_.W * C;
    T** dst = dsts_ + tid * dx_rows_ * v_.OW;
    T* dxn = dx + n * image;
    std::fill(dxn, dxn + image, T(0));
    for (int64_t r0 = 0; r0 < v_.OH; r0 += dx_rows_) {
      const int64_t r1 = std::min(r0 + dx_rows_, v_.OH);
      int64_t p = 0;
      for (int64_t oh = r0; oh < r1; ++oh)
        for (int64_t ow = 0; ow < v_.OW; ++ow)
          dst[p++] = dxn + (oh * v_.SH * v_.W + ow * v_.SW) * C;
      dx_kernel_(dst, dx_off_, dyn + r0 * v_.OW * F_, wt_, p, v_.KH * v_.KW, C, F_);
    }
  }

  // dw and db (overwritten; db only if accumulated) = the threads' sums, in thread order.
  void finish(T* dw, T* db) const {
    sum_parts(dw, dw_all_, threads_, K_ * F_);
    if (db && db_all_) sum_parts(db, db_all_, threads_, F_);
  }

 private:
  const Conv2dGeom v_;
  const DirectPlan plan_;
  const int64_t K_, F_;
  const int threads_;
  const int64_t dx_rows_;  // output rows per dx chunk
  const DirectDwFn<T> dw_kernel_;
  const DirectDxFn<T> dx_kernel_;
  int64_t buf_size_ = 0;
  T* dw_all_ = nullptr;
  T* db_all_ = nullptr;
  int64_t* dw_off_ = nullptr;
  T* bufs_ = nullptr;
  const T** bases_ = nullptr;
  T* wt_ = nullptr;
  int64_t* dx_off_ = nullptr;
  T** dsts_ = nullptr;
};

}  // namespace fastdl::cpu
