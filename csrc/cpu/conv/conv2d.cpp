// Convolution, forward and backward, by two algorithms (conv2d.h): `direct`
// and `im2col`, which `automatic` picks per layer shape by the rule at
// conv2d_pick_algorithm (measured). The routes:
//
// * im2col (the card's algorithm): patches of a chunk of pixels (im2col.h)
//   times w by the GEMM engine; dw = patches^T . dy; dx by dcol = dy . w^T and
//   col2im. Chunks bound the scratch (kScratchBytes) whatever the batch.
//
// * direct: kernels (direct.h) for y and dw of every layer but 1x1: the
//   taps are read in place (from x, or from a zero-padded copy of a few input
//   rows where the layer pads), with outputs (4-8 pixels x 2 vectors of
//   filters) or dw rows (4-8 taps x 2 vectors) held in registers. No patch
//   matrix is written: for a 3x3 layer it would be 9x the input, and for
//   shallow layers copying it costs more than the GEMM gains. On a first layer
//   (C = 1, K = 9) a GEMM with k = 9 is memory-bound; the direct kernel is
//   about 2x faster than both im2col + GEMM and oneDNN.
//   dx with stride 1 and 'same'-like padding is a direct convolution of dy
//   with the flipped, transposed kernel (direct_conv_dx). Unpadded layers
//   ('valid', whose dx as a convolution would do up to 40% extra work on
//   padding; any stride) with 8 or more channels: the dx kernel adds each
//   pixel's dy . w^T into dx in place (direct_conv_dx_by_taps). Otherwise:
//   dcol = dy . w^T by the GEMM engine in chunks, scattered by col2im.
// * 1x1 stride-1 unpadded layers (either algorithm): x is already the (M, C)
//   patch matrix, so y = x . w, dw = x^T . dy and dx = dy . w^T are GEMMs on
//   chunks of x.
//
// Memory: scratch is bounded by chunks and bands: about 512 KiB of patches
// or dcol (kPatchBytes) per thread, all of them under 64 MiB (kScratchBytes),
// or a few padded input rows per thread, whatever the batch.
//
// Threading, also by measurement: threads split the work at the top (bands
// of output rows, or one contiguous range of images per thread for the GEMM
// chunks) and call the GEMM single-threaded. Against sequential chunks with
// the threads inside the GEMM this was about 2x faster on the MNIST and
// ResNet 3x3 layers (when they still ran im2col + GEMM) and ~15% on the 1x1
// layer; it also parallelises the copies and makes col2im race-free (a
// thread owns its images). When a batch is too small to split evenly, the
// GEMM chunks run in turn and the threads go inside the GEMM. A layer too
// small to pay for a parallel region runs on one thread (runtime/threading.h).
#include "cpu/conv/conv2d.h"
#include "cpu/conv/direct.h"
#include "cpu/conv/direct_backward.h"
#include "cpu/conv/direct_bands.h"
#include "cpu/conv/im2col.h"
#include "cpu/runtime/threading.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

constexpr int64_t kPatchBytes = int64_t(1) << 19;  // ~512 KiB of patches per chunk
// All the chunk buffers of one call together stay below this, whatever the batch.
constexpr int64_t kScratchBytes = int64_t(64) << 20;

// Pixels per chunk: about kPatchBytes of one K-long row each (at least 32 rows,
// for the GEMM's sake, at most 4096), fewer when the `buffers` chunk buffers
// alive at once (all threads' together) would exceed kScratchBytes.
template <typename T>
int64_t chunk_rows(int64_t K, int buffers) {
  const int64_t row = std::max<int64_t>(K, 1) * int64_t(sizeof(T));
  int64_t rows = kPatchBytes / row;
  rows = std::max<int64_t>(rows, 32);
  rows = std::min<int64_t>(rows, 4096);
  if (buffers > 0)
    rows = std::min<int64_t>(rows, std::max<int64_t>(kScratchBytes / (buffers * row), 1));
  return rows;
}

bool is_pointwise(const Conv2dGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PB == 0 &&
         g.PL == 0 && g.PR == 0;
}

// How many threads split the batch: all of them when the images divide evenly
// or there are plenty of them, else one (and the GEMM threads); one for a
// layer too small to pay for a parallel region (runtime/threading.h).
int batch_groups(const Conv2dGeom& g, int nthreads) {
  const int64_t N = g.N;
  nthreads = threads_for(conv_macs(g), kParallelMinMacs, nthreads);
#ifdef _OPENMP
  if (nthreads <= 1 || N < 2) return 1;
  if (N % nthreads == 0 || N >= 4 * int64_t(nthreads)) return int(std::min<int64_t>(nthreads, N));
#endif
  return 1;
}

// ------------------------------------------------------------ direct path
// Bands of output rows (direct_bands.h), each through the kernels of direct.h.

// y = act(conv(x, w) + b) by the direct kernels; threads take contiguous
// ranges of bands (their writes are independent).
template <typename T>
void direct_conv_forward(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                         bool relu, const Context& ctx) {
  const int64_t K = g.KH * g.KW * g.C, F = g.F;
  const DirectPlan plan = direct_plan(g);
  const int64_t buf_size = direct_buf_size(plan, g);  // throws before any offset math overflows
  const int nt = band_threads(g, plan, ctx);
  ArenaScope scope(ctx.arena);
  int64_t* off = ctx.arena->alloc<int64_t>(K);
  tap_offsets(off, g, plan.Wp);
  const DirectForwardFn<T> kernel = direct_conv_kernels[ctx.isa].forward<T>();
  for_each_band(x, g, plan, buf_size, nt, ctx,
                [&](int, const T* const* base, int64_t m0, int64_t m1) {
    kernel(y + m0 * F, base, off, w, b, m1 - m0, K, F, relu);
  });
}

// acc (F,) += column sums of dy rows [m0, m1).
template <typename T>
void add_column_sums(T* acc, const T* dy, int64_t F, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    const T* r = dy + m * F;
    for (int64_t f = 0; f < F; ++f) acc[f] += r[f];
  }
}

// dw (overwritten) and db (overwritten, or null) by the direct kernels: bands
// as in the forward pass, per-thread accumulators summed in thread order
// (direct_backward.h).
template <typename T>
void direct_conv_dw(T* dw, T* db, const T* dy, const T* x, const Conv2dGeom& g,
                    const Context& ctx) {
  const int nt = band_threads(g, direct_plan(g), ctx);
  ArenaScope scope(ctx.arena);
  DirectBackward<T> bw(g, true, db != nullptr, nullptr, false, nt, ctx);
  const int64_t P = g.OH * g.OW;
  for_thread_items(bw.items(), nt, [&](int tid, ItemRange r) {
    for (int64_t item = r.begin; item < r.end; ++item)
      bw.dw_band(tid, x, item, dy + item / bw.plan().bands * P * g.F);
  });
  bw.finish(dw, db);
}

// With stride 1, dx is itself a convolution: of dy, padded by the window
// extent minus the forward padding, with the window flipped and its channel
// axes swapped (w_t[kh,kw,f,c] = w[KH-1-kh, KW-1-kw, c, f]). Possible when no
// forward padding exceeds the window extent; worth it when x is not much
// bigger than y ('same'-like padding): that convolution has H*W output pixels,
// the patch route (dy . w^T, col2im) only OH*OW, and for a 'valid' 3x3 layer
// on 13x13 the 40% extra multiply-adds (on zero padding) cost more than col2im.
// Its output has C channels per pixel: below 8 the kernels run their scalar
// tail (measured: 5x5 'same' layer 32x32x3->16 batch 32, backward 71 ms this
// way, 12 ms through dy . w^T and col2im).
constexpr int64_t kDirectMinChannels = 8;

bool dx_is_direct_conv(const Conv2dGeom& g) {
  const int64_t eh = (g.KH - 1) * g.DH, ew = (g.KW - 1) * g.DW;
  return g.SH == 1 && g.SW == 1 && g.PT <= eh && g.PB <= eh && g.PL <= ew && g.PR <= ew &&
         8 * g.H * g.W <= 9 * g.OH * g.OW && g.C >= kDirectMinChannels;
}

template <typename T>
void direct_conv_dx(T* dx, const T* dy, const T* w, const Conv2dGeom& g, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  T* wt = ctx.arena->alloc<T>(g.KH * g.KW * g.C * g.F);
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const T* src = w + ((g.KH - 1 - kh) * g.KW + (g.KW - 1 - kw)) * g.C * g.F;
      T* dst = wt + (kh * g.KW + kw) * g.F * g.C;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t f = 0; f < g.F; ++f) dst[f * g.C + c] = src[c * g.F + f];
    }
  const int64_t eh = (g.KH - 1) * g.DH, ew = (g.KW - 1) * g.DW;
  Conv2dGeom t = g;
  t.H = g.OH; t.W = g.OW; t.C = g.F; t.F = g.C;
  t.PT = eh - g.PT; t.PB = eh - g.PB; t.PL = ew - g.PL; t.PR = ew - g.PR;
  t.OH = g.H; t.OW = g.W;
  direct_conv_forward<T>(dx, dy, wt, nullptr, t, false, ctx);
}

// dx of an unpadded layer (any stride or dilation) by the direct dx kernel: each
// output pixel's dy row times w^T gives its patch row of dx, added in place
// (tap k of pixel p at dst[p] + off[k]), so neither the patch matrix dcol nor
// col2im is needed and no multiply-add lands on padding. Threads own
// contiguous ranges of images (their writes are independent).
// MNIST convnet, 13x13x32->64 'valid' b64, 1 thread (min of 3 interleaved runs
// of 8): 3.2 ms, against 3.7 ms by dy . w^T and col2im. Fewer than 8 channels
// would run the kernel's scalar tail (see kDirectMinChannels). A batch too
// small to split over the threads (batch_groups) takes dy . w^T and col2im,
// where the threads go inside the GEMM.
bool dx_by_taps(const Conv2dGeom& g, int nthreads) {
  return g.PT == 0 && g.PB == 0 && g.PL == 0 && g.PR == 0 && g.C >= kDirectMinChannels &&
         (batch_groups(g, nthreads) > 1 || threads_for(conv_macs(g), kParallelMinMacs,
                                                       nthreads) == 1);
}

template <typename T>
void direct_conv_dx_by_taps(T* dx, const T* dy, const T* w, const Conv2dGeom& g,
                            const Context& ctx) {
  const int nt = batch_groups(g, ctx.nthreads);
  ArenaScope scope(ctx.arena);
  DirectBackward<T> bw(g, false, false, w, true, nt, ctx);
  const int64_t P = g.OH * g.OW;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) bw.dx_image(nt > 1 ? thread_id() : 0, dx, n, dy + n * P * g.F);
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

// ------------------------------------------------------------ algorithm

// The rule, from tools/time_conv_algorithms.py (median ms, float32, 1 thread,
// AVX2, a shared and busy 2-core AMD EPYC, two runs; forward | backward,
// direct vs im2col):
//
//   28x28x1->32 b64 (K=9)          0.44-0.54 vs 1.0-1.3 |  1.9-2.5 vs 2.8-3.2  direct
//   13x13x32->64 b64 (K=288)       3.7-8.0   vs 3.4     |  7.3-12  vs 7.6-7.8  even
//   13x13x32->64 b128              7.5-8.1   vs 7.0-7.2 |   15-16  vs  16-19   even
//   56x56x64->64 same b8 (K=576)        20-21 vs 23-29  |   45-55  vs  48-54   even
//   28x28x128->128 same b8 (K=1152)     47 vs 23        |   69-73  vs  46-47   im2col
//   14x14x256->256 same b8 (K=2304)  40-51 vs 27-28     |   74-92  vs  53      im2col
//   32x32x3->16 5x5 same b32 (K=75) 1.1-1.2 vs 1.8-2.1  |  (see dx_is_direct_conv)
//   16x16x64->16 same b32 (K=576)  1.7-2.0 vs 2.2-2.6   |  3.7-4.0 vs 5.9-9.5  direct
//   (and two more small layers: direct)
//
// The GEMM engine needs depth and width to reach its speed: from K = KH*KW*C =
// 1024 on with 64 or more filters it wins by ~2x; below, the direct kernels win
// or tie, without the patch copy. (The 5x5 layer's backward was slow through dx
// as a direct convolution with C = 3 output channels, the kernels' scalar tail:
// the direct route now takes dy . w^T and col2im there, 71 ms -> 3.6 ms against
// im2col's 4.9 ms; see dx_is_direct_conv.)
ConvAlgorithm conv2d_pick_algorithm(const Conv2dGeom& g, bool backward) {
  if (is_pointwise(g)) return ConvAlgorithm::im2col;  // x is the patch matrix: no copy
  const int64_t K = g.KH * g.KW * g.C;
  if (K >= 1024 && g.F >= 64) return ConvAlgorithm::im2col;
  // The direct kernels hold vectors of filters: with fewer filters than a vector
  // (an autoencoder's 32 -> 1 output layer) their scalar tail ran 4x slower than
  // im2col + GEMM, forward (28x28x32->1 same b128: 45 vs 11 ms).
  if (g.F < 8 && g.DH == 1 && g.DW == 1) return ConvAlgorithm::im2col;
  return ConvAlgorithm::direct;
}

bool conv2d_backward_by_bands(const Conv2dGeom& g, bool need_dx, int nthreads) {
  if (g.N * g.OH * g.OW == 0 || g.F == 0 || is_pointwise(g) ||
      conv2d_pick_algorithm(g, true) != ConvAlgorithm::direct)
    return false;
  return !need_dx || (!dx_is_direct_conv(g) && dx_by_taps(g, nthreads));
}

namespace {
ConvAlgorithm resolve(ConvAlgorithm algo, const Conv2dGeom& g, bool backward) {
  if (is_pointwise(g)) return ConvAlgorithm::im2col;  // both algorithms are the same GEMM
  return algo == ConvAlgorithm::automatic ? conv2d_pick_algorithm(g, backward) : algo;
}

// Patch rows [m0, m1) (mc x K): x itself for a 1x1 layer, else built by im2col
// into scratch from arena (the caller's scope gives it back).
template <typename T>
const T* patch_rows(const T* x, const Conv2dGeom& g, int64_t K, int64_t m0, int64_t m1,
                    bool pointwise, Arena* arena) {
  if (pointwise) return x + m0 * K;
  T* col = arena->alloc<T>((m1 - m0) * K);
  im2col(col, x, g, m0, m1);
  return col;
}
}  // namespace

// ------------------------------------------------------------ forward

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                    Activation act, const Context& ctx, ConvAlgorithm algo) {
  const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C, F = g.F;
  if (M == 0 || F == 0) return;
  if (resolve(algo, g, false) == ConvAlgorithm::direct) {
    direct_conv_forward<T>(y, x, w, b, g, act == Activation::relu, ctx);
    return;
  }
  // im2col + GEMM, chunk by chunk: y rows [m0, m1) = act(patches . w + b).
  const bool pointwise = is_pointwise(g);
  const GemmEpilogue<T> ep{b, act};
  const int groups = batch_groups(g, ctx.nthreads);
  for_each_chunk(g, chunk_rows<T>(K, pointwise ? 0 : groups), groups, ctx,
                 [&](int, int64_t m0, int64_t m1, const Context& c) {
                   ArenaScope s(c.arena);
                   const T* patches = patch_rows(x, g, K, m0, m1, pointwise, c.arena);
                   gemm<T>(y + m0 * F, F, 1, patches, K, 1, w, F, 1, m1 - m0, F, K, T(1),
                           T(0), ep, c);
                 });
}

// ------------------------------------------------------------ backward

template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                     const Conv2dGeom& g, const Context& ctx, ConvAlgorithm algo) {
  const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.C, F = g.F;
  if (M == 0 || F == 0 || K == 0) {
    if (dw) std::fill(dw, dw + K * F, T(0));
    if (db) std::fill(db, db + F, T(0));
    if (dx) std::fill(dx, dx + g.N * g.H * g.W * g.C, T(0));
    return;
  }
  const bool pointwise = is_pointwise(g);
  if (resolve(algo, g, true) == ConvAlgorithm::direct) {
    if (dw) {
      direct_conv_dw<T>(dw, db, dy, x, g, ctx);
    } else if (db) {
      std::fill(db, db + F, T(0));
      add_column_sums(db, dy, F, 0, M);
    }
    if (!dx) return;
    if (dx_is_direct_conv(g)) {
      direct_conv_dx<T>(dx, dy, w, g, ctx);
      return;
    }
    if (dx_by_taps(g, ctx.nthreads)) {
      direct_conv_dx_by_taps<T>(dx, dy, w, g, ctx);
      return;
    }
    dw = nullptr;  // done; the chunks below only compute dx (dy . w^T, col2im)
    db = nullptr;
  } else if (algo == ConvAlgorithm::automatic && g.F < 8 && dx && !pointwise &&
             g.DH == 1 && g.DW == 1 && dx_is_direct_conv(g)) {
    // Few filters (the rule above picked im2col for them): dw by the chunks below,
    // dx as the direct convolution of dy, whose output has the C channels of x
    // (28x28x32->1 same b128: 21 -> 6 ms, 1 thread).
    direct_conv_dx<T>(dx, dy, w, g, ctx);
    dx = nullptr;
  }

  // Chunks of pixels: dw (+)= patches^T . dy, db += sums of dy, and dx: for a
  // 1x1 layer dy . w^T straight into dx, otherwise dcol = dy . w^T into
  // scratch, scattered into dx by col2im. Group 0 accumulates straight into
  // dw/db, the others into their own slices, summed at the end in group order
  // (results do not depend on timing).
  const GemmEpilogue<T> none{};
  const int groups = batch_groups(g, ctx.nthreads);
  ArenaScope scope(ctx.arena);
  T* dw_part = groups > 1 && dw ? ctx.arena->alloc<T>((groups - 1) * K * F) : nullptr;
  T* db_part = ctx.arena->alloc<T>(groups * F);
  std::fill(db_part, db_part + groups * F, T(0));
  const int64_t image = g.H * g.W * g.C, P = g.OH * g.OW;
  // Scratch per group: patches (when dw is wanted) and dcol (when dx is), mc x K each.
  const int buffers = pointwise ? 0 : int(dw != nullptr) + int(dx != nullptr);

  for_each_chunk(g, chunk_rows<T>(K, groups * buffers), groups, ctx,
                 [&](int t, int64_t m0, int64_t m1, const Context& c) {
    const int64_t mc = m1 - m0;
    const T* dyc = dy + m0 * F;
    const bool first = m0 == g.N * t / groups * P;  // first chunk of this group
    ArenaScope s(c.arena);
    if (dw) {  // dw_t (K,F) (+)= patches^T (K,mc) . dy (mc,F)
      const T* patches = patch_rows(x, g, K, m0, m1, pointwise, c.arena);
      T* dw_t = t == 0 ? dw : dw_part + (t - 1) * K * F;
      gemm<T>(dw_t, F, 1, patches, 1, K, dyc, F, 1, K, F, mc, T(1), first ? T(0) : T(1), none,
              c);
    }
    if (db) add_column_sums(db_part + t * F, dy, F, m0, m1);
    if (!dx) return;
    if (pointwise) {
      gemm<T>(dx + m0 * K, K, 1, dyc, F, 1, w, 1, F, mc, K, F, T(1), T(0), none, c);
      return;
    }
    if (first) {  // this group's images of dx start at zero
      const int64_t n0 = g.N * t / groups, n1 = g.N * (t + 1) / groups;
      std::fill(dx + n0 * image, dx + n1 * image, T(0));
    }
    T* dcol = c.arena->alloc<T>(mc * K);
    gemm<T>(dcol, K, 1, dyc, F, 1, w, 1, F, mc, K, F, T(1), T(0), none, c);  // dy . w^T
    col2im(dx, dcol, g, m0, m1);
  });

  for (int t = 1; dw && t < groups; ++t) {
    const T* p = dw_part + (t - 1) * K * F;
    for (int64_t i = 0; i < K * F; ++i) dw[i] += p[i];
  }
  if (db) sum_parts(db, db_part, groups, F);
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dGeom&,         \
                                  Activation, const Context&, ConvAlgorithm);                  \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const Conv2dGeom&, \
                                   const Context&, ConvAlgorithm);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
