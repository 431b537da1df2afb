// Per-element optimizer updates with the Keras 3 formulas, host/device.
// Every function updates one parameter p and its slots in place from its
// gradient g. Scalars that depend only on the step (Adam's bias correction)
// are computed once on the host and passed in.
//
// Weight decay is Keras 3's decoupled form, applied before the update:
//   p -= p * weight_decay * lr          (wd_lr = weight_decay * lr, 0 for none)
// AdamW is Adam with a non-zero wd_lr.
#pragma once
#include "common/cuda_activation.h"

namespace fastdl::hd {

// SGD:  momentum == 0:  p -= lr g
//       else:           m = momentum m - lr g
//                       p += m                    (plain)
//                       p += momentum m - lr g    (nesterov)
template <typename T>
FASTDL_HD void sgd_update(T& p, T g, T& m, T lr, T momentum, bool nesterov, T wd_lr) {
  p -= p * wd_lr;
  if (momentum != T(0)) {
    m = momentum * m - lr * g;
    p += nesterov ? momentum * m - lr * g : m;
  } else {
    p -= lr * g;
  }
}

// Adam:  m += (g - m)(1 - beta_1);  v += (g^2 - v)(1 - beta_2)
//        p -= lr_t m / (sqrt(v) + epsilon),  lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
template <typename T>
FASTDL_HD void adam_update(T& p, T g, T& m, T& v, T lr_t, T beta_1, T beta_2, T epsilon,
                           T wd_lr) {
  p -= p * wd_lr;
  m += (g - m) * (T(1) - beta_1);
  v += (g * g - v) * (T(1) - beta_2);
  p -= lr_t * m / (sqrt_(v) + epsilon);
}

// Host helper: Adam's step size for 1-based step t.
inline double adam_lr_t(double lr, double beta_1, double beta_2, long long t) {
  return lr * sqrt(1.0 - pow(beta_2, double(t))) / (1.0 - pow(beta_1, double(t)));
}

// RMSprop (not centered):  v = rho v + (1 - rho) g^2
//                          inc = lr g / sqrt(v + epsilon)
//                          momentum > 0:  mom = momentum mom + inc;  p -= mom
//                          else:          p -= inc
template <typename T>
FASTDL_HD void rmsprop_update(T& p, T g, T& v, T& mom, T lr, T rho, T momentum, T epsilon,
                              T wd_lr) {
  p -= p * wd_lr;
  v = rho * v + (T(1) - rho) * g * g;
  T inc = lr * g / sqrt_(v + epsilon);
  if (momentum > T(0)) {
    mom = momentum * mom + inc;
    p -= mom;
  } else {
    p -= inc;
  }
}

}  // namespace fastdl::hd
