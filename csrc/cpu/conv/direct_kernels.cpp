// The direct convolution kernels (see direct.h), compiled once per capability
// level (runtime/dispatch.h). Accumulators are small arrays of 64-byte GCC vectors (PB pixels
// or KB taps by up to two vectors of filters), kept in registers; the
// independent ones hide the FMA latency. No std:: templates here: an inline
// instantiation compiled with AVX flags must never be shared with generic code.
#include <cstdint>

#include "cpu/conv/direct.h"

namespace fastdl::cpu::FASTDL_CAP_NS {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {
// One register of filters as a GCC vector, at this level's width: 16 bytes
// (generic SSE), 32 (AVX2) or 64 (AVX-512). A wider-than-native vector (64
// bytes at the AVX2 level) made GCC 12 assemble each broadcast through the
// stack: the AVX2 build ran at under 1 GFLOP/s, 20-50x slower than im2col.
constexpr int kVecBytes = FASTDL_CAP_LEVEL == 0 ? 16 : FASTDL_CAP_LEVEL == 1 ? 32 : 64;
template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(kVecBytes))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(kVecBytes))); };

template <typename T>
inline typename VecOf<T>::type vload(const T* p) {
  typename VecOf<T>::type v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void vstore(T* p, typename VecOf<T>::type v) { __builtin_memcpy(p, &v, sizeof(v)); }

// Register blocks of PB pixels (or KB taps) x 2 vectors: 12 accumulators + 2
// operands + a broadcast fit the 16 SSE or AVX2 registers (the GEMM's 6x16
// micro-tile: 12 independent FMA chains hide the FMA latency, where 8 left
// the dw kernel of the MNIST convnet's second layer ~13% slower); 16 + 3 of
// the 32 AVX-512 registers. Each output still sums its terms in the same
// order whatever the blocking, so results do not depend on it.
constexpr int kPB = FASTDL_CAP_LEVEL == 2 ? 8 : 6;  // pixels per forward block
// Below this many taps the forward blocks are mostly their stores: 4 pixels a
// block ran the 9-tap first layer of the MNIST convnet ~12% faster than 6.
constexpr int64_t kShortK = 16;
constexpr int kKB = kPB;                             // patch rows per dw block
// Pixels to leave to the small blocks after the kPB-pixel ones: np % kPB, and one
// block more when that leaves a lone pixel or a pair, whose few chains cannot hide
// the FMA latency (7 pixels as 4 + 3 instead of 6 + 1: the MNIST convnet's second
// layer, bands of 55 pixels, forward in 0.94-0.99x the time, 1 thread, two
// interleaved runs on a busy machine). The small blocks take 4
// pixels while that does not leave one (5 = 3 + 2), then 3, 2 and 1.
inline int64_t small_rest(int64_t np) {
  const int64_t r = np % kPB;
  return (r == 1 || r == 2) && np > kPB ? r + kPB : r;
}
inline bool take_four(int64_t left) { return left >= 4 && left != 5; }

#define FASTDL_INLINE inline __attribute__((always_inline))

// Pixels [p, p + NP) x NV filter vectors at f0 of y = act(patches . w + b).
template <typename T, int NP, int NV>
FASTDL_INLINE void forward_block(T* __restrict y, const T* const* base, const int64_t* off,
                                 const T* __restrict w, const T* __restrict b, int64_t p,
                                 int64_t f0, int64_t K, int64_t F, bool relu) {
  using V = typename VecOf<T>::type;
  constexpr int L = int(sizeof(V) / sizeof(T));
  const T* px[NP];
  V acc[NP][NV];
  for (int i = 0; i < NP; ++i) {
    px[i] = base[p + i];
    for (int v = 0; v < NV; ++v) acc[i][v] = b ? vload(b + f0 + v * L) : V{};
  }
  for (int64_t k = 0; k < K; ++k) {
    V wk[NV];
    for (int v = 0; v < NV; ++v) wk[v] = vload(w + k * F + f0 + v * L);
    const int64_t o = off[k];
    for (int i = 0; i < NP; ++i) {
      const T a = px[i][o];
      for (int v = 0; v < NV; ++v) acc[i][v] += a * wk[v];
    }
  }
  for (int i = 0; i < NP; ++i)
    for (int v = 0; v < NV; ++v) {
      V r = acc[i][v];
      if (relu) r = r > V{} ? r : V{};
      vstore(y + (p + i) * F + f0 + v * L, r);
    }
}

// Rows [k0, k0 + NK) x NV filter vectors at f0 of dw += patches^T . dy.
template <typename T, int NK, int NV>
FASTDL_INLINE void dw_block(T* __restrict dw, const T* const* base, const int64_t* off,
                            const T* __restrict dy, int64_t np, int64_t k0, int64_t f0,
                            int64_t F) {
  using V = typename VecOf<T>::type;
  constexpr int L = int(sizeof(V) / sizeof(T));
  V acc[NK][NV];
  int64_t o[NK];
  for (int i = 0; i < NK; ++i) {
    o[i] = off[k0 + i];
    for (int v = 0; v < NV; ++v) acc[i][v] = vload(dw + (k0 + i) * F + f0 + v * L);
  }
  for (int64_t p = 0; p < np; ++p) {
    V d[NV];
    for (int v = 0; v < NV; ++v) d[v] = vload(dy + p * F + f0 + v * L);
    const T* px = base[p];
    for (int i = 0; i < NK; ++i) {
      const T a = px[o[i]];
      for (int v = 0; v < NV; ++v) acc[i][v] += a * d[v];
    }
  }
  for (int i = 0; i < NK; ++i)
    for (int v = 0; v < NV; ++v) vstore(dw + (k0 + i) * F + f0 + v * L, acc[i][v]);
}

// Pixels [p, p + NP) x NV channel vectors at c0 of tap k's dx run (wk = wt's
// tap k, ok = off[k]): dst[p][ok + c] += dy[p] (F) . wk (F,C) column c.
template <typename T, int NP, int NV>
FASTDL_INLINE void dx_block(T* const* dst, int64_t ok, const T* __restrict dy,
                            const T* __restrict wk, int64_t p, int64_t c0, int64_t C,
                            int64_t F) {
  using V = typename VecOf<T>::type;
  constexpr int L = int(sizeof(V) / sizeof(T));
  const T* d[NP];
  T* out[NP];
  V acc[NP][NV];
  for (int i = 0; i < NP; ++i) {
    d[i] = dy + (p + i) * F;
    out[i] = dst[p + i] + ok + c0;
    for (int v = 0; v < NV; ++v) acc[i][v] = vload(out[i] + v * L);
  }
  for (int64_t f = 0; f < F; ++f) {
    V wf[NV];
    for (int v = 0; v < NV; ++v) wf[v] = vload(wk + f * C + c0 + v * L);
    for (int i = 0; i < NP; ++i) {
      const T a = d[i][f];
      for (int v = 0; v < NV; ++v) acc[i][v] += a * wf[v];
    }
  }
  for (int i = 0; i < NP; ++i)
    for (int v = 0; v < NV; ++v) vstore(out[i] + v * L, acc[i][v]);
}

// Tap by tap, all the pixels of the call for each: a dx value gets the terms of
// its taps in tap order whatever the pixel blocks (within one tap no two pixels
// share a value), so leaving out pixels whose dy is zero changes no bit. Tap k's
// weights (F x C) stay in L1 while the pixels' dy rows stream by.
template <typename T, int NV>
void dx_columns(T* const* dst, const int64_t* off, const T* dy, const T* wt, int64_t np,
                int64_t c0, int64_t taps, int64_t C, int64_t F) {
  for (int64_t k = 0; k < taps; ++k) {
    const T* wk = wt + k * F * C;
    const int64_t ok = off[k];
    int64_t p = 0;
    for (const int64_t end = np - small_rest(np); p < end; p += kPB)
      dx_block<T, kPB, NV>(dst, ok, dy, wk, p, c0, C, F);
    for (; take_four(np - p); p += 4) dx_block<T, 4, NV>(dst, ok, dy, wk, p, c0, C, F);
    for (; p + 3 <= np; p += 3) dx_block<T, 3, NV>(dst, ok, dy, wk, p, c0, C, F);
    for (; p + 2 <= np; p += 2) dx_block<T, 2, NV>(dst, ok, dy, wk, p, c0, C, F);
    for (; p < np; ++p) dx_block<T, 1, NV>(dst, ok, dy, wk, p, c0, C, F);
  }
}

template <typename T, int NV>
void forward_columns(T* y, const T* const* base, const int64_t* off, const T* w, const T* b,
                     int64_t np, int64_t f0, int64_t K, int64_t F, bool relu) {
  int64_t p = 0;
  if (K >= kShortK)
    for (const int64_t end = np - small_rest(np); p < end; p += kPB)
      forward_block<T, kPB, NV>(y, base, off, w, b, p, f0, K, F, relu);
  for (; take_four(np - p); p += 4) forward_block<T, 4, NV>(y, base, off, w, b, p, f0, K, F, relu);
  for (; p + 3 <= np; p += 3) forward_block<T, 3, NV>(y, base, off, w, b, p, f0, K, F, relu);
  for (; p + 2 <= np; p += 2) forward_block<T, 2, NV>(y, base, off, w, b, p, f0, K, F, relu);
  for (; p < np; ++p) forward_block<T, 1, NV>(y, base, off, w, b, p, f0, K, F, relu);
}

template <typename T, int NV>
void dw_columns(T* dw, T* db, const T* const* base, const int64_t* off, const T* dy, int64_t np,
                int64_t f0, int64_t K, int64_t F) {
  int64_t k = 0;
  constexpr int KB = NV == 4 ? kKB / 2 : kKB;  // as many accumulators either way
  for (; k + KB <= K; k += KB) dw_block<T, KB, NV>(dw, base, off, dy, np, k, f0, F);
  for (; k + 3 <= K; k += 3) dw_block<T, 3, NV>(dw, base, off, dy, np, k, f0, F);
  for (; k + 2 <= K; k += 2) dw_block<T, 2, NV>(dw, base, off, dy, np, k, f0, F);
  for (; k < K; ++k) dw_block<T, 1, NV>(dw, base, off, dy, np, k, f0, F);
  if (!db) return;
  // db += column sums of the same dy rows (still in cache), at this file's width.
  using V = typename VecOf<T>::type;
  constexpr int L = int(sizeof(V) / sizeof(T));
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = vload(db + f0 + v * L);
  for (int64_t p = 0; p < np; ++p)
    for (int v = 0; v < NV; ++v) acc[v] += vload(dy + p * F + f0 + v * L);
  for (int v = 0; v < NV; ++v) vstore(db + f0 + v * L, acc[v]);
}

// Filters go in blocks of two vectors, then one, then a plain tail.
template <typename T>
void direct_forward(T* y, const T* const* base, const int64_t* off, const T* w, const T* b,
                    int64_t np, int64_t K, int64_t F, bool relu) {
  constexpr int L = int(kVecBytes / sizeof(T));
  int64_t f0 = 0;
  for (; f0 + 2 * L <= F; f0 += 2 * L) forward_columns<T, 2>(y, base, off, w, b, np, f0, K, F, relu);
  for (; f0 + L <= F; f0 += L) forward_columns<T, 1>(y, base, off, w, b, np, f0, K, F, relu);
  for (int64_t p = 0; p < np; ++p)
    for (int64_t f = f0; f < F; ++f) {
      T acc = b ? b[f] : T(0);
      for (int64_t k = 0; k < K; ++k) acc += base[p][off[k]] * w[k * F + f];
      y[p * F + f] = relu && !(acc > T(0)) ? T(0) : acc;
    }
}

template <typename T>
void direct_dw(T* dw, T* db, const T* const* base, const int64_t* off, const T* dy, int64_t np,
               int64_t K, int64_t F) {
  constexpr int L = int(kVecBytes / sizeof(T));
  int64_t f0 = 0;
  // Few taps (a first layer: K = 9): blocks of 3 taps x 4 vectors read each
  // pixel's dy once for 4 vectors of filters, where 6 x 2 blocks read it twice
  // (the MNIST convnet's first layer, backward with its pooling: ~0.91x the time).
  if (K <= kShortK)
    for (; f0 + 4 * L <= F; f0 += 4 * L) dw_columns<T, 4>(dw, db, base, off, dy, np, f0, K, F);
  for (; f0 + 2 * L <= F; f0 += 2 * L) dw_columns<T, 2>(dw, db, base, off, dy, np, f0, K, F);
  for (; f0 + L <= F; f0 += L) dw_columns<T, 1>(dw, db, base, off, dy, np, f0, K, F);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t f = f0; f < F; ++f) {
      T acc = dw[k * F + f];
      for (int64_t p = 0; p < np; ++p) acc += base[p][off[k]] * dy[p * F + f];
      dw[k * F + f] = acc;
    }
  if (db)
    for (int64_t f = f0; f < F; ++f) {
      T acc = db[f];
      for (int64_t p = 0; p < np; ++p) acc += dy[p * F + f];
      db[f] = acc;
    }
}

// Channels go in blocks of two vectors, then one, then a plain tail.
template <typename T>
void direct_dx(T* const* dst, const int64_t* off, const T* dy, const T* wt, int64_t np,
               int64_t taps, int64_t C, int64_t F) {
  constexpr int L = int(kVecBytes / sizeof(T));
  int64_t c0 = 0;
  for (; c0 + 2 * L <= C; c0 += 2 * L) dx_columns<T, 2>(dst, off, dy, wt, np, c0, taps, C, F);
  for (; c0 + L <= C; c0 += L) dx_columns<T, 1>(dst, off, dy, wt, np, c0, taps, C, F);
  for (int64_t k = 0; k < taps; ++k)  // tap by tap, as dx_columns
    for (int64_t p = 0; p < np; ++p)
      for (int64_t c = c0; c < C; ++c) {
        T acc = dst[p][off[k] + c];
        for (int64_t f = 0; f < F; ++f) acc += dy[p * F + f] * wt[(k * F + f) * C + c];
        dst[p][off[k] + c] = acc;
      }
}

constexpr DirectConvKernels kKernels{&direct_forward<float>, &direct_forward<double>,
                                     &direct_dw<float>, &direct_dw<double>,
                                     &direct_dx<float>, &direct_dx<double>};
FASTDL_REGISTER_KERNELS(direct_conv_kernels, kKernels);

#undef FASTDL_INLINE
#pragma GCC diagnostic pop

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
