// Softmax and log-softmax over the last axis of a (rows, cols) array, forward and backward.
#pragma once
#include <cstdint>

#include "cpu/runtime/context.h"

namespace fastdl::cpu {

// y = softmax(x) (or log_softmax when log is true), row by row, max-subtracted.
// y is overwritten; it may be x itself.
template <typename T>
void softmax_forward(T* y /* (rows,cols) */, const T* x /* (rows,cols) */, int64_t rows,
                     int64_t cols, bool log, const Context& ctx);

// From the forward output y:
//   softmax:     dx = y * (dy - sum(dy*y))
//   log_softmax: dx = dy - exp(y) * sum(dy)
// dx is overwritten; it may be dy.
template <typename T>
void softmax_backward(T* dx /* (rows,cols) */, const T* dy /* (rows,cols) */,
                      const T* y /* (rows,cols) */, int64_t rows, int64_t cols, bool log,
                      const Context& ctx);

}  // namespace fastdl::cpu
