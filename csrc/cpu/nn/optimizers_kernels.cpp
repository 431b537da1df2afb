// The optimizer loops, compiled once per capability level and registered in
// optimizer_kernels. Registered at the generic and avx2 levels only: the
// avx512 level runs the avx2 loops. These updates stream 3-4 arrays per
// element, and on Zen 4 the 512-bit build was never faster (aligned arrays:
// equal; NumPy's 16-byte alignment: Adam 66 us against 43 us, SGD 58 us against
// 23 us for 100,352 floats).
#include <cstdint>

#include "common/optimizer_math.h"
#include "cpu/nn/optimizers.h"
#include "cpu/runtime/denormals.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

// Keeps the instantiations of the shared step functions (common/optimizer_math.h)
// private to this build.
struct Tag {};

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

// nt: the threads, decided by the driver (optimizers.cpp) from the size.
template <typename T>
void sgd_loop(T* __restrict p, T* __restrict m, const T* __restrict g, int64_t n, double lr,
              double momentum, bool nesterov, double lr_wd, int nt) {
  const T lr_ = T(lr), mo = T(momentum), wd = T(lr_wd);
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

template <typename T>
void adam_loop(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n,
               double alpha, double beta_1, double beta_2, double eps, double lr_wd, int nt) {
  const T a = T(alpha), b1 = T(beta_1), b2 = T(beta_2), e = T(eps), wd = T(lr_wd);
  parallel_ftz(n, nt, [=](int64_t i) { adam_step<T, Tag>(p[i], m[i], v[i], g[i], a, b1, b2, e, wd); });
}

template <typename T>
void rmsprop_loop(T* __restrict p, T* __restrict v, T* __restrict mom, const T* __restrict g,
                  int64_t n, double lr, double rho, double momentum, double eps, double lr_wd,
                  int nt) {
  const T lr_ = T(lr), r = T(rho), mo = T(momentum), e = T(eps), wd = T(lr_wd);
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

#if FASTDL_CAP_LEVEL != 2
constexpr OptimizerKernels kKernels{&sgd_loop<float>,     &sgd_loop<double>,
                                    &adam_loop<float>,    &adam_loop<double>,
                                    &rmsprop_loop<float>, &rmsprop_loop<double>};
FASTDL_REGISTER_KERNELS(optimizer_kernels, kKernels);
#endif

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
