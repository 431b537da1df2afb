// Layer normalization drivers: threads take contiguous ranges of rows; the
// backward pass's column sums (dgamma, dbeta) are taken per thread in blocks
// of rows in T, added in double, then across threads in a fixed order.
#include "cpu/nn/layernorm.h"

#include "cpu/runtime/row_ranges.h"

namespace fastdl::cpu {

namespace {

constexpr int64_t kBlockRows = 128;  // rows summed in T before the double accumulator

}  // namespace

template <typename T>
void layernorm_forward(T* y, T* mean, T* inv, const T* x, const T* gamma, const T* beta,
                       int64_t N, int64_t D, double eps, bool rms, const Context& ctx) {
  if (N <= 0 || D <= 0) return;
  const auto& K = layernorm_kernels[ctx.isa].get<T>();
  const int nt = rows_threads(N, 2.0 * double(N) * double(D), ctx);  // a few relu-costs a value
  for_row_ranges(N, nt, [&](int, int64_t r0, int64_t r1) {
    // in blocks, so a block's rows are still in cache for the second pass
    for (int64_t r = r0; r < r1; r += kBlockRows) {
      const int64_t rows = r1 - r < kBlockRows ? r1 - r : kBlockRows;
      K.stats(mean + r, inv + r, x + r * D, rows, D, eps, rms);
      K.normalize(y + r * D, x + r * D, mean + r, inv + r, gamma, beta, rows, D, rms);
    }
  });
}

template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                        const T* inv, const T* gamma, int64_t N, int64_t D, bool rms,
                        const Context& ctx) {
  if (D <= 0) return;
  const auto& K = layernorm_kernels[ctx.isa].get<T>();
  ArenaScope scope(ctx.arena);
  const int nt = rows_threads(N, 2.0 * double(N) * double(D), ctx);
  double* acc = ctx.arena->alloc<double>(size_t(nt) * 2 * size_t(D));  // (nt, 2, D)
  T* blk = ctx.arena->alloc<T>(size_t(nt) * 2 * size_t(D));             // (nt, 2, D)
  for (int64_t i = 0; i < int64_t(nt) * 2 * D; ++i) acc[i] = 0.0;
  if (N > 0) {
    for_row_ranges(N, nt, [&](int t, int64_t r0, int64_t r1) {
      double* ag = acc + int64_t(t) * 2 * D;
      double* ab = ag + D;
      T* bg = blk + int64_t(t) * 2 * D;
      T* bb = bg + D;
      for (int64_t r = r0; r < r1; r += kBlockRows) {
        const int64_t rows = r1 - r < kBlockRows ? r1 - r : kBlockRows;
        for (int64_t d = 0; d < D; ++d) bg[d] = bb[d] = T(0);
        K.backward(dx ? dx + r * D : nullptr, bg, bb, dy + r * D, x + r * D, mean + r, inv + r,
                   gamma, rows, D, rms);
        for (int64_t d = 0; d < D; ++d) {
          ag[d] += double(bg[d]);
          ab[d] += double(bb[d]);
        }
      }
    });
  }
  for (int64_t d = 0; d < D; ++d) {
    double sg = 0.0, sb = 0.0;
    for (int t = 0; t < nt; ++t) {
      sg += acc[int64_t(t) * 2 * D + d];
      sb += acc[int64_t(t) * 2 * D + D + d];
    }
    if (dgamma) dgamma[d] = T(sg);
    if (dbeta) dbeta[d] = T(sb);
  }
}

#define FASTDL_LN_INSTANTIATE(T)                                                             \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,      \
                                     int64_t, double, bool, const Context&);                  \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                      const T*, int64_t, int64_t, bool, const Context&);
FASTDL_LN_INSTANTIATE(float)
FASTDL_LN_INSTANTIATE(double)
#undef FASTDL_LN_INSTANTIATE

}  // namespace fastdl::cpu
