// Per-element activation math shared by the CPU kernels and a CUDA twin.
//
// Backward passes are written in terms of the forward OUTPUT y (not the input):
// relu'(x) = [y > 0], sigmoid'(x) = y(1-y), tanh'(x) = 1-y^2. Layers keep y
// anyway, so nothing extra is saved for the backward pass.
#pragma once
#include <cmath>

#include "common/hd.h"

namespace fastdl {

enum class Act : int { linear = 0, relu = 1, sigmoid = 2, tanh = 3 };

template <typename T>
FASTDL_HD T sigmoid_of(T x) {
  // Stable both ways: never exp of a large positive number.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <Act A, typename T>
FASTDL_HD T act_forward(T x) {
  if constexpr (A == Act::relu) return x < T(0) ? T(0) : x;  // NaN stays NaN, like np.maximum
  else if constexpr (A == Act::sigmoid) return sigmoid_of(x);
  else if constexpr (A == Act::tanh) return std::tanh(x);
  else return x;
}

// dL/dx from dL/dy and the forward output y.
template <Act A, typename T>
FASTDL_HD T act_backward(T dy, T y) {
  if constexpr (A == Act::relu) return y > T(0) ? dy : T(0);
  else if constexpr (A == Act::sigmoid) return dy * y * (T(1) - y);
  else if constexpr (A == Act::tanh) return dy * (T(1) - y * y);
  else return dy;
}

// Softmax backward along one row, from dy and the forward output y:
//   softmax:      dx = y (dy - s),        s = sum(dy * y)
//   log-softmax:  dx = dy - exp(y) s,     s = sum(dy)
template <typename T>
FASTDL_HD T softmax_grad(T dy, T y, T s) { return y * (dy - s); }
template <typename T>
FASTDL_HD T log_softmax_grad(T dy, T y, T s) { return dy - std::exp(y) * s; }

}  // namespace fastdl
