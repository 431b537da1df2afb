// Losses, forward and gradient in one pass. Each returns the SUM of the
// per-sample losses (the caller divides by the batch size) and writes the
// gradient of (sum * grad_scale) into the d* output, which is overwritten
// (pass grad_scale = 1/N for the gradient of the mean). A null d* pointer skips
// the gradient. Sums run in a fixed order, so results do not depend on threads.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// Softmax + cross-entropy against integer labels, from logits:
//   loss_r = logsumexp(z_r) - z_r[label_r];  dz = (softmax(z) - onehot) * grad_scale.
// *correct (if not null) gets the number of rows whose argmax equals the label.
// Labels must be in [0, cols) (the binding checks).
template <typename T>
double sparse_softmax_xent(T* dlogits /* (rows,cols) */, int64_t* correct,
                           const T* logits /* (rows,cols) */, const int64_t* labels /* (rows,) */,
                           int64_t rows, int64_t cols, double grad_scale, const Context& ctx);

// Softmax + cross-entropy against target distributions (one-hot or soft), from logits.
template <typename T>
double softmax_xent(T* dlogits /* (rows,cols) */, const T* logits /* (rows,cols) */,
                    const T* targets /* (rows,cols) */, int64_t rows, int64_t cols,
                    double grad_scale, const Context& ctx);

// Sigmoid + binary cross-entropy, from logits, element-wise:
//   loss = max(z,0) - z*t + log(1 + exp(-|z|));  dz = (sigmoid(z) - t) * grad_scale.
template <typename T>
double sigmoid_xent(T* dlogits /* (n,) */, const T* logits /* (n,) */, const T* targets /* (n,) */,
                    int64_t n, double grad_scale);

// Categorical cross-entropy from probabilities, Keras' way: p is renormalised
// per row, clipped to [eps, 1-eps], loss_r = -sum t*log(p).
template <typename T>
double categorical_xent(T* dp /* (rows,cols) */, const T* p /* (rows,cols) */,
                        const T* targets /* (rows,cols) */, int64_t rows, int64_t cols,
                        double eps, double grad_scale, const Context& ctx);

// Binary cross-entropy from probabilities, element-wise, p clipped to [eps, 1-eps].
template <typename T>
double binary_xent(T* dp /* (n,) */, const T* p /* (n,) */, const T* targets /* (n,) */, int64_t n,
                   double eps, double grad_scale);

// Squared error: sum (p-t)^2; dp = 2(p-t) * grad_scale.
template <typename T>
double squared_error(T* dp /* (n,) */, const T* p /* (n,) */, const T* targets /* (n,) */,
                     int64_t n, double grad_scale);

// Absolute error: sum |p-t|; dp = sign(p-t) * grad_scale.
template <typename T>
double absolute_error(T* dp /* (n,) */, const T* p /* (n,) */, const T* targets /* (n,) */,
                      int64_t n, double grad_scale);

}  // namespace fastdl::cpu
