// Packing for the GEMM driver (gemm.cpp): copies blocks of A and B into the
// panel layouts the micro-kernels read (gemm/kernels/ukernel.h). Portable code,
// built with the driver for the target's baseline; included by gemm.cpp only.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

namespace fastdl::cpu::gemm_pack {

// dst[p * ldd + j] = src[j * lds + p] for p < kc, j < W: W rows of src become
// W columns of dst (packing row-major A, or column-major B). With SSE2, the
// x86-64 baseline, 4x4 float / 2x2 double blocks are transposed in registers;
// elsewhere, and for the tail, plain loops.
template <typename T, int W>
void transpose_rows(T* dst /* (kc, W) row stride ldd */, int64_t ldd,
                    const T* src /* (W, kc) row stride lds */, int64_t lds, int64_t kc) {
  int64_t p = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float> && W % 4 == 0) {
    for (; p + 4 <= kc; p += 4) {
      for (int j = 0; j < W; j += 4) {
        __m128 r0 = _mm_loadu_ps(src + (j + 0) * lds + p);
        __m128 r1 = _mm_loadu_ps(src + (j + 1) * lds + p);
        __m128 r2 = _mm_loadu_ps(src + (j + 2) * lds + p);
        __m128 r3 = _mm_loadu_ps(src + (j + 3) * lds + p);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst + (p + 0) * ldd + j, r0);
        _mm_storeu_ps(dst + (p + 1) * ldd + j, r1);
        _mm_storeu_ps(dst + (p + 2) * ldd + j, r2);
        _mm_storeu_ps(dst + (p + 3) * ldd + j, r3);
      }
    }
  } else if constexpr (std::is_same_v<T, double> && W % 2 == 0) {
    for (; p + 2 <= kc; p += 2) {
      for (int j = 0; j < W; j += 2) {
        const __m128d r0 = _mm_loadu_pd(src + (j + 0) * lds + p);
        const __m128d r1 = _mm_loadu_pd(src + (j + 1) * lds + p);
        _mm_storeu_pd(dst + (p + 0) * ldd + j, _mm_unpacklo_pd(r0, r1));
        _mm_storeu_pd(dst + (p + 1) * ldd + j, _mm_unpackhi_pd(r0, r1));
      }
    }
  }
#endif
  for (; p < kc; ++p)
    for (int j = 0; j < W; ++j) dst[p * ldd + j] = src[j * lds + p];
}

// count rows of src (kc long each, row stride lds) -> panels of W: W rows of
// src become the W-wide rows of a panel, so panel r holds element p of src row
// r*W + j at dst[r*W*kc + p*W + j]. Packs row-major A (rows of A) and
// column-major B (columns of B). The missing rows of a last, partial panel are
// zero when zero_tail (B: full-width loads are safe), else left unset (A: the
// kernel for that row count never reads them).
template <typename T, int W>
void pack_transposed(T* dst /* panels */, const T* src /* (count,kc) row stride lds */,
                     int64_t lds, int64_t count, int64_t kc, bool zero_tail) {
  const int64_t full = count / W * W;
  for (int64_t r = 0; r < full; r += W)
    transpose_rows<T, W>(dst + r * kc, W, src + r * lds, lds, kc);
  if (full < count) {
    T* d = dst + full * kc;
    const T* s = src + full * lds;
    const int w = int(count - full);
    if (zero_tail) std::fill(d, d + kc * W, T(0));
    for (int j = 0; j < w; ++j)
      for (int64_t p = 0; p < kc; ++p) d[p * W + j] = s[j * lds + p];
  }
}

// A(mc, kc) -> panels of MR rows: panel r holds element (r*MR + i, p) at
// ap[r*MR*kc + p*MR + i]. Rows past mc in the last panel are left unset (the
// kernel for that row count never reads them).

// Not inlined: the packing loops get the registers to themselves.
template <typename T>
__attribute__((noinline)) void pack_a(T* ap /* (ceil(mc/MR)*MR, kc) panels */,
                                      const T* a /* (mc,kc) */, int64_t rs, int64_t cs,
                                      int64_t mc, int64_t kc, int MR) {
  if (cs == 1) {            // rows contiguous (row-major A)
    switch (MR) {
      case 4: return pack_transposed<T, 4>(ap, a, rs, mc, kc, false);
      case 6: return pack_transposed<T, 6>(ap, a, rs, mc, kc, false);
      case 8: return pack_transposed<T, 8>(ap, a, rs, mc, kc, false);
      default: break;
    }
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int mr = int(std::min<int64_t>(MR, mc - ir));
    T* dst = ap + ir * kc;
    const T* src = a + ir * rs;
    if (rs == 1) {          // columns contiguous (transposed A)
      for (int64_t p = 0; p < kc; ++p) {
        const T* col = src + p * cs;
        for (int i = 0; i < mr; ++i) dst[p * MR + i] = col[i];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < mr; ++i) dst[p * MR + i] = src[i * rs + p * cs];
    }
  }
}

// B(kc, nc) -> panels of NR columns: panel r holds element (p, r*NR + j) at
// bp[r*NR*depth + p*NR + j], depth = kc for a whole block. Columns past nc are
// zero so full-width loads are safe. Row-major B is read row by row (one long
// sequential stream the hardware prefetcher follows) and scattered into the
// panels; NR is a template argument so each panel row is a few vector moves.
// With depth > kc it fills kc rows of panels depth deep (bp offset by the first
// row): a block stacked from two sources (pack_b_row_range).
template <typename T, int NR>
void pack_b_rows(T* bp /* panels */, const T* b /* (kc,nc) row stride rs */, int64_t rs,
                 int64_t kc, int64_t nc, int64_t depth) {
  const int64_t full = nc / NR * NR;
  const int nr = int(nc - full);  // width of a last, partial panel
  for (int64_t p = 0; p < kc; ++p) {
    const T* row = b + p * rs;
    T* dst = bp + p * NR;
    for (int64_t jr = 0; jr < full; jr += NR) {
      T* d = dst + jr * depth;
      for (int j = 0; j < NR; ++j) d[j] = row[jr + j];
    }
    if (nr) {
      T* d = dst + full * depth;
      for (int j = 0; j < nr; ++j) d[j] = row[full + j];
      for (int j = nr; j < NR; ++j) d[j] = T(0);
    }
  }
}

// B(kc, nc) with any strides into panels depth deep, element by element: the
// fallback of pack_b and pack_b_row_range for other panel widths.
template <typename T>
void pack_b_strided(T* bp /* panels */, const T* b /* (kc,nc) */, int64_t rs, int64_t cs,
                    int64_t kc, int64_t nc, int64_t depth, int NR) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int nr = int(std::min<int64_t>(NR, nc - jr));
    T* dst = bp + jr * depth;
    const T* src = b + jr * cs;
    for (int64_t p = 0; p < kc; ++p) {
      for (int j = 0; j < nr; ++j) dst[p * NR + j] = src[p * rs + j * cs];
      for (int j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
    }
  }
}

// Rows of a row-major B into panels depth deep (pack_b_rows), NR chosen at run time.
template <typename T>
__attribute__((noinline)) void pack_b_row_range(T* bp, const T* b /* (kc,nc) row stride rs */,
                                                int64_t rs, int64_t kc, int64_t nc,
                                                int64_t depth, int NR) {
  switch (NR) {
    case 4: return pack_b_rows<T, 4>(bp, b, rs, kc, nc, depth);
    case 8: return pack_b_rows<T, 8>(bp, b, rs, kc, nc, depth);
    case 16: return pack_b_rows<T, 16>(bp, b, rs, kc, nc, depth);
    case 32: return pack_b_rows<T, 32>(bp, b, rs, kc, nc, depth);
    default: return pack_b_strided(bp, b, rs, int64_t(1), kc, nc, depth, NR);
  }
}

// Not inlined: the packing loops get the registers to themselves.
template <typename T>
__attribute__((noinline)) void pack_b(T* bp /* (kc, ceil(nc/NR)*NR) panels */,
                                      const T* b /* (kc,nc) */, int64_t rs, int64_t cs,
                                      int64_t kc, int64_t nc, int NR) {
  if (cs == 1) return pack_b_row_range(bp, b, rs, kc, nc, kc, NR);  // row-major B
  if (rs == 1) {            // columns contiguous (transposed B)
    switch (NR) {
      case 4: return pack_transposed<T, 4>(bp, b, cs, nc, kc, true);
      case 8: return pack_transposed<T, 8>(bp, b, cs, nc, kc, true);
      case 16: return pack_transposed<T, 16>(bp, b, cs, nc, kc, true);
      case 32: return pack_transposed<T, 32>(bp, b, cs, nc, kc, true);
      default: break;
    }
  }
  pack_b_strided(bp, b, rs, cs, kc, nc, kc, NR);
}

}  // namespace fastdl::cpu::gemm_pack
