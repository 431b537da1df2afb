// Optimizer updates, one thread per parameter element, with the CPU's
// per-element steps (common/optimizer_math.h). See nn.h.
#include "common/optimizer_math.h"
#include "cuda/nn/nn.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

template <typename T>
__global__ void sgd_kernel(T* p, T* m, const T* g, int64_t n, T lr, T momentum, bool nesterov,
                           T wd_lr) {
  FASTDL_GRID_LOOP(i, n) {
    T mi = m ? m[i] : T(0);
    sgd_step(p[i], mi, g[i], lr, momentum, nesterov, wd_lr);
    if (m) m[i] = mi;
  }
}

template <typename T>
__global__ void adam_kernel(T* p, T* m, T* v, const T* g, int64_t n, T lr_t, T beta_1, T beta_2,
                            T epsilon, T wd_lr) {
  FASTDL_GRID_LOOP(i, n) adam_step(p[i], m[i], v[i], g[i], lr_t, beta_1, beta_2, epsilon, wd_lr);
}

template <typename T>
__global__ void rmsprop_kernel(T* p, T* v, T* mom, const T* g, int64_t n, T lr, T rho, T momentum,
                               T epsilon, T wd_lr) {
  FASTDL_GRID_LOOP(i, n) {
    T mi = mom ? mom[i] : T(0);
    rmsprop_step(p[i], v[i], mi, g[i], lr, rho, momentum, epsilon, wd_lr);
    if (mom) mom[i] = mi;
  }
}

}  // namespace

template <typename T>
cudaError_t sgd_update(T* p, T* m, const T* g, int64_t n, double lr, double momentum,
                       bool nesterov, double wd_lr, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (momentum != 0.0 && !m) return cudaErrorInvalidValue;
  sgd_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(p, m, g, n, T(lr), T(momentum), nesterov,
                                                        T(wd_lr));
  return launch_status();
}

template <typename T>
cudaError_t adam_update(T* p, T* m, T* v, const T* g, int64_t n, double lr_t, double beta_1,
                        double beta_2, double epsilon, double wd_lr, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  adam_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(p, m, v, g, n, T(lr_t), T(beta_1),
                                                         T(beta_2), T(epsilon), T(wd_lr));
  return launch_status();
}

template <typename T>
cudaError_t rmsprop_update(T* p, T* v, T* mom, const T* g, int64_t n, double lr, double rho,
                           double momentum, double epsilon, double wd_lr, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (momentum > 0.0 && !mom) return cudaErrorInvalidValue;
  rmsprop_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(p, v, mom, g, n, T(lr), T(rho),
                                                            T(momentum), T(epsilon), T(wd_lr));
  return launch_status();
}

#define FASTDL_INSTANTIATE(T)                                                                  \
  template cudaError_t sgd_update<T>(T*, T*, const T*, int64_t, double, double, bool, double,   \
                                     cudaStream_t);                                             \
  template cudaError_t adam_update<T>(T*, T*, T*, const T*, int64_t, double, double, double,    \
                                      double, double, cudaStream_t);                            \
  template cudaError_t rmsprop_update<T>(T*, T*, T*, const T*, int64_t, double, double, double, \
                                         double, double, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
