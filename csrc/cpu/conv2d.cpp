// Convolution by im2col + GEMM. See conv2d.h for the matrix view.
//
// Memory: the patch matrix of the whole batch can be huge (a ResNet 3x3 layer
// at batch 32 would need 230 MB), so the M = N*OH*OW output pixels are
// processed in chunks of `rows` pixels whose patch block is about
// kPatchBytes; only one such block per thread is ever alive.
//
// Threading, chosen by measurement: the batch is split into one contiguous
// range of images per thread, and each thread runs im2col, a single-threaded
// GEMM and col2im on its own chunks. This parallelises im2col/col2im too,
// keeps each thread's patches in its own L2, and makes the col2im scatter
// race-free (threads own disjoint images). On the 2-core Zen 4 development
// machine it beat sequential chunks with the threads inside the GEMM by about
// 2x on the MNIST and ResNet 3x3 layers (fwd+bwd, best of many runs) and by
// ~15% on the 1x1 layer. When the batch is too small to split evenly, the
// chunks run one after the other and the threads go inside the GEMM instead.
//
// 1x1 stride-1 unpadded convolutions skip im2col (x already is the (M, C)
// patch matrix) and col2im (the dx chunk is written in place). Few-channel
// layers (C <= 4, K <= 64: first layers) skip both and the GEMM: see
// conv2d_smallk.h.
#include "cpu/conv2d.h"
#include "cpu/conv2d_smallk.h"

#include <algorithm>
#include <cstring>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

constexpr int64_t kPatchBytes = int64_t(1) << 19;  // ~512 KiB of patches per chunk

template <typename T>
int64_t chunk_rows(int64_t K) {
  int64_t rows = kPatchBytes / (K * int64_t(sizeof(T)));
  rows = std::max<int64_t>(rows, 32);
  rows = std::min<int64_t>(rows, 4096);
  return rows;
}

bool is_pointwise(const Conv2dGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PB == 0 &&
         g.PL == 0 && g.PR == 0;
}

// How many threads split the batch: all of them when the images divide evenly
// or there are plenty of them, else one (and the GEMM threads).
int batch_groups(int64_t N, int nthreads) {
#ifdef _OPENMP
  if (nthreads <= 1 || N < 2) return 1;
  if (N % nthreads == 0 || N >= 4 * int64_t(nthreads)) return int(std::min<int64_t>(nthreads, N));
#endif
  return 1;
}

// Few-channel layers with a short patch (K = 9 for a 3x3 layer on a grey
// image) skip im2col and the GEMM: conv2d_smallk.h reads the taps in place.
// The work is split into bands of about kSmallKBand output pixels (a few
// output rows of one image); a band's input rows are copied, zero-padded,
// into a scratch buffer of padded width Wp, where tap (kh, kw, c) of output
// pixel (oh, ow) sits at a fixed offset from the pixel's first tap.
constexpr int64_t kSmallKMax = 64;
constexpr int64_t kSmallKBand = 128;
// The band buffer holds whole zero-padded input rows: huge paddings, strides or
// dilations (legal, they just read zeros) would make it enormous, so those
// layers take the im2col path, which only touches the taps inside x.
constexpr int64_t kSmallKMaxBand = int64_t(1) << 24;  // elements of one band buffer
bool small_band(const Conv2dGeom& g) {
  const int64_t lim = kSmallKMaxBand;
  if (g.SH > lim || g.DH > lim || g.KH > lim || g.W > lim || g.PL > lim || g.PR > lim) return false;
  const int64_t band_rows = std::min<int64_t>(std::max<int64_t>((kSmallKBand + g.OW - 1) / g.OW, 1), g.OH);
  const int64_t in_rows = (band_rows - 1) * g.SH + (g.KH - 1) * g.DH + 1;  // < 2^56 here
  const int64_t row = (g.W + g.PL + g.PR) * g.C;
  return in_rows <= lim && row <= lim && in_rows * row <= lim;
}
bool use_small_k(const Conv2dGeom& g) {
  return g.C <= 4 && g.KH * g.KW * g.C <= kSmallKMax && small_band(g);
}

struct SmallKPlan {
  int64_t band_rows;  // output rows per band
  int64_t bands;      // bands per image
  int64_t in_rows;    // input rows a band reads (at most)
  int64_t Wp;         // padded width
};

SmallKPlan smallk_plan(const Conv2dGeom& g) {
  SmallKPlan p;
  p.band_rows = std::min<int64_t>(std::max<int64_t>((kSmallKBand + g.OW - 1) / g.OW, 1), g.OH);
  p.bands = (g.OH + p.band_rows - 1) / p.band_rows;
  p.in_rows = (p.band_rows - 1) * g.SH + (g.KH - 1) * g.DH + 1;
  p.Wp = g.W + g.PL + g.PR;
  return p;
}

// off[k]: where tap k = (kh, kw, c) is, relative to the window's first tap,
// in a buffer of padded width Wp.
void tap_offsets(int64_t* off, const Conv2dGeom& g, int64_t Wp) {
  int64_t k = 0;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw)
      for (int64_t c = 0; c < g.C; ++c) off[k++] = (kh * g.DH * Wp + kw * g.DW) * g.C + c;
}

// Copies the input rows of output rows [oh0, oh1) of image n, zero-padded,
// into buf (in_rows, Wp, C), and points base[p] at each band pixel's first tap.
template <typename T>
void smallk_band(T* buf, const T** base, const T* x, const Conv2dGeom& g, int64_t Wp, int64_t n,
                 int64_t oh0, int64_t oh1) {
  const int64_t C = g.C, r0 = oh0 * g.SH - g.PT;
  const int64_t rows = (oh1 - oh0 - 1) * g.SH + (g.KH - 1) * g.DH + 1;
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
  int64_t p = 0;
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow = 0; ow < g.OW; ++ow) base[p++] = buf + ((oh - oh0) * g.SH * Wp + ow * g.SW) * C;
}

template <typename T>
void smallk_forward(Isa isa, T* y, const T* const* base, const int64_t* off, const T* w,
                    const T* b, int64_t np, int64_t K, int64_t F, bool relu) {
#ifdef FASTDL_X86
  if (isa == Isa::avx512) return avx512::smallk_forward<T>(y, base, off, w, b, np, K, F, relu);
  if (isa == Isa::avx2) return avx2::smallk_forward<T>(y, base, off, w, b, np, K, F, relu);
#endif
  generic::smallk_forward<T>(y, base, off, w, b, np, K, F, relu);
}

template <typename T>
void smallk_dw(Isa isa, T* dw, const T* const* base, const int64_t* off, const T* dy,
               int64_t np, int64_t K, int64_t F) {
#ifdef FASTDL_X86
  if (isa == Isa::avx512) return avx512::smallk_dw<T>(dw, base, off, dy, np, K, F);
  if (isa == Isa::avx2) return avx2::smallk_dw<T>(dw, base, off, dy, np, K, F);
#endif
  generic::smallk_dw<T>(dw, base, off, dy, np, K, F);
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Runs body(group, m0, m1, ctx) over the chunks of every group's images. Each
// group is one OpenMP thread with its own arena and a one-thread context; a
// single group runs on the caller's thread with the caller's context.
template <typename Body>
void for_each_chunk(const Conv2dGeom& g, int64_t rows, int groups, const Context& ctx,
                    Body&& body) {
  const int64_t P = g.OH * g.OW;
  auto run_group = [&](int t, const Context& c) {
    const int64_t m_begin = g.N * t / groups * P, m_end = g.N * (t + 1) / groups * P;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += rows)
      body(t, m0, std::min(m0 + rows, m_end), c);
  };
  if (groups == 1) {
    run_group(0, ctx);
    return;
  }
  std::unique_ptr<Arena[]> arenas(new Arena[groups]);
#pragma omp parallel num_threads(groups)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    Context c{ctx.isa, 1, &arenas[t]};
    run_group(t, c);
  }
}

}  // namespace

// ------------------------------------------------------------ im2col / col2im

namespace {

// dst[0:n] = src[0:n] / 0. For the short runs of few-channel layers (a first
// layer copies 1 or 3 values per tap) a plain loop beats a memcpy call.
template <typename T>
inline void copy_run(T* __restrict dst, const T* __restrict src, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, sizeof(T) * n);
  }
}

template <typename T>
inline void zero_run(T* dst, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = T(0);
  } else {
    std::memset(dst, 0, sizeof(T) * n);
  }
}

}  // namespace

template <typename T>
void im2col(T* col, const T* x, const Conv2dGeom& g, int64_t m0, int64_t m1) {
  const int64_t C = g.C, KW = g.KW, K = g.KH * g.KW * C, P = g.OH * g.OW;
  int64_t n = m0 / P, oh = (m0 % P) / g.OW, ow = (m0 % P) % g.OW;
  for (int64_t m = m0; m < m1; ++m) {
    T* row = col + (m - m0) * K;
    const T* xn = x + n * g.H * g.W * C;
    const int64_t ih0 = oh * g.SH - g.PT, iw0 = ow * g.SW - g.PL;
    // With no dilation and the whole row of taps inside, one tap row is a
    // contiguous run of KW*C values in x.
    const bool row_inside = g.DW == 1 && iw0 >= 0 && iw0 + KW <= g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      T* dst = row + kh * KW * C;
      const int64_t ih = ih0 + kh * g.DH;
      if (ih < 0 || ih >= g.H) {
        zero_run(dst, KW * C);
        continue;
      }
      const T* src = xn + ih * g.W * C;
      if (row_inside) {
        copy_run(dst, src + iw0 * C, KW * C);
        continue;
      }
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t iw = iw0 + kw * g.DW;
        if (iw < 0 || iw >= g.W)
          zero_run(dst + kw * C, C);
        else
          copy_run(dst + kw * C, src + iw * C, C);
      }
    }
    if (++ow == g.OW) {
      ow = 0;
      if (++oh == g.OH) { oh = 0; ++n; }
    }
  }
}

template <typename T>
void col2im(T* dx, const T* col, const Conv2dGeom& g, int64_t m0, int64_t m1) {
  const int64_t C = g.C, KW = g.KW, K = g.KH * g.KW * C, P = g.OH * g.OW;
  int64_t n = m0 / P, oh = (m0 % P) / g.OW, ow = (m0 % P) % g.OW;
  for (int64_t m = m0; m < m1; ++m) {
    const T* row = col + (m - m0) * K;
    T* dxn = dx + n * g.H * g.W * C;
    const int64_t ih0 = oh * g.SH - g.PT, iw0 = ow * g.SW - g.PL;
    const bool row_inside = g.DW == 1 && iw0 >= 0 && iw0 + KW <= g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = ih0 + kh * g.DH;
      if (ih < 0 || ih >= g.H) continue;
      const T* src = row + kh * KW * C;
      T* dst = dxn + ih * g.W * C;
      if (row_inside) {
        T* d = dst + iw0 * C;
        for (int64_t i = 0; i < KW * C; ++i) d[i] += src[i];
        continue;
      }
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t iw = iw0 + kw * g.DW;
        if (iw < 0 || iw >= g.W) continue;
        T* d = dst + iw * C;
        const T* s = src + kw * C;
        for (int64_t c = 0; c < C; ++c) d[c] += s[c];
      }
    }
    if (++ow == g.OW) {
      ow = 0;
      if (++oh == g.OH) { oh = 0; ++n; }
    }
  }
}

// ------------------------------------------------------------ forward

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                    Activation act, const Context& ctx) {
  const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C, F = g.F;
  if (M == 0 || F == 0) return;
  const GemmEpilogue<T> ep{b, act};
  const bool pointwise = is_pointwise(g);
  if (use_small_k(g)) {
    // Threads take contiguous ranges of bands (writes are independent).
    const SmallKPlan plan = smallk_plan(g);
    const int64_t items = g.N * plan.bands, buf_size = plan.in_rows * plan.Wp * g.C;
    const int nt = int(std::min<int64_t>(ctx.nthreads, items));
    ArenaScope scope(ctx.arena);
    T* bufs = ctx.arena->alloc<T>(nt * buf_size);
    const T** bases = ctx.arena->alloc<const T*>(nt * plan.band_rows * g.OW);
    int64_t off[kSmallKMax];
    tap_offsets(off, g, plan.Wp);
    const bool relu = act == Activation::relu;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int tid = nt > 1 ? thread_id() : 0;
      const T** base = bases + tid * plan.band_rows * g.OW;
      const int64_t n = item / plan.bands, oh0 = item % plan.bands * plan.band_rows;
      const int64_t oh1 = std::min(oh0 + plan.band_rows, g.OH);
      smallk_band(bufs + tid * buf_size, base, x, g, plan.Wp, n, oh0, oh1);
      const int64_t m0 = (n * g.OH + oh0) * g.OW;
      smallk_forward<T>(ctx.isa, y + m0 * F, base, off, w, b, (oh1 - oh0) * g.OW, K, F, relu);
    }
    return;
  }
  const int64_t rows = chunk_rows<T>(K);
  for_each_chunk(g, rows, batch_groups(g.N, ctx.nthreads), ctx,
                 [&](int, int64_t m0, int64_t m1, const Context& c) {
                   ArenaScope scope(c.arena);
                   const T* col = x + m0 * K;  // a 1x1 layer's x is its patch matrix
                   if (!pointwise) {
                     T* buf = c.arena->alloc<T>((m1 - m0) * K);
                     im2col(buf, x, g, m0, m1);
                     col = buf;
                   }
                   gemm<T>(y + m0 * F, F, 1, col, K, 1, w, F, 1, m1 - m0, F, K, T(1), T(0), ep, c);
                 });
}

// ------------------------------------------------------------ backward

namespace {

// acc (F,) += column sums of dy rows [m0, m1).
template <typename T>
void add_column_sums(T* acc, const T* dy, int64_t F, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const T* r = dy + m * F;
    for (int64_t f = 0; f < F; ++f) acc[f] += r[f];
  }
}

}  // namespace

template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                     const Conv2dGeom& g, const Context& ctx) {
  const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C, F = g.F;
  const GemmEpilogue<T> none{};
  if (M == 0 || F == 0 || K == 0) {
    std::fill(dw, dw + K * F, T(0));
    if (db) std::fill(db, db + F, T(0));
    if (dx) std::fill(dx, dx + g.N * g.H * g.W * g.C, T(0));
    return;
  }
  const bool pointwise = is_pointwise(g);
  if (!dx && use_small_k(g)) {
    // dw and db only (a first layer): bands as in the forward pass, with
    // per-thread accumulators summed in thread order at the end.
    const SmallKPlan plan = smallk_plan(g);
    const int64_t items = g.N * plan.bands, buf_size = plan.in_rows * plan.Wp * g.C;
    const int nt = int(std::min<int64_t>(ctx.nthreads, items));
    ArenaScope scope(ctx.arena);
    T* bufs = ctx.arena->alloc<T>(nt * buf_size);
    const T** bases = ctx.arena->alloc<const T*>(nt * plan.band_rows * g.OW);
    T* dw_all = ctx.arena->alloc<T>(nt * K * F);
    T* db_all = ctx.arena->alloc<T>(nt * F);
    std::fill(dw_all, dw_all + nt * K * F, T(0));
    std::fill(db_all, db_all + nt * F, T(0));
    int64_t off[kSmallKMax];
    tap_offsets(off, g, plan.Wp);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int tid = nt > 1 ? thread_id() : 0;
      const T** base = bases + tid * plan.band_rows * g.OW;
      const int64_t n = item / plan.bands, oh0 = item % plan.bands * plan.band_rows;
      const int64_t oh1 = std::min(oh0 + plan.band_rows, g.OH);
      smallk_band(bufs + tid * buf_size, base, x, g, plan.Wp, n, oh0, oh1);
      const int64_t m0 = (n * g.OH + oh0) * g.OW, m1 = (n * g.OH + oh1) * g.OW;
      smallk_dw<T>(ctx.isa, dw_all + tid * K * F, base, off, dy + m0 * F, m1 - m0, K, F);
      add_column_sums(db_all + tid * F, dy, F, m0, m1);
    }
    std::copy(dw_all, dw_all + K * F, dw);
    for (int t = 1; t < nt; ++t)
      for (int64_t i = 0; i < K * F; ++i) dw[i] += dw_all[t * K * F + i];
    if (db) {
      std::copy(db_all, db_all + F, db);
      for (int t = 1; t < nt; ++t)
        for (int64_t f = 0; f < F; ++f) db[f] += db_all[t * F + f];
    }
    return;
  }

  const int64_t rows = chunk_rows<T>(K);
  const int groups = batch_groups(g.N, ctx.nthreads);
  // Group 0 accumulates straight into dw/db; the others into their own slices,
  // summed at the end (in group order, so results don't depend on timing).
  ArenaScope scope(ctx.arena);
  T* dw_part = groups > 1 ? ctx.arena->alloc<T>((groups - 1) * K * F) : nullptr;
  T* db_part = ctx.arena->alloc<T>(groups * F);
  std::fill(db_part, db_part + groups * F, T(0));
  const int64_t image = g.H * g.W * g.C, P = g.OH * g.OW;

  for_each_chunk(g, rows, groups, ctx, [&](int t, int64_t m0, int64_t m1, const Context& c) {
    const int64_t mc = m1 - m0;
    T* dw_t = t == 0 ? dw : dw_part + (t - 1) * K * F;
    const bool first = m0 == g.N * t / groups * P;
    if (first && dx && !pointwise) {  // this group's images of dx start at zero
      const int64_t n0 = g.N * t / groups, n1 = g.N * (t + 1) / groups;
      std::fill(dx + n0 * image, dx + n1 * image, T(0));
    }
    ArenaScope s(c.arena);
    T* buf = pointwise ? nullptr : c.arena->alloc<T>(mc * K);
    const T* col = x + m0 * K;  // a 1x1 layer's x is its patch matrix
    if (!pointwise) {
      im2col(buf, x, g, m0, m1);
      col = buf;
    }
    const T* dyc = dy + m0 * F;
    // dw_t (K,F) (+)= col^T (K,mc) . dy (mc,F)
    gemm<T>(dw_t, F, 1, col, 1, K, dyc, F, 1, K, F, mc, T(1), first ? T(0) : T(1), none, c);
    if (db) add_column_sums(db_part + t * F, dy, F, m0, m1);
    if (dx && pointwise) {
      // dx rows (mc,C) = dy (mc,F) . w^T (F,C), written in place.
      gemm<T>(dx + m0 * K, K, 1, dyc, F, 1, w, 1, F, mc, K, F, T(1), T(0), none, c);
    } else if (dx) {
      // dcol (mc,K) = dy (mc,F) . w^T (F,K), reusing col's memory.
      gemm<T>(buf, K, 1, dyc, F, 1, w, 1, F, mc, K, F, T(1), T(0), none, c);
      col2im(dx, buf, g, m0, m1);
    }
  });

  for (int t = 1; t < groups; ++t) {
    const T* p = dw_part + (t - 1) * K * F;
    for (int64_t i = 0; i < K * F; ++i) dw[i] += p[i];
  }
  if (db) {
    std::copy(db_part, db_part + F, db);
    for (int t = 1; t < groups; ++t)
      for (int64_t f = 0; f < F; ++f) db[f] += db_part[t * F + f];
  }
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template void im2col<T>(T*, const T*, const Conv2dGeom&, int64_t, int64_t);                  \
  template void col2im<T>(T*, const T*, const Conv2dGeom&, int64_t, int64_t);                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dGeom&,         \
                                  Activation, const Context&);                                 \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dGeom&, \
                                   const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
