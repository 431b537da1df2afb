// The optimizer loops, compiled once per capability level and registered in
// optimizer_kernels. Registered at the generic and avx2 levels only: the
// avx512 level runs the avx2 loops. These updates stream 3-4 arrays per
// element, and on Zen 4 the 512-bit build was never faster (aligned arrays:
// equal; NumPy's 16-byte alignment: Adam 66 us against 43 us, SGD 58 us against
// 23 us for 100,352 floats).
#include <algorithm>
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

// Runs run(lo, hi) on nt threads, each with denormals flushed and one contiguous
// range of [0, n); with one thread there is no OpenMP region at all.
template <typename F>
inline void parallel_split(int64_t n, int nt, F run) {
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      FlushDenormals ftz;
      const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
      run(n * t / k, n * (t + 1) / k);
    }
    return;
  }
#endif
  FlushDenormals ftz;
  run(0, n);
}

// Runs body(i) for i in [0, n) on nt threads (parallel_split), each range as a
// plain simd loop. (A combined `omp parallel for simd` with an if-clause made
// GCC 12 run a scalar copy of the loop: 3x slower.)
template <typename F>
inline void parallel_ftz(int64_t n, int nt, F body) {
  parallel_split(n, nt, [&body](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) body(i);
  });
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

// The parameters' elements count as one index space [0, sum of n) that the
// threads split; each thread runs its share tensor by tensor.
template <typename T>
void adam_loop(const AdamTensor<T>* ts, int64_t count, double alpha, double beta_1,
               double beta_2, double eps, int nt) {
  const T a = T(alpha), b1 = T(beta_1), b2 = T(beta_2), e = T(eps);
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += ts[i].n;
  parallel_split(total, nt, [=](int64_t lo, int64_t hi) {
    int64_t base = 0;   // the index of tensor i's first element
    for (int64_t i = 0; i < count && base < hi; base += ts[i].n, ++i) {
      const int64_t j0 = std::max<int64_t>(lo - base, 0), j1 = std::min(hi - base, ts[i].n);
      T* __restrict p = ts[i].p;
      T* __restrict m = ts[i].m;
      T* __restrict v = ts[i].v;
      const T* __restrict g = ts[i].g;
      const T wd = T(ts[i].lr_wd);
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) adam_step<T, Tag>(p[j], m[j], v[j], g[j], a, b1, b2, e, wd);
    }
  });
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
