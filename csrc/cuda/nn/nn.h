// GPU element-wise, softmax, loss, dropout and optimizer kernels (host launchers).
// Argument order: outputs, inputs, saved state, sizes, parameters, stream. Every
// array is a contiguous device array; outputs are overwritten unless noted, and
// may be the same array as the input of the same shape (in-place is allowed for
// the element-wise ones). Each returns the launch error, if any.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "common/activation_math.h"

namespace fastdl::cuda {

using fastdl::Act;

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
// The loss kernels of cpu/losses.h with the same per-element math
// (common/loss_math.h). Sums come back in double on the device, so the binding
// copies a few numbers to the host, as the CPU binding returns Python floats.
enum class LossKind { softmax_xent, sigmoid_xent, categorical_xent, binary_xent, mse, mae };

// Fused sparse softmax cross-entropy over logits (N,C), labels (N,) int:
//   loss_r = logsumexp(z_r) - z_r[label_r];  dlogits = (softmax(z) - onehot) * grad_scale
// (dlogits may be null: no gradient). stats (3,) receives the sum of the row
// losses, the number of rows whose (first) argmax is the label, and the number of
// labels outside [0, C) (their rows add nothing; the binding raises). rows is
// (3, N) scratch.
template <typename T, typename L>
cudaError_t sparse_softmax_xent(T* dlogits /* (N,C) or null */, double* stats /* (3,) */,
                                double* rows /* (3,N) scratch */, const T* logits /* (N,C) */,
                                const L* labels /* (N,) */, int64_t N, int64_t C,
                                double grad_scale, cudaStream_t stream);

// The other losses (see cpu/losses.h for each formula). pred and target are
// (rows, cols) (element-wise kinds use rows*cols elements). sum (1,) receives
// the summed loss; terms is scratch of rows (row-wise kinds) or rows*cols
// doubles. d (same shape as pred) receives the gradient of sum * grad_scale, or
// is null.
template <typename T>
cudaError_t loss(LossKind kind, T* d /* (rows,cols) or null */, double* sum /* (1,) */,
                 double* terms /* scratch */, const T* pred /* (rows,cols) */,
                 const T* target /* (rows,cols) */, int64_t rows, int64_t cols, double eps,
                 double grad_scale, cudaStream_t stream);

// ---------------------------------------------------------------- dropout.cu
// y = x * (keep(seed, i) ? 1 / (1 - rate) : 0), keep from common/random_math.h,
// the CPU's mask bit for bit (i is the flat C-order index). The backward pass is
// the same call on dy with the same seed and rate. In place (y == x) is fine.
template <typename T>
cudaError_t dropout(T* y /* (n,) */, const T* x /* (n,) */, int64_t n, double rate, uint64_t seed,
                    cudaStream_t stream);

// ---------------------------------------------------------------- embedding.cu
// y[i, :] = table[ids[i], :]; ids already checked to lie in [0, V).
template <typename T>
cudaError_t embedding_forward(T* y /* (n, D) */, const T* table /* (V, D) */,
                              const int64_t* ids /* (n,) */, int64_t n, int64_t D,
                              cudaStream_t stream);
// dtable[r, :] = sum of dy[i, :] over the tokens i with id r (zero for ids that
// do not occur), summed in the order of i: sorted_ids is ids sorted stably and
// order[p] the token each sorted position came from. dtable is overwritten.
template <typename T>
cudaError_t embedding_backward(T* dtable /* (V, D) */, const T* dy /* (n, D) */,
                               const int64_t* sorted_ids /* (n,) */, const int64_t* order /* (n,) */,
                               int64_t n, int64_t V, int64_t D, cudaStream_t stream);

// ---------------------------------------------------------------- optimizer.cu
// In-place updates of a parameter and its slots with the CPU's per-element
// steps (common/optimizer_math.h); lr_wd = learning_rate * weight_decay (0 for
// none); Adam takes its bias-corrected step size alpha from the caller.
template <typename T>
cudaError_t sgd_update(T* p /* (n,) */, T* m /* (n,) momentum, may be null when momentum == 0 */,
                       const T* g /* (n,) */, int64_t n, double lr, double momentum,
                       bool nesterov, double lr_wd, cudaStream_t stream);
template <typename T>
cudaError_t adam_update(T* p /* (n,) */, T* m /* (n,) */, T* v /* (n,) */, const T* g /* (n,) */,
                        int64_t n, double alpha, double beta_1, double beta_2, double epsilon,
                        double lr_wd, cudaStream_t stream);
template <typename T>
cudaError_t rmsprop_update(T* p /* (n,) */, T* v /* (n,) */, T* mom /* (n,) or null */,
                           const T* g /* (n,) */, int64_t n, double lr, double rho,
                           double momentum, double epsilon, double lr_wd, cudaStream_t stream);

}  // namespace fastdl::cuda
