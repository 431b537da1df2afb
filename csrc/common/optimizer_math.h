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
template <typename T, typename Tag = void>
FASTDL_HD void sgd_step(T& p, T& m, T g, T lr, T momentum, bool nesterov, T lr_wd) {
  p -= lr_wd * p;
  if (momentum == T(0)) { p -= lr * g; return; }
  m = momentum * m - lr * g;
  p += nesterov ? momentum * m - lr * g : m;
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
FASTDL_HD void rmsprop_step(T& p, T& v, T& mom, T g, T lr, T rho, T momentum, T eps, T lr_wd) {
  p -= lr_wd * p;
  v = rho * v + (T(1) - rho) * g * g;
  T inc = lr * g / std::sqrt(v + eps);
  if (momentum > T(0)) { mom = momentum * mom + inc; p -= mom; }
  else p -= inc;
}

}  // namespace fastdl
