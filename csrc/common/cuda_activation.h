// Per-element activation math, forward and backward, for float and double.
// Host/device (FASTDL_HD): the CUDA kernels use it today; the CPU kernels can
// include it too (it is plain C++ without nvcc).
//
// Backward passes are written in terms of the forward *output* y where that is
// cheaper (sigmoid' = y(1-y), tanh' = 1-y^2, relu' = [y > 0]), which is what the
// recurrent kernels keep anyway.
#pragma once
#include <math.h>

#include "common/hd.h"

namespace fastdl::hd {

// The math functions as overloads, so templates pick the float or the double one.
FASTDL_HD float exp_(float x) { return expf(x); }
FASTDL_HD double exp_(double x) { return exp(x); }
FASTDL_HD float log_(float x) { return logf(x); }
FASTDL_HD double log_(double x) { return log(x); }
FASTDL_HD float tanh_(float x) { return tanhf(x); }
FASTDL_HD double tanh_(double x) { return tanh(x); }
FASTDL_HD float sqrt_(float x) { return sqrtf(x); }
FASTDL_HD double sqrt_(double x) { return sqrt(x); }

enum class Act : int { linear = 0, relu = 1, sigmoid = 2, tanh = 3 };

// 1 / (1 + e^-x) without overflow for large |x|.
template <typename T>
FASTDL_HD T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp_(-x));
  T e = exp_(x);
  return e / (T(1) + e);
}

template <typename T>
FASTDL_HD T relu(T x) { return x > T(0) ? x : T(0); }

template <typename T>
FASTDL_HD T activate(Act a, T x) {
  switch (a) {
    case Act::relu: return relu(x);
    case Act::sigmoid: return sigmoid(x);
    case Act::tanh: return tanh_(x);
    default: return x;
  }
}

// d act / d x, given y = act(x).
template <typename T>
FASTDL_HD T activate_grad_from_y(Act a, T y) {
  switch (a) {
    case Act::relu: return y > T(0) ? T(1) : T(0);
    case Act::sigmoid: return y * (T(1) - y);
    case Act::tanh: return T(1) - y * y;
    default: return T(1);
  }
}

}  // namespace fastdl::hd
