// The optimizer loops, shared by optimizers.cpp (generic) and its _avx2/_avx512
// twins, which compile the same loops with wider vectors. Each includer passes a
// Tag type from its own anonymous namespace, so every instantiation stays
// private to its file (no ISA-specific code can leak into another file).
#pragma once
#include <cstdint>

#include "common/optimizer_math.h"
#include "cpu/denormals.h"

namespace fastdl::cpu::detail {

constexpr int64_t kOptParallelMin = 1 << 17;

// Runs body(i) for i in [0, n) on nt threads, each with denormals flushed.
template <typename F>
inline void parallel_ftz(int64_t n, int nt, F body) {
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    FlushDenormals ftz;
#pragma omp for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

template <typename Tag, typename T>
void sgd_loop(T* __restrict p, T* __restrict m, const T* __restrict g, int64_t n, double lr,
              double momentum, bool nesterov, double lr_wd, int nthreads) {
  const T lr_ = T(lr), mo = T(momentum), wd = T(lr_wd);
  const int nt = n >= kOptParallelMin ? nthreads : 1;
  if (!m || momentum == 0.0) {
    parallel_ftz(n, nt, [=](int64_t i) {
      T dummy = 0;
      sgd_step<T, Tag>(p[i], dummy, g[i], lr_, T(0), false, wd);
    });
  } else if (nesterov) {
    parallel_ftz(n, nt, [=](int64_t i) { sgd_step<T, Tag>(p[i], m[i], g[i], lr_, mo, true, wd); });
  } else {
    parallel_ftz(n, nt, [=](int64_t i) { sgd_step<T, Tag>(p[i], m[i], g[i], lr_, mo, false, wd); });
  }
}

template <typename Tag, typename T>
void adam_loop(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n,
               double alpha, double beta_1, double beta_2, double eps, double lr_wd, int nthreads) {
  const T a = T(alpha), b1 = T(beta_1), b2 = T(beta_2), e = T(eps), wd = T(lr_wd);
  const int nt = n >= kOptParallelMin ? nthreads : 1;
  parallel_ftz(n, nt, [=](int64_t i) { adam_step<T, Tag>(p[i], m[i], v[i], g[i], a, b1, b2, e, wd); });
}

template <typename Tag, typename T>
void rmsprop_loop(T* __restrict p, T* __restrict v, T* __restrict mom, const T* __restrict g,
                  int64_t n, double lr, double rho, double momentum, double eps, double lr_wd,
                  int nthreads) {
  const T lr_ = T(lr), r = T(rho), mo = T(momentum), e = T(eps), wd = T(lr_wd);
  const int nt = n >= kOptParallelMin ? nthreads : 1;
  if (!mom || momentum == 0.0) {
    parallel_ftz(n, nt, [=](int64_t i) {
      T dummy = 0;
      rmsprop_step<T, Tag>(p[i], v[i], dummy, g[i], lr_, r, T(0), e, wd);
    });
  } else {
    parallel_ftz(n, nt, [=](int64_t i) {
      rmsprop_step<T, Tag>(p[i], v[i], mom[i], g[i], lr_, r, mo, e, wd);
    });
  }
}

}  // namespace fastdl::cpu::detail

// One set of entry points per ISA file: NAME_SUFFIX(adam_update) etc.
#define FASTDL_DEFINE_OPT_ENTRY_POINTS(SUFFIX)                                                    \
  namespace fastdl::cpu {                                                                         \
  namespace {                                                                                     \
  struct Tag##SUFFIX {};                                                                          \
  }                                                                                               \
  template <typename T>                                                                           \
  void sgd_update_##SUFFIX(T* p, T* m, const T* g, int64_t n, double lr, double momentum,         \
                           bool nesterov, double lr_wd, int nt) {                                 \
    detail::sgd_loop<Tag##SUFFIX>(p, m, g, n, lr, momentum, nesterov, lr_wd, nt);                 \
  }                                                                                               \
  template <typename T>                                                                           \
  void adam_update_##SUFFIX(T* p, T* m, T* v, const T* g, int64_t n, double alpha, double b1,     \
                            double b2, double eps, double lr_wd, int nt) {                        \
    detail::adam_loop<Tag##SUFFIX>(p, m, v, g, n, alpha, b1, b2, eps, lr_wd, nt);                 \
  }                                                                                               \
  template <typename T>                                                                           \
  void rmsprop_update_##SUFFIX(T* p, T* v, T* mom, const T* g, int64_t n, double lr, double rho,  \
                               double momentum, double eps, double lr_wd, int nt) {               \
    detail::rmsprop_loop<Tag##SUFFIX>(p, v, mom, g, n, lr, rho, momentum, eps, lr_wd, nt);        \
  }                                                                                               \
  template void sgd_update_##SUFFIX<float>(float*, float*, const float*, int64_t, double, double, \
                                           bool, double, int);                                    \
  template void sgd_update_##SUFFIX<double>(double*, double*, const double*, int64_t, double,     \
                                            double, bool, double, int);                           \
  template void adam_update_##SUFFIX<float>(float*, float*, float*, const float*, int64_t,        \
                                            double, double, double, double, double, int);         \
  template void adam_update_##SUFFIX<double>(double*, double*, double*, const double*, int64_t,   \
                                             double, double, double, double, double, int);        \
  template void rmsprop_update_##SUFFIX<float>(float*, float*, float*, const float*, int64_t,     \
                                               double, double, double, double, double, int);      \
  template void rmsprop_update_##SUFFIX<double>(double*, double*, double*, const double*,         \
                                                int64_t, double, double, double, double, double,  \
                                                int);                                             \
  }

#define FASTDL_DECLARE_OPT_ENTRY_POINTS(SUFFIX)                                                   \
  template <typename T>                                                                           \
  void sgd_update_##SUFFIX(T*, T*, const T*, int64_t, double, double, bool, double, int);         \
  template <typename T>                                                                           \
  void adam_update_##SUFFIX(T*, T*, T*, const T*, int64_t, double, double, double, double,        \
                            double, int);                                                         \
  template <typename T>                                                                           \
  void rmsprop_update_##SUFFIX(T*, T*, T*, const T*, int64_t, double, double, double, double,     \
                               double, int);
