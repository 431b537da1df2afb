// The fused optimizer updates: the loops of optimizers_kernels.cpp, looked up
// for ctx.isa.
#include "cpu/nn/optimizers.h"

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// Cost per element relative to relu (runtime/threading.h): 3-4 arrays streamed.
int update_threads(int64_t n, const Context& ctx) {
  return threads_for(double(n) * 3, kParallelMinElements, ctx.nthreads);
}

// Adam is bound by its square root and division (AVX2: ~0.55 ns per float32 element
// on one thread, ~3.7x relu), not by memory, so two threads halve it: it counts twice
// that against the element threshold, which assumes a memory-bound pass that gains
// less than half. (The seed MLP's 101,770 weights: 54 us on one thread, 32 on two.)
int adam_threads(int64_t n, const Context& ctx) {
  return threads_for(double(n) * 8, kParallelMinElements, ctx.nthreads);
}
}  // namespace

template <typename T>
void sgd_update(T* p, T* m, const T* g, int64_t n, double lr, double momentum, bool nesterov,
                double lr_wd, const Context& ctx) {
  optimizer_kernels[ctx.isa].sgd<T>()(p, m, g, n, lr, momentum, nesterov, lr_wd,
                                      update_threads(n, ctx));
}

template <typename T>
void adam_update(T* p, T* m, T* v, const T* g, int64_t n, double alpha, double beta_1,
                 double beta_2, double eps, double lr_wd, const Context& ctx) {
  const AdamTensor<T> t{p, m, v, g, n, lr_wd};
  adam_update_multi<T>(&t, 1, alpha, beta_1, beta_2, eps, ctx);
}

template <typename T>
void adam_update_multi(const AdamTensor<T>* ts, int64_t count, double alpha, double beta_1,
                       double beta_2, double eps, const Context& ctx) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += ts[i].n;
  optimizer_kernels[ctx.isa].adam<T>()(ts, count, alpha, beta_1, beta_2, eps,
                                       adam_threads(total, ctx));
}

template <typename T>
void rmsprop_update(T* p, T* v, T* mom, const T* g, int64_t n, double lr, double rho,
                    double momentum, double eps, double lr_wd, const Context& ctx) {
  optimizer_kernels[ctx.isa].rmsprop<T>()(p, v, mom, g, n, lr, rho, momentum, eps, lr_wd,
                                          update_threads(n, ctx));
}

#define FASTDL_INSTANTIATE_OPT(T)                                                               \
  template void sgd_update<T>(T*, T*, const T*, int64_t, double, double, bool, double,         \
                              const Context&);                                                 \
  template void adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double,  \
                               double, const Context&);                                        \
  template void adam_update_multi<T>(const AdamTensor<T>*, int64_t, double, double, double,    \
                                     double, const Context&);                                  \
  template void rmsprop_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, double, \
                                  double, const Context&);
FASTDL_INSTANTIATE_OPT(float)
FASTDL_INSTANTIATE_OPT(double)

}  // namespace fastdl::cpu
