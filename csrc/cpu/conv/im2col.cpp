// The patch matrix of the card's algorithm (im2col + GEMM) and its adjoint.
#include "cpu/conv/im2col.h"

#include <cstring>

namespace fastdl::cpu {

template <typename T>
void im2col(T* col, const T* x, const Conv2dGeom& g, int64_t m0, int64_t m1) {
  const int64_t C = g.C, KW = g.KW, K = g.KH * g.KW * C, P = g.OH * g.OW;
  int64_t n = m0 / P, oh = (m0 % P) / g.OW, ow = (m0 % P) % g.OW;
  for (int64_t m = m0; m < m1; ++m) {
    T* row = col + (m - m0) * K;
    const T* xn = x + n * g.H * g.W * C;
    const int64_t ih0 = oh * g.SH - g.PT, iw0 = ow * g.SW - g.PL;
    const bool row_inside = g.DW == 1 && iw0 >= 0 && iw0 + KW <= g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = ih0 + kh * g.DH;
      T* dst = row + kh * KW * C;
      if (ih < 0 || ih >= g.H) {
        std::memset(dst, 0, sizeof(T) * KW * C);
        continue;
      }
      const T* src = xn + ih * g.W * C;
      if (row_inside) {  // the window's row is KW * C contiguous values of x
        std::memcpy(dst, src + iw0 * C, sizeof(T) * KW * C);
        continue;
      }
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t iw = iw0 + kw * g.DW;
        if (iw < 0 || iw >= g.W) std::memset(dst + kw * C, 0, sizeof(T) * C);
        else std::memcpy(dst + kw * C, src + iw * C, sizeof(T) * C);
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

template void im2col<float>(float*, const float*, const Conv2dGeom&, int64_t, int64_t);
template void im2col<double>(double*, const double*, const Conv2dGeom&, int64_t, int64_t);
template void col2im<float>(float*, const float*, const Conv2dGeom&, int64_t, int64_t);
template void col2im<double>(double*, const double*, const Conv2dGeom&, int64_t, int64_t);

}  // namespace fastdl::cpu
