// Fused one-pass optimizer updates (Keras 3 formulas, see common/optimizer_math.h).
// The parameter and the state slots are updated in place; the gradient is read only.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// m may be null when momentum == 0.
template <typename T>
void sgd_update(T* p /* (n,) */, T* m /* (n,) or null */, const T* g /* (n,) */, int64_t n,
                double lr, double momentum, bool nesterov, double lr_wd, const Context& ctx);

// alpha = lr*sqrt(1-b2^t)/(1-b1^t); lr_wd = lr*weight_decay (AdamW) or 0.
template <typename T>
void adam_update(T* p /* (n,) */, T* m /* (n,) */, T* v /* (n,) */, const T* g /* (n,) */,
                 int64_t n, double alpha, double beta_1, double beta_2, double eps, double lr_wd,
                 const Context& ctx);

// One parameter of a multi-tensor Adam step: its arrays, size and lr*weight_decay.
template <typename T>
struct AdamTensor {
  T* p;        // (n,)
  T* m;        // (n,)
  T* v;        // (n,)
  const T* g;  // (n,)
  int64_t n;
  double lr_wd;
};

// adam_update on `count` parameters in one pass: the threads split the elements of
// all of them together (so many small weights share one parallel region), and each
// element gets the bits adam_update gives it.
template <typename T>
void adam_update_multi(const AdamTensor<T>* ts /* (count,) */, int64_t count, double alpha,
                       double beta_1, double beta_2, double eps, const Context& ctx);

// mom may be null when momentum == 0.
template <typename T>
void rmsprop_update(T* p /* (n,) */, T* v /* (n,) */, T* mom /* (n,) or null */,
                    const T* g /* (n,) */, int64_t n, double lr, double rho, double momentum,
                    double eps, double lr_wd, const Context& ctx);

// The loops behind them (optimizers_kernels.cpp, one build per capability
// level), with the thread count instead of the context.
struct OptimizerKernels {
  template <typename T>
  using Sgd = void (*)(T* p, T* m, const T* g, int64_t n, double lr, double momentum,
                       bool nesterov, double lr_wd, int nthreads);
  template <typename T>
  using Adam = void (*)(const AdamTensor<T>* ts, int64_t count, double alpha, double beta_1,
                        double beta_2, double eps, int nthreads);
  template <typename T>
  using RmsProp = void (*)(T* p, T* v, T* mom, const T* g, int64_t n, double lr, double rho,
                           double momentum, double eps, double lr_wd, int nthreads);
  Sgd<float> sgd_f32;
  Sgd<double> sgd_f64;
  Adam<float> adam_f32;
  Adam<double> adam_f64;
  RmsProp<float> rmsprop_f32;
  RmsProp<double> rmsprop_f64;

  template <typename T>
  Sgd<T> sgd() const { if constexpr (sizeof(T) == 4) return sgd_f32; else return sgd_f64; }
  template <typename T>
  Adam<T> adam() const { if constexpr (sizeof(T) == 4) return adam_f32; else return adam_f64; }
  template <typename T>
  RmsProp<T> rmsprop() const {
    if constexpr (sizeof(T) == 4) return rmsprop_f32; else return rmsprop_f64;
  }
};
inline DispatchTable<OptimizerKernels> optimizer_kernels;

}  // namespace fastdl::cpu
