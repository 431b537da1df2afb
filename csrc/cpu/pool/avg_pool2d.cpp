// Average pooling; loops as in max_pool2d.cpp (inner loop over channels).
#include "cpu/pool/avg_pool2d.h"
#include "cpu/pool/pool_window.h"

#include <cstring>

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// Threads worth using: each output reads its window once (runtime/threading.h).
int pool_threads(const Conv2dGeom& g, const Context& ctx) {
  // in doubles: the int64 products may overflow for huge (refused later) geometries
  const double reads = double(g.N) * double(g.OH) * double(g.OW) * double(g.C) * double(g.KH) *
                       double(g.KW);
  return threads_for(reads, kParallelMinElements, ctx.nthreads);
}
}  // namespace

template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Conv2dGeom& g, const Context& ctx) {
  const int64_t C = g.C, rows = g.N * g.OH;
  const int nt = pool_threads(g, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    const T* xn = x + n * g.H * g.W * C;
    const auto [h0, h1, ih0] = pool_rows(g, oh);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const auto [w0, w1, iw0] = pool_cols(g, ow);
      T* yp = y + (r * g.OW + ow) * C;
      std::memset(yp, 0, sizeof(T) * C);
      for (int64_t kh = h0; kh < h1; ++kh)
        for (int64_t kw = w0; kw < w1; ++kw) {
          const T* xp = xn + ((ih0 + kh) * g.W + iw0 + kw) * C;
          for (int64_t c = 0; c < C; ++c) yp[c] += xp[c];
        }
      const T scale = T(1) / T((h1 - h0) * (w1 - w0));
      for (int64_t c = 0; c < C; ++c) yp[c] *= scale;
    }
  }
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, const Conv2dGeom& g, const Context& ctx) {
  const int64_t C = g.C, image = g.H * g.W * C;
  // One task per image: overlapping windows accumulate into shared pixels.
  const int nt = pool_threads(g, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    T* dxn = dx + n * image;
    std::memset(dxn, 0, sizeof(T) * image);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const auto [h0, h1, ih0] = pool_rows(g, oh);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const auto [w0, w1, iw0] = pool_cols(g, ow);
        const T* dyp = dy + ((n * g.OH + oh) * g.OW + ow) * C;
        const T scale = T(1) / T((h1 - h0) * (w1 - w0));
        for (int64_t kh = h0; kh < h1; ++kh)
          for (int64_t kw = w0; kw < w1; ++kw) {
            T* dxp = dxn + ((ih0 + kh) * g.W + iw0 + kw) * C;
            for (int64_t c = 0; c < C; ++c) dxp[c] += dyp[c] * scale;
          }
      }
    }
  }
}

template void avg_pool2d_forward<float>(float*, const float*, const Conv2dGeom&, const Context&);
template void avg_pool2d_forward<double>(double*, const double*, const Conv2dGeom&,
                                         const Context&);
template void avg_pool2d_backward<float>(float*, const float*, const Conv2dGeom&, const Context&);
template void avg_pool2d_backward<double>(double*, const double*, const Conv2dGeom&,
                                          const Context&);

}  // namespace fastdl::cpu
