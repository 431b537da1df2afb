// The max-pooling kernels, compiled once per capability level and registered
// in max_pool_kernels (runtime/dispatch.h); max_pool2d.cpp looks them up.
// Every inner loop runs over the C contiguous channels of one pixel, so it
// vectorises at the file's width; the window loops around it visit only the
// taps inside x (pool_window.h), so padding needs no special values. Nothing
// here may instantiate an inline function shared with generic code (such as
// the Arena's), so scratch memory comes from the dispatcher.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/conv_geometry.h"
#include "cpu/pool/max_pool2d.h"
#include "cpu/runtime/context.h"  // Context, read only
#include "cpu/pool/pool_window.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {
// hit ? v : 0, written with a bit mask: GCC vectorises this, not the select.
template <typename T>
inline T keep_if(bool hit, T v) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U u;
  std::memcpy(&u, &v, sizeof(T));
  u &= U(0) - U(hit);
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

template <typename T>
void max_pool2d_forward_impl(T* y, const T* x, const Conv2dGeom& g, const Context& ctx) {
  const int64_t C = g.C, rows = g.N * g.OH;
  // One task per output row: independent writes, enough tasks even at N = 1.
#pragma omp parallel for num_threads(ctx.nthreads) if (ctx.nthreads > 1) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    const T* xn = x + n * g.H * g.W * C;
    const auto [h0, h1, ih0] = pool_rows(g, oh);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const auto [w0, w1, iw0] = pool_cols(g, ow);
      T* yp = y + (r * g.OW + ow) * C;
      std::memcpy(yp, xn + ((ih0 + h0) * g.W + iw0 + w0) * C, sizeof(T) * C);
      for (int64_t kh = h0; kh < h1; ++kh) {
        for (int64_t kw = (kh == h0 ? w0 + 1 : w0); kw < w1; ++kw) {
          const T* xp = xn + ((ih0 + kh) * g.W + iw0 + kw) * C;
          for (int64_t c = 0; c < C; ++c) yp[c] = xp[c] > yp[c] ? xp[c] : yp[c];
        }
      }
    }
  }
}

// scratch: nthreads * C values, one pixel's window maxima per thread.
// Relu: x is a ReLU's output and dx the gradient of its input, so a window
// whose maximum is not positive passes nothing on.
template <bool Relu, typename T>
void max_pool2d_backward_loop(T* dx, const T* dy, const T* x, T* scratch, const Conv2dGeom& g,
                              const Context& ctx) {
  const int64_t C = g.C, image = g.H * g.W * C;
  const int nt = ctx.nthreads;
  // Windows that do not overlap get each dx pixel from at most one window, so
  // dx can be assigned instead of accumulated; when they also tile the whole
  // image, nothing needs zeroing first.
  const bool disjoint = g.SH >= g.KH && g.SW >= g.KW;
  const bool tiles = g.SH == g.KH && g.SW == g.KW && (g.OH - 1) * g.SH - g.PT + g.KH >= g.H &&
                     (g.OW - 1) * g.SW - g.PL + g.KW >= g.W;
  // Windows that tile from the top-left corner (stride = size, no leading
  // padding) assign every dx pixel they cover; only the rows and columns past
  // the last window need zeros, not the whole image.
  const bool from_corner = g.SH == g.KH && g.SW == g.KW && g.PT == 0 && g.PL == 0;
  const int64_t covered_h = std::min<int64_t>(g.H, g.OH * g.KH);
  const int64_t covered_w = std::min<int64_t>(g.W, g.OW * g.KW);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // One task per image: overlapping windows of one image accumulate into the
  // same dx pixels, so an image belongs to one thread.
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
#ifdef _OPENMP
    const int tid = nt > 1 ? omp_get_thread_num() : 0;
#else
    const int tid = 0;
#endif
    T* __restrict m = scratch + tid * C;
    const T* xn = x + n * image;
    T* dxn = dx + n * image;
    if (!tiles && from_corner) {
      if (covered_w < g.W)
        for (int64_t h = 0; h < covered_h; ++h)
          std::memset(dxn + (h * g.W + covered_w) * C, 0, sizeof(T) * (g.W - covered_w) * C);
      std::memset(dxn + covered_h * g.W * C, 0, sizeof(T) * (g.H - covered_h) * g.W * C);
    } else if (!tiles) {
      std::memset(dxn, 0, sizeof(T) * image);
    }
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const auto [h0, h1, ih0] = pool_rows(g, oh);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const auto [w0, w1, iw0] = pool_cols(g, ow);
        const T* __restrict dyp = dy + ((n * g.OH + oh) * g.OW + ow) * C;
        // Pass 1: the window maximum of each channel.
        std::memcpy(m, xn + ((ih0 + h0) * g.W + iw0 + w0) * C, sizeof(T) * C);
        for (int64_t kh = h0; kh < h1; ++kh)
          for (int64_t kw = w0; kw < w1; ++kw) {
            const T* __restrict xp = xn + ((ih0 + kh) * g.W + iw0 + kw) * C;
            for (int64_t c = 0; c < C; ++c) m[c] = xp[c] > m[c] ? xp[c] : m[c];
          }
        // Pass 2, taps in order: the first tap equal to the maximum takes dy,
        // then the maximum becomes NaN so that no later tap matches it.
        for (int64_t kh = h0; kh < h1; ++kh)
          for (int64_t kw = w0; kw < w1; ++kw) {
            const T* __restrict xp = xn + ((ih0 + kh) * g.W + iw0 + kw) * C;
            T* __restrict dxp = dxn + ((ih0 + kh) * g.W + iw0 + kw) * C;
            if (disjoint) {
              for (int64_t c = 0; c < C; ++c) {
                const T v = xp[c], mc = m[c], d = dyp[c];
                const bool hit = Relu ? (v == mc) & (v > T(0)) : v == mc;
                dxp[c] = keep_if(hit, d);
                m[c] = v == mc ? nan : mc;
              }
            } else {
              for (int64_t c = 0; c < C; ++c) {
                const T v = xp[c], mc = m[c], d = dyp[c];
                const bool hit = Relu ? (v == mc) & (v > T(0)) : v == mc;
                dxp[c] += keep_if(hit, d);
                m[c] = v == mc ? nan : mc;
              }
            }
          }
      }
    }
  }
}

template <typename T>
void max_pool2d_backward_impl(T* dx, const T* dy, const T* x, T* scratch, const Conv2dGeom& g,
                              bool relu, const Context& ctx) {
  if (relu) max_pool2d_backward_loop<true>(dx, dy, x, scratch, g, ctx);
  else max_pool2d_backward_loop<false>(dx, dy, x, scratch, g, ctx);
}

constexpr MaxPoolKernels kKernels{&max_pool2d_forward_impl<float>, &max_pool2d_forward_impl<double>,
                                  &max_pool2d_backward_impl<float>, &max_pool2d_backward_impl<double>};
FASTDL_REGISTER_KERNELS(max_pool_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
