// Per-element (or per-row-element) loss math shared by the CPU kernels
// (cpu/losses.cpp) and their CUDA twins (cuda/loss.cu). Each *_loss returns one
// element's contribution to the summed loss in double (the callers add them in a
// fixed order); each *_grad returns the element's gradient of (sum * g).
#pragma once
#include <cmath>

#include "common/activation_math.h"
#include "common/hd.h"

namespace fastdl {

// p clipped to [lo, hi].
template <typename T>
FASTDL_HD T clip_prob(T q, T lo, T hi) { return q < lo ? lo : (q > hi ? hi : q); }

// Sparse softmax cross-entropy, row with max mx and sum of exp(z - mx) sum:
// loss log(sum) - (z[label] - mx); gradient exp(z - mx) g / sum, minus g at the label.
template <typename T>
FASTDL_HD double sparse_xent_loss(T z_label, T mx, T sum) {
  return double(std::log(sum) - (z_label - mx));
}
// (from e = exp(z - mx) when the caller kept it from the sum)
template <typename T>
FASTDL_HD T sparse_xent_grad_of_exp(T e, T g_over_sum, bool is_label, T g) {
  const T d = e * g_over_sum;
  return is_label ? d - g : d;
}
template <typename T>
FASTDL_HD T sparse_xent_grad(T z, T mx, T g_over_sum, bool is_label, T g) {
  return sparse_xent_grad_of_exp(T(std::exp(z - mx)), g_over_sum, is_label, g);
}

// Softmax cross-entropy against a target distribution, one column j of a row
// with log-sum-exp lse and target sum tsum: loss t (lse - z); d/dz = tsum softmax(z) - t.
template <typename T>
FASTDL_HD double softmax_xent_loss(T z, T t, T lse) { return double(t) * double(lse - z); }
template <typename T>
FASTDL_HD T softmax_xent_grad(T z, T t, T lse, T tsum, T g) {
  return (tsum * std::exp(z - lse) - t) * g;
}

// Sigmoid + binary cross-entropy from the logit z: max(z,0) - z t + log(1 + e^-|z|).
template <typename T>
FASTDL_HD double sigmoid_xent_loss(T z, T t) {
  const T az = z < T(0) ? -z : z;
  return double((z > T(0) ? z : T(0)) - z * t + std::log1p(std::exp(-az)));
}
template <typename T>
FASTDL_HD T sigmoid_xent_grad(T z, T t, T g) { return (sigmoid_of(z) - t) * g; }

// Categorical cross-entropy (Keras): q = p / rowsum, clipped to [lo, hi]; loss -t log(qc).
// dq = dL/dq (0 where q was clipped); the caller finishes dp = (dq - sum dq q) / S * g.
template <typename T>
FASTDL_HD double categorical_xent_loss(T t, T qc) { return -double(t) * std::log(double(qc)); }
template <typename T>
FASTDL_HD T categorical_xent_dq(T q, T t, T qc, T lo, T hi) {
  return (q < lo || q > hi) ? T(0) : -t / qc;
}
template <typename T>
FASTDL_HD T categorical_xent_grad(T dq, T dot, T S, T g) { return (dq - dot) / S * g; }

// Binary cross-entropy from a probability q clipped to [lo, hi].
template <typename T>
FASTDL_HD double binary_xent_loss(T q, T t, T lo, T hi) {
  const T qc = clip_prob(q, lo, hi);
  return -(double(t) * std::log(double(qc)) + double(T(1) - t) * std::log(double(T(1) - qc)));
}
template <typename T>
FASTDL_HD T binary_xent_grad(T q, T t, T lo, T hi, T g) {
  const T qc = clip_prob(q, lo, hi);
  return (q < lo || q > hi) ? T(0) : (-t / qc + (T(1) - t) / (T(1) - qc)) * g;
}

// Squared error (p - t)^2, gradient 2 (p - t) g (the caller passes g2 = 2 g).
template <typename T>
FASTDL_HD double squared_error_loss(T d) { return double(d) * double(d); }
template <typename T>
FASTDL_HD T squared_error_grad(T d, T g2) { return d * g2; }

// Absolute error |p - t|, gradient sign(p - t) g.
template <typename T>
FASTDL_HD double absolute_error_loss(T d) { return std::fabs(double(d)); }
template <typename T>
FASTDL_HD T absolute_error_grad(T d, T g) { return d > T(0) ? g : (d < T(0) ? -g : T(0)); }

}  // namespace fastdl
