// Depthwise convolution kernels (depthwise_conv2d.h), compiled once per
// capability level and registered in depthwise_conv_kernels. Forward and
// backward walk the same (output pixel, valid tap) pairs; the inner loops run
// over the channels, contiguous in x, w, y and dy, and vectorise at each
// level's width. With M = 1 (the common case) channel j of y reads channel j
// of x; otherwise channel c of x feeds the M outputs c*M .. c*M+M-1.
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/conv/depthwise_conv2d.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// acc (C*M,) += x (C,) * w (C*M,) per channel (x repeated M times).
template <typename T>
inline void madd(T* __restrict acc /* (C*M,) */, const T* __restrict xp /* (C,) */,
                 const T* __restrict wp /* (C*M,) */, int64_t C, int64_t M) {
  if (M == 1) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc[c] += xp[c] * wp[c];
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    const T xv = xp[c];
    T* a = acc + c * M;
    const T* wr = wp + c * M;
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) a[m] += xv * wr[m];
  }
}

// Channels [c0, c0 + B) of output pixel (oh, ow) with M = 1, B a compile-time
// block: the sums stay in registers across the taps (y is written once).
template <typename T, int B>
inline void pixel_block(T* __restrict yp /* (F,) one pixel */, const T* __restrict xn /* (H,W,C) */,
                        const T* __restrict w /* (KH,KW,C) */, const T* __restrict b /* (F,) or null */,
                        const Conv2dGeom& g, int64_t oh, int64_t ow,
                        int64_t kh0, int64_t kh1, int64_t kw0, int64_t kw1, int64_t c0,
                        bool relu) {
  T acc[B];
#pragma omp simd
  for (int j = 0; j < B; ++j) acc[j] = b ? b[c0 + j] : T(0);
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
      const T* xp = xn + (ih * g.W + iw) * g.C + c0;
      const T* wp = w + (kh * g.KW + kw) * g.F + c0;
#pragma omp simd
      for (int j = 0; j < B; ++j) acc[j] += xp[j] * wp[j];
    }
  }
#pragma omp simd
  for (int j = 0; j < B; ++j) yp[c0 + j] = relu && !(acc[j] > T(0)) ? T(0) : acc[j];
}

// P adjacent output pixels (oh, ow .. ow+P-1) of one row that read the same
// taps [kw0, kw1), channels [c0, c0 + B), M = 1: each kernel vector loaded once
// serves the P pixels.
template <typename T, int B, int P>
inline void pixels_block(T* __restrict yp /* (P,F) */, const T* __restrict xn /* (H,W,C) */,
                         const T* __restrict w /* (KH,KW,C) */,
                         const T* __restrict b /* (F,) or null */, const Conv2dGeom& g,
                         int64_t oh, int64_t ow, int64_t kh0, int64_t kh1, int64_t kw0,
                         int64_t kw1, int64_t c0, bool relu) {
  T acc[P][B];
  for (int p = 0; p < P; ++p)
#pragma omp simd
    for (int j = 0; j < B; ++j) acc[p][j] = b ? b[c0 + j] : T(0);
  const int64_t step = g.SW * g.C;
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
    for (int64_t kw = kw0; kw < kw1; ++kw) {
      const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
      const T* xp = xn + (ih * g.W + iw) * g.C + c0;
      const T* wp = w + (kh * g.KW + kw) * g.F + c0;
      for (int p = 0; p < P; ++p)
#pragma omp simd
        for (int j = 0; j < B; ++j) acc[p][j] += xp[p * step + j] * wp[j];
    }
  }
  for (int p = 0; p < P; ++p)
#pragma omp simd
    for (int j = 0; j < B; ++j)
      yp[p * g.F + c0 + j] = relu && !(acc[p][j] > T(0)) ? T(0) : acc[p][j];
}

// y rows [oh0, oh1) of image n.
template <typename T>
void depthwise_rows(T* y /* (N,OH,OW,C*M) */, const T* x /* (N,H,W,C) */,
                    const T* w /* (KH,KW,C,M) */, const T* b /* (C*M,) or null */,
                    const Conv2dGeom& g, int64_t n, int64_t oh0, int64_t oh1, bool relu) {
  const int64_t C = g.C, F = g.F, M = F / (C > 0 ? C : 1);
  // channels per register block: four 256-bit vectors (two 512-bit ones)
  constexpr int kBlock = int(128 / sizeof(T));
  // kPixels pixels x kPair channels (two 256-bit vectors) of sums in registers
  constexpr int kPixels = 4, kPair = int(64 / sizeof(T));
  const T* xn = x + n * g.H * g.W * C;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    int64_t kh0, kh1;
    valid_taps(oh, g.H, g.KH, g.SH, g.DH, g.PT, &kh0, &kh1);
    T* yrow = y + (n * g.OH + oh) * g.OW * F;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      T* acc = yrow + ow * F;
      int64_t kw0, kw1;
      valid_taps(ow, g.W, g.KW, g.SW, g.DW, g.PL, &kw0, &kw1);
      if (M == 1 && C % kPair == 0 && ow + kPixels <= g.OW) {
        int64_t a, z;  // the last of the kPixels pixels reads the same taps: so do all
        valid_taps(ow + kPixels - 1, g.W, g.KW, g.SW, g.DW, g.PL, &a, &z);
        if (a == kw0 && z == kw1) {
          for (int64_t c0 = 0; c0 < C; c0 += kPair)
            pixels_block<T, kPair, kPixels>(acc, xn, w, b, g, oh, ow, kh0, kh1, kw0, kw1, c0,
                                            relu);
          ow += kPixels - 1;
          continue;
        }
      }
      int64_t done = 0;  // channels finished by the register blocks
      if (M == 1) {
        for (; done + kBlock <= C; done += kBlock)
          pixel_block<T, kBlock>(acc, xn, w, b, g, oh, ow, kh0, kh1, kw0, kw1, done, relu);
        for (; done + 8 <= C; done += 8)
          pixel_block<T, 8>(acc, xn, w, b, g, oh, ow, kh0, kh1, kw0, kw1, done, relu);
        if (done == F) continue;
      }
      // the rest (or every channel when M > 1): accumulated in y itself
      for (int64_t j = done; j < F; ++j) acc[j] = b ? b[j] : T(0);
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
        for (int64_t kw = kw0; kw < kw1; ++kw) {
          const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
          madd(acc + done, xn + (ih * g.W + iw) * C + done / M, w + (kh * g.KW + kw) * F + done,
               C - done / M, M);
        }
      }
      if (relu) {
#pragma omp simd
        for (int64_t j = done; j < F; ++j) acc[j] = acc[j] > T(0) ? acc[j] : T(0);
      }
    }
  }
}

// Outputs [*o0, *o1) (of O) whose tap at offset `off` (= t*d) reads an input
// row o*s - lo + off inside [0, in).
inline void outputs_reading(int64_t in, int64_t off, int64_t s, int64_t lo, int64_t O,
                            int64_t* o0, int64_t* o1) {
  const int64_t a = lo - off, b = in - 1 + lo - off;
  *o0 = a <= 0 ? 0 : (a + s - 1) / s;
  *o1 = b < 0 ? 0 : (b / s + 1 < O ? b / s + 1 : O);
  if (*o1 < *o0) *o1 = *o0;
}

// dw (KH,KW,C) += and db (C,) += (unless null) of image n for M = 1, tap by
// tap: for each output row and tap, the sums over the row's pixels stay in
// registers (a block of channels at a time) and are added to dw once.
template <typename T>
void depthwise_dw_m1(T* dw /* (KH,KW,C) */, T* db /* (C,) or null */,
                     const T* dy /* (N,OH,OW,C) */, const T* x /* (N,H,W,C) */,
                     const Conv2dGeom& g, int64_t n) {
  constexpr int B = int(128 / sizeof(T));
  const int64_t C = g.C;
  const T* xn = x + n * g.H * g.W * C;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* dyrow = dy + (n * g.OH + oh) * g.OW * C;
    if (db)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const T* __restrict d = dyrow + ow * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) db[c] += d[c];
      }
    int64_t kh0, kh1;
    valid_taps(oh, g.H, g.KH, g.SH, g.DH, g.PT, &kh0, &kh1);
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const T* xrow = xn + tap_input(oh, kh, g.SH, g.DH, g.PT) * g.W * C;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        int64_t ow0, ow1;
        outputs_reading(g.W, kw * g.DW, g.SW, g.PL, g.OW, &ow0, &ow1);
        if (ow0 == ow1) continue;
        T* __restrict dwp = dw + (kh * g.KW + kw) * C;
        const T* xs = xrow + (ow0 * g.SW - g.PL + kw * g.DW) * C;  // pixel ow0's input
        const int64_t xstep = g.SW * C;
        int64_t c0 = 0;
        for (; c0 + B <= C; c0 += B) {
          T acc[B];
#pragma omp simd
          for (int j = 0; j < B; ++j) acc[j] = T(0);
          for (int64_t ow = ow0; ow < ow1; ++ow) {
            const T* xp = xs + (ow - ow0) * xstep + c0;
            const T* d = dyrow + ow * C + c0;
#pragma omp simd
            for (int j = 0; j < B; ++j) acc[j] += xp[j] * d[j];
          }
#pragma omp simd
          for (int j = 0; j < B; ++j) dwp[c0 + j] += acc[j];
        }
        for (int64_t ow = ow0; c0 < C && ow < ow1; ++ow) {
          const T* __restrict xp = xs + (ow - ow0) * xstep;
          const T* __restrict d = dyrow + ow * C;
#pragma omp simd
          for (int64_t c = c0; c < C; ++c) dwp[c] += xp[c] * d[c];
        }
      }
    }
  }
}

// Image n of the backward pass: dx (overwritten, unless null), dw +=, db +=
// (unless null). Every (output pixel, valid tap) pair adds
//     dx[ih,iw,c] += sum_m dy[c*M+m] * w[kh,kw,c,m],   dw[kh,kw,c,m] += x[ih,iw,c] * dy[c*M+m].
// With M = 1, dw and db come from depthwise_dw_m1 (the same sums whether dx is
// wanted or not) and the pairs only scatter dx.
template <typename T>
void depthwise_image(T* dx /* (N,H,W,C) or null */, T* dw /* (KH,KW,C,M) */,
                     T* db /* (C*M,) or null */, const T* dy /* (N,OH,OW,C*M) */,
                     const T* x /* (N,H,W,C) */, const T* w /* (KH,KW,C,M) */,
                     const Conv2dGeom& g, int64_t n) {
  const int64_t C = g.C, F = g.F, M = F / (C > 0 ? C : 1);
  if (M == 1) {  // dw and db tap by tap; then only dx is left for the loop below
    depthwise_dw_m1(dw, db, dy, x, g, n);
    if (!dx) return;
    db = nullptr;
  }
  const T* xn = x + n * g.H * g.W * C;
  T* dxn = dx ? dx + n * g.H * g.W * C : nullptr;
  if (dxn)
    for (int64_t i = 0; i < g.H * g.W * C; ++i) dxn[i] = T(0);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    int64_t kh0, kh1;
    valid_taps(oh, g.H, g.KH, g.SH, g.DH, g.PT, &kh0, &kh1);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const T* __restrict d = dy + ((n * g.OH + oh) * g.OW + ow) * F;
      if (db) {
#pragma omp simd
        for (int64_t j = 0; j < F; ++j) db[j] += d[j];
      }
      int64_t kw0, kw1;
      valid_taps(ow, g.W, g.KW, g.SW, g.DW, g.PL, &kw0, &kw1);
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const int64_t ih = tap_input(oh, kh, g.SH, g.DH, g.PT);
        for (int64_t kw = kw0; kw < kw1; ++kw) {
          const int64_t iw = tap_input(ow, kw, g.SW, g.DW, g.PL);
          const T* __restrict xp = xn + (ih * g.W + iw) * C;
          const T* __restrict wp = w + (kh * g.KW + kw) * F;
          T* __restrict dwp = dw + (kh * g.KW + kw) * F;
          if (M == 1) {  // dx only (dw is done)
            T* __restrict dxp = dxn + (ih * g.W + iw) * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) dxp[c] += d[c] * wp[c];
            continue;
          }
          for (int64_t c = 0; c < C; ++c) {
            const T xv = xp[c];
            const T* dr = d + c * M;
            const T* wr = wp + c * M;
            T* dwr = dwp + c * M;
            T s = T(0);
#pragma omp simd reduction(+ : s)
            for (int64_t m = 0; m < M; ++m) {
              dwr[m] += xv * dr[m];
              s += dr[m] * wr[m];
            }
            if (dxn) dxn[(ih * g.W + iw) * C + c] += s;
          }
        }
      }
    }
  }
}

constexpr DepthwiseConvKernels kKernels{&depthwise_rows<float>, &depthwise_rows<double>,
                                        &depthwise_image<float>, &depthwise_image<double>};
FASTDL_REGISTER_KERNELS(depthwise_conv_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
