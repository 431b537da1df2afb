// The max-pooling kernels, compiled once per capability level and registered
// in max_pool_kernels (runtime/dispatch.h); max_pool2d.cpp looks them up.
// Every inner loop runs over the C contiguous channels of one pixel, so it
// vectorises at the file's width (the forward pass with explicit vectors that
// hold a window's maxima in registers); the window loops around it visit only the
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

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {
// The calling thread's number inside a parallel region of nt threads (0 outside one).
inline int thread_index(int nt) {
#ifdef _OPENMP
  return nt > 1 ? omp_get_thread_num() : 0;
#else
  (void)nt;
  return 0;
#endif
}

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

// One register of channels as a GCC vector, at this level's width (as in
// conv/direct_kernels.cpp), and the int32 and byte vectors of as many lanes.
constexpr int kVecBytes = FASTDL_CAP_LEVEL == 0 ? 16 : FASTDL_CAP_LEVEL == 1 ? 32 : 64;
template <typename T>
struct Vec {
  static constexpr int L = int(kVecBytes / sizeof(T));
  typedef T type __attribute__((vector_size(kVecBytes)));
  typedef int32_t i32 __attribute__((vector_size(L * 4)));
  typedef uint8_t bytes __attribute__((vector_size(L * 4)));  // an i32's bytes
};

// The low byte of every lane of v, as the first L bytes of a byte vector: one
// shuffle (__builtin_convertvector to bytes ran lane by lane in scalar code).
template <typename T>
inline typename Vec<T>::bytes low_bytes(typename Vec<T>::i32 v) {
  using B = typename Vec<T>::bytes;
  B b, pick{};
  __builtin_memcpy(&b, &v, sizeof(b));
  for (int i = 0; i < Vec<T>::L; ++i) pick[i] = uint8_t(4 * i);
  return __builtin_shuffle(b, pick);
}

// The argmax codes (max_pool2d.h) of maxima m at taps tap.
template <typename T>
inline uint32_t argmax_code(T m, T tap) {
  const uint32_t not_positive = (0u - uint32_t(!(m > T(0)))) & kMaxPoolNotPositive;
  const uint32_t nan = (0u - uint32_t(m != m)) & kMaxPoolNoTap;
  return uint32_t(int32_t(tap)) | not_positive | nan;
}

// The argmax codes of a vector of maxima m found at taps tap, as L bytes at ap.
template <typename T>
inline void store_codes(uint8_t* ap, typename Vec<T>::type m, typename Vec<T>::type tap) {
  using V = typename Vec<T>::type;
  using I = typename Vec<T>::i32;
  const I positive = __builtin_convertvector(m > V{}, I);  // lanes of -1 or 0
  const I not_positive = ~positive & (I{} + int(kMaxPoolNotPositive));
  const I nan = __builtin_convertvector(m != m, I) & (I{} + int(kMaxPoolNoTap));
  const I code = __builtin_convertvector(tap, I) | not_positive | nan;
  const typename Vec<T>::bytes b = low_bytes<T>(code);
  __builtin_memcpy(ap, &b, Vec<T>::L);
}

// One output pixel: yp (C,) = the maxima over the window's taps inside x, rows
// [h0, h1) x columns [w0, w1), tap (kh, kw) at xn + o + (kh * W + kw) * C; and,
// with Argmax, ap (C,) = their codes. A vector of channels at a time, the
// maximum and its tap held in registers while the taps stream by.
template <bool Argmax, typename T>
inline void window_max(T* __restrict yp, uint8_t* __restrict ap, const T* xn, int64_t o,
                       int64_t W, int64_t C, int64_t KW, int64_t h0, int64_t h1, int64_t w0,
                       int64_t w1) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::L;
  const T first = T(h0 * KW + w0);
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V m, tap = V{} + first;
    __builtin_memcpy(&m, xn + o + (h0 * W + w0) * C + c, sizeof(V));
    for (int64_t kh = h0; kh < h1; ++kh)
      for (int64_t kw = (kh == h0 ? w0 + 1 : w0); kw < w1; ++kw) {
        V v;
        __builtin_memcpy(&v, xn + o + (kh * W + kw) * C + c, sizeof(V));
        const auto gt = v > m;   // strictly: the first maximum keeps its tap
        m = gt ? v : m;
        if (Argmax) tap = gt ? V{} + T(kh * KW + kw) : tap;
      }
    __builtin_memcpy(yp + c, &m, sizeof(V));
    if (Argmax) store_codes<T>(ap + c, m, tap);
  }
  for (; c < C; ++c) {
    T m = xn[o + (h0 * W + w0) * C + c], tap = first;
    for (int64_t kh = h0; kh < h1; ++kh)
      for (int64_t kw = (kh == h0 ? w0 + 1 : w0); kw < w1; ++kw) {
        const T v = xn[o + (kh * W + kw) * C + c];
        if (v > m) {
          m = v;
          tap = T(kh * KW + kw);
        }
      }
    yp[c] = m;
    if (Argmax) ap[c] = uint8_t(argmax_code(m, tap));
  }
}

// A row of 2x2 windows that tile x from its top-left corner (Keras' default
// pooling, unrolled; the window loops of window_max cost more than its
// arithmetic here): y (OW,C) and, with Argmax, the codes, from the two input
// rows at xr (W,C each). The same values and codes as window_max.
template <bool Argmax, typename T>
inline void tiled_2x2_row(T* __restrict y, uint8_t* __restrict a, const T* xr, int64_t W,
                          int64_t C, int64_t OW) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::L;
  const int64_t below = W * C;  // the second row's offset
  for (int64_t ow = 0; ow < OW; ++ow) {
    const T* p = xr + 2 * ow * C;
    T* yp = y + ow * C;
    int64_t c = 0;
    for (; c + L <= C; c += L) {
      V m, v1, v2, v3;
      __builtin_memcpy(&m, p + c, sizeof(V));
      __builtin_memcpy(&v1, p + C + c, sizeof(V));
      __builtin_memcpy(&v2, p + below + c, sizeof(V));
      __builtin_memcpy(&v3, p + below + C + c, sizeof(V));
      V tap = V{};
      auto gt = v1 > m;  // strictly: the first maximum keeps its tap
      m = gt ? v1 : m;
      if (Argmax) tap = gt ? V{} + T(1) : tap;
      gt = v2 > m;
      m = gt ? v2 : m;
      if (Argmax) tap = gt ? V{} + T(2) : tap;
      gt = v3 > m;
      m = gt ? v3 : m;
      if (Argmax) tap = gt ? V{} + T(3) : tap;
      __builtin_memcpy(yp + c, &m, sizeof(V));
      if (Argmax) store_codes<T>(a + ow * C + c, m, tap);
    }
    for (; c < C; ++c) {  // the channels past the last vector
      const T t[3] = {p[C + c], p[below + c], p[below + C + c]};
      T m = p[c], tap = T(0);
      for (int i = 0; i < 3; ++i)
        if (t[i] > m) {
          m = t[i];
          tap = T(i + 1);
        }
      yp[c] = m;
      if (Argmax) a[ow * C + c] = uint8_t(argmax_code(m, tap));
    }
  }
}

// Output row r of the N * OH rows; argmax null: y only, otherwise also the
// argmax codes (max_pool2d.h).
template <bool Argmax, typename T>
inline void forward_row(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g, int64_t r) {
  const int64_t C = g.C, n = r / g.OH, oh = r % g.OH;
  const T* xn = x + n * g.H * g.W * C;
  if (g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PT == 0 && g.PL == 0 &&
      2 * g.OH <= g.H && 2 * g.OW <= g.W) {
    tiled_2x2_row<Argmax>(y + r * g.OW * C, Argmax ? argmax + r * g.OW * C : nullptr,
                          xn + 2 * oh * g.W * C, g.W, C, g.OW);
    return;
  }
  const auto [h0, h1, ih0] = pool_rows(g, oh);
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    const auto [w0, w1, iw0] = pool_cols(g, ow);
    const int64_t o = (r * g.OW + ow) * C;
    window_max<Argmax>(y + o, Argmax ? argmax + o : nullptr, xn, (ih0 * g.W + iw0) * C, g.W,
                       C, g.KW, h0, h1, w0, w1);
  }
}

template <bool Argmax, typename T>
void max_pool2d_forward_loop(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g,
                             const Context& ctx) {
  const int64_t rows = g.N * g.OH;
  const int nt = ctx.nthreads;
  // One task per output row: independent writes, enough tasks even at N = 1.
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t r = 0; r < rows; ++r) forward_row<Argmax>(y, argmax, x, g, r);
}

template <typename T>
void max_pool2d_forward_impl(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g,
                             const Context& ctx) {
  if (argmax) max_pool2d_forward_loop<true>(y, argmax, x, g, ctx);
  else max_pool2d_forward_loop<false>(y, argmax, x, g, ctx);
}

// Every row on the calling thread, with the codes (no parallel region: for a
// caller that pools small bands from inside its own).
template <typename T>
void max_pool2d_forward_serial_impl(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g) {
  for (int64_t r = 0; r < g.N * g.OH; ++r) forward_row<true>(y, argmax, x, g, r);
}

// Zeroes what the windows of image dxn will not assign: nothing when they tile
// it, the rows and columns past the last window when they tile from the
// top-left corner (stride = size, no leading padding), else everything (the
// windows then accumulate, or leave gaps).
template <typename T>
void zero_unassigned(T* dxn, const Conv2dGeom& g) {
  const int64_t C = g.C;
  const bool tiles = g.SH == g.KH && g.SW == g.KW && (g.OH - 1) * g.SH - g.PT + g.KH >= g.H &&
                     (g.OW - 1) * g.SW - g.PL + g.KW >= g.W;
  if (tiles) return;
  const bool from_corner = g.SH == g.KH && g.SW == g.KW && g.PT == 0 && g.PL == 0;
  if (!from_corner) {
    std::memset(dxn, 0, sizeof(T) * g.H * g.W * C);
    return;
  }
  const int64_t covered_h = std::min<int64_t>(g.H, g.OH * g.KH);
  const int64_t covered_w = std::min<int64_t>(g.W, g.OW * g.KW);
  if (covered_w < g.W)
    for (int64_t h = 0; h < covered_h; ++h)
      std::memset(dxn + (h * g.W + covered_w) * C, 0, sizeof(T) * (g.W - covered_w) * C);
  std::memset(dxn + covered_h * g.W * C, 0, sizeof(T) * (g.H - covered_h) * g.W * C);
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
  // dx can be assigned instead of accumulated (zero_unassigned does the rest).
  const bool disjoint = g.SH >= g.KH && g.SW >= g.KW;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // One task per image: overlapping windows of one image accumulate into the
  // same dx pixels, so an image belongs to one thread.
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    T* __restrict m = scratch + thread_index(nt) * C;
    const T* xn = x + n * image;
    T* dxn = dx + n * image;
    zero_unassigned(dxn, g);
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

// One row of a window: dxp (KW,C) pixel kw = dy (C,) where code (C,) is tap
// t0 + kw, else 0. A vector of channels at a time, its codes and dy loaded
// once for the KW pixels.
template <typename T>
inline void scatter_window_row(T* __restrict dxp, const T* __restrict dyp,
                               const T* __restrict code, int64_t C, int64_t KW, T t0) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::L;
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V k, d;
    __builtin_memcpy(&k, code + c, sizeof(V));
    __builtin_memcpy(&d, dyp + c, sizeof(V));
    for (int64_t kw = 0; kw < KW; ++kw) {
      const V v = k == t0 + T(kw) ? d : V{};
      __builtin_memcpy(dxp + kw * C + c, &v, sizeof(V));
    }
  }
  for (; c < C; ++c)
    for (int64_t kw = 0; kw < KW; ++kw) dxp[kw * C + c] = keep_if(code[c] == t0 + T(kw), dyp[c]);
}

// The scatter into one image dxn (H,W,C) from its dy and codes (OH,OW,C) when
// the windows tile it from the top-left corner (strides = window, no padding):
// row by row, every value written once, what no window covers zeroed. A row of
// windows has its codes widened to T in code (OW*C values) once for its KH rows
// (converted per window, the window loops cost 2x the whole scatter).
template <bool Relu, typename T>
void tiled_scatter_image(T* dxn, const T* dyn, const uint8_t* an, T* __restrict code,
                         const Conv2dGeom& g) {
  const int64_t C = g.C, covered_w = g.OW * g.KW, run = g.OW * C;
  const int mask = Relu ? 255 : 127;  // as in argmax_scatter_image
  for (int64_t h = 0; h < g.H; ++h) {
    T* row = dxn + h * g.W * C;
    if (h >= g.OH * g.KH) {
      std::memset(row, 0, sizeof(T) * g.W * C);
      continue;
    }
    const int64_t oh = h / g.KH, kh = h % g.KH;
    const T* __restrict dyr = dyn + oh * run;
    if (kh == 0) {
      const uint8_t* __restrict ar = an + oh * run;
      for (int64_t i = 0; i < run; ++i) code[i] = T(int(ar[i]) & mask);
    }
    for (int64_t ow = 0; ow < g.OW; ++ow)
      scatter_window_row(row + ow * g.KW * C, dyr + ow * C, code + ow * C, C, g.KW,
                         T(kh * g.KW));
    std::memset(row + covered_w * C, 0, sizeof(T) * (g.W - covered_w) * C);
  }
}

// The scatter from the argmax codes into image n of dx (code: OW*C values of
// scratch). Tiling windows: tiled_scatter_image. Otherwise per window, its codes
// as T in code (C values; relu: flagged codes stay >= 128, which no tap equals;
// otherwise the flag is masked off and 255 becomes 127, which no tap of a
// window of at most 127 taps equals either), then each tap takes dy where its
// index matches.
template <bool Relu, typename T>
void argmax_scatter_image(T* dx, const T* dy, const uint8_t* argmax, T* __restrict code,
                          const Conv2dGeom& g, int64_t n) {
  const int64_t C = g.C;
  if (g.SH == g.KH && g.SW == g.KW && g.PT == 0 && g.PB == 0 && g.PL == 0 && g.PR == 0) {
    tiled_scatter_image<Relu>(dx + n * g.H * g.W * C, dy + n * g.OH * g.OW * C,
                              argmax + n * g.OH * g.OW * C, code, g);
    return;
  }
  const bool disjoint = g.SH >= g.KH && g.SW >= g.KW;
  const int mask = Relu ? 255 : 127;
  T* dxn = dx + n * g.H * g.W * C;
  zero_unassigned(dxn, g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const auto [h0, h1, ih0] = pool_rows(g, oh);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const auto [w0, w1, iw0] = pool_cols(g, ow);
      const int64_t o = ((n * g.OH + oh) * g.OW + ow) * C;
      const T* __restrict dyp = dy + o;
      const uint8_t* __restrict ap = argmax + o;
      for (int64_t c = 0; c < C; ++c) code[c] = T(int(ap[c]) & mask);
      for (int64_t kh = h0; kh < h1; ++kh)
        for (int64_t kw = w0; kw < w1; ++kw) {
          const T t = T(kh * g.KW + kw);
          T* __restrict dxp = dxn + ((ih0 + kh) * g.W + iw0 + kw) * C;
          if (disjoint)
            for (int64_t c = 0; c < C; ++c) dxp[c] = keep_if(code[c] == t, dyp[c]);
          else
            for (int64_t c = 0; c < C; ++c) dxp[c] += keep_if(code[c] == t, dyp[c]);
        }
    }
  }
}

// scratch: nthreads * OW * C values. Threads as in the backward pass above.
template <bool Relu, typename T>
void max_pool2d_backward_argmax_loop(T* dx, const T* dy, const uint8_t* argmax, T* scratch,
                                     const Conv2dGeom& g, const Context& ctx) {
  const int nt = ctx.nthreads;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < g.N; ++n)
    argmax_scatter_image<Relu>(dx, dy, argmax, scratch + thread_index(nt) * g.OW * g.C, g, n);
}

template <typename T>
void max_pool2d_backward_argmax_impl(T* dx, const T* dy, const uint8_t* argmax, T* scratch,
                                     const Conv2dGeom& g, bool relu, const Context& ctx) {
  if (relu) max_pool2d_backward_argmax_loop<true>(dx, dy, argmax, scratch, g, ctx);
  else max_pool2d_backward_argmax_loop<false>(dx, dy, argmax, scratch, g, ctx);
}

// Every image on the calling thread (scratch: OW * C values).
template <typename T>
void max_pool2d_backward_argmax_serial_impl(T* dx, const T* dy, const uint8_t* argmax,
                                            T* scratch, const Conv2dGeom& g, bool relu) {
  for (int64_t n = 0; n < g.N; ++n) {
    if (relu) argmax_scatter_image<true>(dx, dy, argmax, scratch, g, n);
    else argmax_scatter_image<false>(dx, dy, argmax, scratch, g, n);
  }
}

template <typename T>
void max_pool2d_backward_impl(T* dx, const T* dy, const T* x, T* scratch, const Conv2dGeom& g,
                              bool relu, const Context& ctx) {
  if (relu) max_pool2d_backward_loop<true>(dx, dy, x, scratch, g, ctx);
  else max_pool2d_backward_loop<false>(dx, dy, x, scratch, g, ctx);
}

constexpr MaxPoolKernels kKernels{
    &max_pool2d_forward_impl<float>,         &max_pool2d_forward_impl<double>,
    &max_pool2d_forward_serial_impl<float>,  &max_pool2d_forward_serial_impl<double>,
    &max_pool2d_backward_impl<float>,        &max_pool2d_backward_impl<double>,
    &max_pool2d_backward_argmax_impl<float>, &max_pool2d_backward_argmax_impl<double>,
    &max_pool2d_backward_argmax_serial_impl<float>,
    &max_pool2d_backward_argmax_serial_impl<double>};
FASTDL_REGISTER_KERNELS(max_pool_kernels, kKernels);

}  // namespace
#pragma GCC diagnostic pop
}  // namespace fastdl::cpu::FASTDL_CAP_NS
