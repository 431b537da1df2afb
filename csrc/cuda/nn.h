// GPU element-wise, softmax, loss, dropout and optimizer kernels (host launchers).
// Argument order: outputs, inputs, saved state, sizes, parameters, stream. Every
// array is a contiguous device array; outputs are overwritten unless noted, and
// may be the same array as the input of the same shape (in-place is allowed for
// the element-wise ones). Each returns the launch error, if any.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "common/cuda_activation.h"

namespace fastdl::cuda {

using hd::Act;

// ---------------------------------------------------------------- activation.cu
// y = act(x), n elements.
template <typename T>
cudaError_t activation_forward(T* y /* (n,) */, const T* x /* (n,) */, int64_t n, Act act,
                               cudaStream_t stream);
// dx = dy * act'(x), from the forward output y (relu: y > 0, sigmoid: y(1-y), tanh: 1-y^2).
template <typename T>
cudaError_t activation_backward(T* dx /* (n,) */, const T* dy /* (n,) */, const T* y /* (n,) */,
                                int64_t n, Act act, cudaStream_t stream);

// Softmax (or log-softmax when log) over the middle axis of x viewed as
// (outer, len, inner) (inner == 1 is the last axis).
template <typename T>
cudaError_t softmax(T* y /* (outer,len,inner) */, const T* x /* (outer,len,inner) */,
                    int64_t outer, int64_t len, int64_t inner, bool log, cudaStream_t stream);
// softmax:      dx = y * (dy - sum(dy * y))
// log_softmax:  dx = dy - exp(y) * sum(dy)         (y is the log-softmax output)
template <typename T>
cudaError_t softmax_backward(T* dx /* (outer,len,inner) */, const T* dy /* same */,
                             const T* y /* same */, int64_t outer, int64_t len, int64_t inner,
                             bool log, cudaStream_t stream);

// out(n) = sum over rows of x(m,n) (the bias gradient), deterministic: a first
// kernel writes sum_rows_partials(m) partial sums per column into `partial`, a
// second adds them up. accumulate: out += instead of out =.
int64_t sum_rows_partials(int64_t m);
template <typename T>
cudaError_t sum_rows(T* out /* (n,) */, const T* x /* (m,n) */, T* partial /* (P,n) */,
                     int64_t m, int64_t n, bool accumulate, cudaStream_t stream);

// ---------------------------------------------------------------- loss.cu
// Fused, stable sparse softmax cross-entropy over logits (N,C), labels (N,) int:
//   loss_i = logsumexp(logits_i) - logits_i[label_i];  mean_loss = mean_i loss_i
//   dlogits = (softmax(logits) - onehot(labels)) / N
// A label outside [0, C) makes its row's loss and gradient NaN (no host sync to
// raise). row_loss is scratch (N,). N == 0 gives a NaN mean.
template <typename T, typename L>
cudaError_t sparse_softmax_cross_entropy(T* mean_loss /* (1,) */, T* dlogits /* (N,C) */,
                                         T* row_loss /* (N,) scratch */, const T* logits /* (N,C) */,
                                         const L* labels /* (N,) */, int64_t N, int64_t C,
                                         cudaStream_t stream);

// ---------------------------------------------------------------- dropout.cu
// y = keep(seed, i) ? x / (1 - rate) : 0 with keep from common/cuda_random.h
// (element i of the flat C-order index). The backward pass is the same call on
// dy with the same seed and rate.
template <typename T>
cudaError_t dropout(T* y /* (n,) */, const T* x /* (n,) */, int64_t n, double rate, uint64_t seed,
                    cudaStream_t stream);

// ---------------------------------------------------------------- optimizer.cu
// In-place updates of a parameter and its slots (common/cuda_optimizer.h);
// wd_lr = weight_decay * learning_rate (0 for none).
template <typename T>
cudaError_t sgd_update(T* p /* (n,) */, T* m /* (n,) momentum, may be null when momentum == 0 */,
                       const T* g /* (n,) */, int64_t n, double lr, double momentum,
                       bool nesterov, double wd_lr, cudaStream_t stream);
template <typename T>
cudaError_t adam_update(T* p /* (n,) */, T* m /* (n,) */, T* v /* (n,) */, const T* g /* (n,) */,
                        int64_t n, double lr_t, double beta_1, double beta_2, double epsilon,
                        double wd_lr, cudaStream_t stream);
template <typename T>
cudaError_t rmsprop_update(T* p /* (n,) */, T* v /* (n,) */, T* mom /* (n,) or null */,
                           const T* g /* (n,) */, int64_t n, double lr, double rho,
                           double momentum, double epsilon, double wd_lr, cudaStream_t stream);

}  // namespace fastdl::cuda
