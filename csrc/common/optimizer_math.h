// One optimizer step for one element, Keras 3 formulas. Shared by the CPU
// kernels and a CUDA twin. (Tag lets a file compiled with other ISA flags
// instantiate private copies: give it a type from an anonymous namespace.)
// Scalars that depend only on the step number (Adam's
// bias-corrected rate) are computed once per step by the caller.
#pragma once
#include <cmath>

#include "common/hd.h"

namespace fastdl {

// SGD. Weight decay first (p -= lr*wd*p), then
//   no momentum: p -= lr*g
//   momentum:    m = momentum*m - lr*g;  p += m    (nesterov: p += momentum*m - lr*g)
// The two cases as branch-free steps (so CPU loops vectorise), then the dispatcher.
template <typename T, typename Tag = void>
FASTDL_HD void sgd_plain_step(T& p, T g, T lr, T lr_wd) {
  p -= lr_wd * p;
  p -= lr * g;
}

template <typename T, typename Tag = void>
FASTDL_HD void sgd_momentum_step(T& p, T& m, T g, T lr, T momentum, bool nesterov, T lr_wd) {
  p -= lr_wd * p;
  m = momentum * m - lr * g;
  p += nesterov ? momentum * m - lr * g : m;
}

template <typename T, typename Tag = void>
FASTDL_HD void sgd_step(T& p, T& m, T g, T lr, T momentum, bool nesterov, T lr_wd) {
  if (momentum == T(0)) sgd_plain_step<T, Tag>(p, g, lr, lr_wd);
  else sgd_momentum_step<T, Tag>(p, m, g, lr, momentum, nesterov, lr_wd);
}

// Adam (and AdamW with lr_wd = lr*weight_decay, applied first).
//   m += (g-m)(1-b1); v += (g^2-v)(1-b2); p -= alpha*m/(sqrt(v)+eps),
//   alpha = lr*sqrt(1-b2^t)/(1-b1^t).
template <typename T, typename Tag = void>
FASTDL_HD void adam_step(T& p, T& m, T& v, T g, T alpha, T b1, T b2, T eps, T lr_wd) {
  p -= lr_wd * p;
  m += (g - m) * (T(1) - b1);
  v += (g * g - v) * (T(1) - b2);
  p -= alpha * m / (std::sqrt(v) + eps);
}

// RMSprop as Keras 3 writes it: v = rho*v + (1-rho)*g^2; inc = lr*g/sqrt(v+eps);
// momentum == 0: p -= inc; else mom = momentum*mom + inc; p -= mom.
template <typename T, typename Tag = void>
FASTDL_HD void rmsprop_plain_step(T& p, T& v, T g, T lr, T rho, T eps, T lr_wd) {
  p -= lr_wd * p;
  v = rho * v + (T(1) - rho) * g * g;
  p -= lr * g / std::sqrt(v + eps);
}

template <typename T, typename Tag = void>
FASTDL_HD void rmsprop_momentum_step(T& p, T& v, T& mom, T g, T lr, T rho, T momentum, T eps,
                                     T lr_wd) {
  p -= lr_wd * p;
  v = rho * v + (T(1) - rho) * g * g;
  mom = momentum * mom + lr * g / std::sqrt(v + eps);
  p -= mom;
}

template <typename T, typename Tag = void>
FASTDL_HD void rmsprop_step(T& p, T& v, T& mom, T g, T lr, T rho, T momentum, T eps, T lr_wd) {
  if (momentum > T(0)) rmsprop_momentum_step<T, Tag>(p, v, mom, g, lr, rho, momentum, eps, lr_wd);
  else rmsprop_plain_step<T, Tag>(p, v, g, lr, rho, eps, lr_wd);
}

}  // namespace fastdl
