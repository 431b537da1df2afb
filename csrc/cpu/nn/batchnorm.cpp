// Batch normalization drivers: threads split the rows; the per-channel sums
// are taken in blocks of rows in T by the level's row loops
// (batchnorm_kernels.cpp) and added up per thread in double, then across
// threads in a fixed order. The sums depend on the thread count only in their
// last bits (as the convolution's weight gradient does).
#include "cpu/nn/batchnorm.h"

#include <cmath>
#include <limits>

#include "cpu/runtime/row_ranges.h"


namespace fastdl::cpu {

namespace {

constexpr int64_t kBlockRows = 128;  // rows summed in T before the double accumulator


// sum1[c], sum2[c] (double) over all M rows of sums(s1, s2, row_offset, rows):
// each thread adds blocks of kBlockRows rows summed in T into its own double
// slots, then the slots are added in thread order.
template <typename T, class Sums>
void channel_sums(double* sum1 /* (C,) */, double* sum2 /* (C,) */, int64_t M, int64_t C,
                  int nt, Arena* arena, Sums&& sums) {
  double* acc = arena->alloc<double>(size_t(nt) * 2 * size_t(C));  // (nt, 2, C)
  T* blk = arena->alloc<T>(size_t(nt) * 2 * size_t(C));             // (nt, 2, C)
  for (int64_t i = 0; i < int64_t(nt) * 2 * C; ++i) acc[i] = 0.0;
  for_row_ranges(M, nt, [&](int t, int64_t r0, int64_t r1) {
    double* a1 = acc + int64_t(t) * 2 * C;
    double* a2 = a1 + C;
    T* b1 = blk + int64_t(t) * 2 * C;
    T* b2 = b1 + C;
    for (int64_t r = r0; r < r1; r += kBlockRows) {
      const int64_t rows = r1 - r < kBlockRows ? r1 - r : kBlockRows;
      for (int64_t c = 0; c < C; ++c) b1[c] = b2[c] = T(0);
      sums(b1, b2, r, rows);
      for (int64_t c = 0; c < C; ++c) {
        a1[c] += double(b1[c]);
        a2[c] += double(b2[c]);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) sum1[c] = sum2[c] = 0.0;
  for (int t = 0; t < nt; ++t)
    for (int64_t c = 0; c < C; ++c) {
      sum1[c] += acc[int64_t(t) * 2 * C + c];
      sum2[c] += acc[int64_t(t) * 2 * C + C + c];
    }
}

template <typename T>
double gamma_of(const T* gamma, int64_t c) { return gamma ? double(gamma[c]) : 1.0; }

// y = x * a[c] + b[c] over M rows, threaded.
template <typename T>
void affine_pass(T* y, const T* x, const T* a, const T* b, int64_t M, int64_t C, int nt,
                 const BatchnormKernels::Set<T>& K) {
  for_row_ranges(M, nt, [&](int, int64_t r0, int64_t r1) {
    K.affine(y + r0 * C, x + r0 * C, a, b, r1 - r0, C);
  });
}

}  // namespace

template <typename T>
void batchnorm_forward(T* y, T* mean, T* var, const T* x, const T* gamma, const T* beta,
                       int64_t M, int64_t C, double eps, const Context& ctx) {
  if (C <= 0) return;
  if (M <= 0) {
    for (int64_t c = 0; c < C; ++c) mean[c] = var[c] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  const auto& K = batchnorm_kernels[ctx.isa].get<T>();
  ArenaScope scope(ctx.arena);
  const int nt = rows_threads(M, double(M) * double(C), ctx);
  // Sums of x - x[0, c]: shifted by a sample, so a large mean does not cancel
  // the variance away.
  T* shift = ctx.arena->alloc<T>(size_t(C));
  for (int64_t c = 0; c < C; ++c) shift[c] = x[c];
  double* s1 = ctx.arena->alloc<double>(size_t(C));
  double* s2 = ctx.arena->alloc<double>(size_t(C));
  channel_sums<T>(s1, s2, M, C, nt, ctx.arena, [&](T* b1, T* b2, int64_t r, int64_t rows) {
    K.stats(b1, b2, x + r * C, shift, rows, C);
  });
  T* a = ctx.arena->alloc<T>(size_t(C));
  T* b = ctx.arena->alloc<T>(size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    const double d = s1[c] / double(M);
    const double m = double(shift[c]) + d;
    double v = s2[c] / double(M) - d * d;
    if (v < 0) v = 0;
    mean[c] = T(m);
    var[c] = T(v);
    const double scale = gamma_of(gamma, c) / std::sqrt(v + eps);
    a[c] = T(scale);
    b[c] = T((beta ? double(beta[c]) : 0.0) - m * scale);
  }
  affine_pass(y, x, a, b, M, C, nt, K);
}

template <typename T>
void batchnorm_inference(T* y, const T* x, const T* mean, const T* var, const T* gamma,
                         const T* beta, int64_t M, int64_t C, double eps, const Context& ctx) {
  if (C <= 0 || M <= 0) return;
  const auto& K = batchnorm_kernels[ctx.isa].get<T>();
  ArenaScope scope(ctx.arena);
  T* a = ctx.arena->alloc<T>(size_t(C));
  T* b = ctx.arena->alloc<T>(size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    const double scale = gamma_of(gamma, c) / std::sqrt(double(var[c]) + eps);
    a[c] = T(scale);
    b[c] = T((beta ? double(beta[c]) : 0.0) - double(mean[c]) * scale);
  }
  affine_pass(y, x, a, b, M, C, rows_threads(M, double(M) * double(C), ctx), K);
}

template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                        const T* var, const T* gamma, int64_t M, int64_t C, double eps,
                        bool batch_stats, const Context& ctx) {
  if (C <= 0) return;
  if (M <= 0) {
    for (int64_t c = 0; c < C; ++c) dgamma[c] = dbeta[c] = T(0);
    return;
  }
  const auto& K = batchnorm_kernels[ctx.isa].get<T>();
  ArenaScope scope(ctx.arena);
  const int nt = rows_threads(M, double(M) * double(C), ctx);
  double* s1 = ctx.arena->alloc<double>(size_t(C));  // sum dy
  double* s2 = ctx.arena->alloc<double>(size_t(C));  // sum dy * (x - mean)
  channel_sums<T>(s1, s2, M, C, nt, ctx.arena, [&](T* b1, T* b2, int64_t r, int64_t rows) {
    K.dstats(b1, b2, dy + r * C, x + r * C, mean, rows, C);
  });
  T* a = ctx.arena->alloc<T>(size_t(C));
  T* b = ctx.arena->alloc<T>(size_t(C));
  T* d = ctx.arena->alloc<T>(size_t(C));
  for (int64_t c = 0; c < C; ++c) {
    const double is = 1.0 / std::sqrt(double(var[c]) + eps);
    const double g = gamma_of(gamma, c);
    dbeta[c] = T(s1[c]);
    dgamma[c] = T(s2[c] * is);
    a[c] = T(g * is);
    // training form: dx = g*is*dy - (g*is^3*s2/M) * (x - mean) - g*is*s1/M
    b[c] = batch_stats ? T(-g * is * is * is * s2[c] / double(M)) : T(0);
    d[c] = batch_stats ? T(-g * is * s1[c] / double(M)) : T(0);
  }
  if (!dx) return;
  if (!batch_stats) {
    affine_pass(dx, dy, a, d, M, C, nt, K);  // d is 0: dx = dy * g * is
    return;
  }
  for_row_ranges(M, nt, [&](int, int64_t r0, int64_t r1) {
    K.affine2(dx + r0 * C, dy + r0 * C, x + r0 * C, mean, a, b, d, r1 - r0, C);
  });
}

#define FASTDL_BN_INSTANTIATE(T)                                                             \
  template void batchnorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,      \
                                     int64_t, double, const Context&);                        \
  template void batchnorm_inference<T>(T*, const T*, const T*, const T*, const T*, const T*, \
                                       int64_t, int64_t, double, const Context&);            \
  template void batchnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                      const T*, int64_t, int64_t, double, bool,              \
                                      const Context&);
FASTDL_BN_INSTANTIATE(float)
FASTDL_BN_INSTANTIATE(double)
#undef FASTDL_BN_INSTANTIATE

}  // namespace fastdl::cpu
