// Fused one-pass optimizer updates (Keras 3 formulas, see common/optimizer_math.h).
// The parameter and the state slots are updated in place; the gradient is read only.
#pragma once
#include <cstdint>

#include "cpu/context.h"

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

// mom may be null when momentum == 0.
template <typename T>
void rmsprop_update(T* p /* (n,) */, T* v /* (n,) */, T* mom /* (n,) or null */,
                    const T* g /* (n,) */, int64_t n, double lr, double rho, double momentum,
                    double eps, double lr_wd, const Context& ctx);

}  // namespace fastdl::cpu
