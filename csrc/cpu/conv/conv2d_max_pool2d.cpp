// Conv2D + ReLU + MaxPooling2D forward (conv2d_max_pool2d.h): the direct
// convolution's bands (direct_bands.h, direct.h), whole pooling windows high,
// each pooled from a per-thread buffer by the max pooling kernel
// (max_pool2d.h) while it is in cache. The convolution of a pixel sums its
// taps in the same order whatever band it falls in, so the values, and then
// the maxima and their codes, are those of conv2d and max_pool2d.
//
// Backward: the pieces of conv2d_backward's direct route (direct_backward.h)
// with the same thread split, fed one image of dz at a time by the max
// pooling's scatter, so that the sums are added in the same order.
#include "cpu/conv/conv2d_max_pool2d.h"

#include <algorithm>

#include "cpu/conv/conv2d.h"
#include "cpu/conv/direct.h"
#include "cpu/conv/direct_backward.h"
#include "cpu/conv/direct_bands.h"
#include "cpu/pool/max_pool2d.h"

namespace fastdl::cpu {

template <typename T>
void conv2d_relu_max_pool2d_forward(T* y, uint8_t* argmax, const T* x, const T* w, const T* b,
                                    const Conv2dGeom& g, const Conv2dGeom& pg,
                                    const Context& ctx) {
  if (pg.N * pg.OH * pg.OW * pg.C == 0) return;
  ArenaScope scope(ctx.arena);
  if (conv2d_pick_algorithm(g, false) != ConvAlgorithm::direct) {
    T* z = ctx.arena->alloc<T>(g.N * g.OH * g.OW * g.F);
    conv2d_forward<T>(z, x, w, b, g, Activation::relu, ctx);
    max_pool2d_forward<T>(y, argmax, z, pg, ctx);
    return;
  }
  // The convolution cropped to the output rows and columns the windows cover.
  Conv2dGeom c = g;
  c.OH = pg.OH * pg.KH;
  c.OW = pg.OW * pg.KW;
  const int64_t K = g.KH * g.KW * g.C, F = g.F;
  const DirectPlan plan = direct_plan(c, pg.KH);
  const int64_t buf_size = direct_buf_size(plan, c);  // throws before any offset math overflows
  const int nt = band_threads(c, plan, ctx);
  const int64_t band = plan.band_rows * c.OW;         // pixels of a band (at most)
  T* z_all = ctx.arena->alloc<T>(nt * band * F);      // (nt, band, F): each thread's band of z
  int64_t* off = ctx.arena->alloc<int64_t>(K);
  tap_offsets(off, c, plan.Wp);
  const DirectForwardFn<T> conv = direct_conv_kernels[ctx.isa].forward<T>();
  const MaxPoolKernels::ForwardSerial<T> pool = max_pool_kernels[ctx.isa].forward_serial<T>();
  for_each_band(x, c, plan, buf_size, nt, ctx,
                [&](int tid, const T* const* base, int64_t m0, int64_t m1) {
    T* z = z_all + tid * band * F;
    conv(z, base, off, w, b, m1 - m0, K, F, true);
    Conv2dGeom bg = pg;  // the band's pooling: (m1 - m0) / c.OW rows of c.OW pixels
    bg.N = 1;
    bg.H = (m1 - m0) / c.OW;
    bg.W = c.OW;
    bg.OH = bg.H / pg.KH;
    const int64_t o = m0 / (pg.KH * pg.KW) * F;  // the band's first pooled pixel
    pool(y + o, argmax + o, z, bg);
  });
}

template <typename T>
void conv2d_relu_max_pool2d_backward(T* dx, T* dw, T* db, const T* dy, const uint8_t* argmax,
                                     const T* x, const T* w, const Conv2dGeom& g,
                                     const Conv2dGeom& pg, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  if (!conv2d_backward_by_bands(g, dx != nullptr, ctx.nthreads)) {
    T* dz = ctx.arena->alloc<T>(g.N * g.OH * g.OW * g.F);
    max_pool2d_backward_argmax<T>(dz, dy, argmax, pg, true, ctx);
    conv2d_backward<T>(dx, dw, db, dz, x, w, g, ctx);
    return;
  }
  const int nt = band_threads(g, direct_plan(g), ctx);  // as conv2d_backward's dw
  // Only the output rows and columns the windows cover: the others' gradient is zero.
  Conv2dGeom c = g;
  c.OH = pg.OH * pg.KH;
  c.OW = pg.OW * pg.KW;
  DirectBackward<T> bw(g, c, true, db != nullptr, w, dx != nullptr, nt, ctx);
  const int64_t P = c.OH * c.OW, F = g.F, pooled = pg.OH * pg.OW * F;
  const int64_t bands = bw.plan().bands;
  T* dz_all = ctx.arena->alloc<T>(nt * P * F);  // (nt, P, F): an image of dz per thread
  T* codes = ctx.arena->alloc<T>(nt * pg.OW * F);  // the scatter's scratch
  const MaxPoolKernels::BackwardArgmaxSerial<T> scatter =
      max_pool_kernels[ctx.isa].backward_argmax_serial<T>();
  Conv2dGeom image = pg;  // one image's pooling of the covered rows and columns
  image.N = 1;
  image.H = c.OH;
  image.W = c.OW;
  for_thread_items(bw.items(), nt, [&](int tid, ItemRange r) {
    T* dz = dz_all + tid * P * F;
    for (int64_t item = r.begin; item < r.end;) {
      const int64_t n = item / bands;
      scatter(dz, dy + n * pooled, argmax + n * pooled, codes + tid * pg.OW * F, image, true);
      // an image's dx belongs to the thread with its first band
      if (dx && item == n * bands) bw.dx_image(tid, dx, n, dz);
      for (const int64_t end = std::min(r.end, (n + 1) * bands); item < end; ++item)
        bw.dw_band(tid, x, item, dz);
    }
  });
  bw.finish(dw, db);
}

template void conv2d_relu_max_pool2d_forward<float>(float*, uint8_t*, const float*, const float*,
                                                    const float*, const Conv2dGeom&,
                                                    const Conv2dGeom&, const Context&);
template void conv2d_relu_max_pool2d_forward<double>(double*, uint8_t*, const double*,
                                                     const double*, const double*,
                                                     const Conv2dGeom&, const Conv2dGeom&,
                                                     const Context&);

template void conv2d_relu_max_pool2d_backward<float>(float*, float*, float*, const float*,
                                                     const uint8_t*, const float*, const float*,
                                                     const Conv2dGeom&, const Conv2dGeom&,
                                                     const Context&);
template void conv2d_relu_max_pool2d_backward<double>(double*, double*, double*, const double*,
                                                      const uint8_t*, const double*,
                                                      const double*, const Conv2dGeom&,
                                                      const Conv2dGeom&, const Context&);

}  // namespace fastdl::cpu
