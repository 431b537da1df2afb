#include "cpu/optimizers.h"

#include "common/optimizer_math.h"

namespace fastdl::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 16;
int threads_for(int64_t n, const Context& ctx) { return n >= kParallelMin ? ctx.nthreads : 1; }
}  // namespace

template <typename T>
void sgd_update(T* p, T* m, const T* g, int64_t n, double lr, double momentum, bool nesterov,
                double lr_wd, const Context& ctx) {
  const T lr_ = T(lr), mo = T(momentum), wd = T(lr_wd);
  int nt = threads_for(n, ctx);
  if (!m || momentum == 0.0) {
    T dummy = 0;
#pragma omp parallel for num_threads(nt) if (nt > 1) firstprivate(dummy)
    for (int64_t i = 0; i < n; ++i) sgd_step(p[i], dummy, g[i], lr_, T(0), false, wd);
    return;
  }
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) sgd_step(p[i], m[i], g[i], lr_, mo, nesterov, wd);
}

template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, double alpha, double beta_1,
                 double beta_2, double eps, double lr_wd, const Context& ctx) {
  const T a = T(alpha), b1 = T(beta_1), b2 = T(beta_2), e = T(eps), wd = T(lr_wd);
  int nt = threads_for(n, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) adam_step(p[i], m[i], v[i], g[i], a, b1, b2, e, wd);
}

template <typename T>
void rmsprop_update(T* p, T* v, T* mom, const T* g, int64_t n, double lr, double rho,
                    double momentum, double eps, double lr_wd, const Context& ctx) {
  const T lr_ = T(lr), r = T(rho), mo = T(momentum), e = T(eps), wd = T(lr_wd);
  int nt = threads_for(n, ctx);
  if (!mom || momentum == 0.0) {
    T dummy = 0;
#pragma omp parallel for num_threads(nt) if (nt > 1) firstprivate(dummy)
    for (int64_t i = 0; i < n; ++i) rmsprop_step(p[i], v[i], dummy, g[i], lr_, r, T(0), e, wd);
    return;
  }
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) rmsprop_step(p[i], v[i], mom[i], g[i], lr_, r, mo, e, wd);
}

#define FASTDL_INSTANTIATE_OPT(T)                                                               \
  template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, bool, double,         \
                              const Context&);                                                 \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,  \
                               double, const Context&);                                        \
  template void rmsprop_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, \
                                  double, const Context&);
FASTDL_INSTANTIATE_OPT(float)
FASTDL_INSTANTIATE_OPT(double)

}  // namespace fastdl::cpu
