#include "cpu/dropout.h"

#include "common/random_math.h"

namespace fastdl::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 16;

template <typename T>
void apply_mask(T* y, const T* x, int64_t n, double rate, uint64_t seed, const Context& ctx) {
  const float r = float(rate);
  const T scale = T(1.0 / (1.0 - rate));
  int nt = n >= kParallelMin ? ctx.nthreads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) y[i] = uniform01(seed, uint64_t(i)) >= r ? x[i] * scale : T(0);
}
}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, int64_t n, double rate, uint64_t seed, const Context& ctx) {
  apply_mask(y, x, n, rate, seed, ctx);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, int64_t n, double rate, uint64_t seed,
                      const Context& ctx) {
  apply_mask(dx, dy, n, rate, seed, ctx);
}

template void dropout_forward<float>(float*, const float*, int64_t, double, uint64_t,
                                     const Context&);
template void dropout_forward<double>(double*, const double*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<float>(float*, const float*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<double>(double*, const double*, int64_t, double, uint64_t,
                                       const Context&);

}  // namespace fastdl::cpu
