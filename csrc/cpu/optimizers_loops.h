// The optimizer loops, shared by optimizers.cpp (generic) and its _avx2 twin,
// which compiles the same loops with wider vectors. Each includer passes a
// Tag type from its own anonymous namespace, so every instantiation stays
// private to its file (no ISA-specific code can leak into another file).
#pragma once
#include <cstdint>

#include "common/optimizer_math.h"
#include "cpu/denormals.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::detail {

constexpr int64_t kOptParallelMin = 1 << 17;

// Runs body(i) for i in [0, n) on nt threads, each with denormals flushed.
// Each thread takes one contiguous range and runs it as a plain simd loop; with
// one thread there is no OpenMP region at all. (A combined `omp parallel for
// simd` with an if-clause made GCC 12 run a scalar copy of the loop: 3x slower.)
template <typename F>
inline void parallel_ftz(int64_t n, int nt, F body) {
  auto run = [&body](int64_t lo, int64_t hi) {
    FlushDenormals ftz;
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) body(i);
  };
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
      run(n * t / k, n * (t + 1) / k);
    }
    return;
  }
#endif
  run(0, n);
}

template <typename Tag, typename T>
void sgd_loop(T* __restrict p, T* __restrict m, const T* __restrict g, int64_t n, double lr,
              double momentum, bool nesterov, double lr_wd, int nthreads) {
  const T lr_ = T(lr), mo = T(momentum), wd = T(lr_wd);
  const int nt = n >= kOptParallelMin ? nthreads : 1;
  if (!m || momentum == 0.0) {
    parallel_ftz(n, nt, [=](int64_t i) { sgd_plain_step<T, Tag>(p[i], g[i], lr_, wd); });
  } else if (nesterov) {
    parallel_ftz(n, nt, [=](int64_t i) {
      sgd_momentum_step<T, Tag>(p[i], m[i], g[i], lr_, mo, true, wd);
    });
  } else {
    parallel_ftz(n, nt, [=](int64_t i) {
      sgd_momentum_step<T, Tag>(p[i], m[i], g[i], lr_, mo, false, wd);
    });
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
      rmsprop_plain_step<T, Tag>(p[i], v[i], g[i], lr_, r, e, wd);
    });
  } else {
    parallel_ftz(n, nt, [=](int64_t i) {
      rmsprop_momentum_step<T, Tag>(p[i], v[i], mom[i], g[i], lr_, r, mo, e, wd);
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
