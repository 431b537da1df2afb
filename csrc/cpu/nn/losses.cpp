#include "cpu/nn/losses.h"

#include <cmath>

#include "common/loss_math.h"
#include "cpu/runtime/threading.h"

namespace fastdl::cpu {
namespace {
// Cost per element relative to relu (runtime/threading.h): an exp and a log.
constexpr double kCost = 40;

int loss_threads(int64_t elements, const Context& ctx) {
  return threads_for(double(elements) * kCost, kParallelMinElements, ctx.nthreads);
}

double sum_fixed_order(const double* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += v[i];
  return s;
}
}  // namespace

template <typename T>
double sparse_softmax_xent(T* dlogits, int64_t* correct, const T* logits, const int64_t* labels,
                           int64_t rows, int64_t cols, double grad_scale, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  double* row_loss = ctx.arena->alloc<double>(rows);
  int64_t* row_ok = ctx.arena->alloc<int64_t>(rows);
  const T g = T(grad_scale);
  const int nt = loss_threads(rows * cols, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * cols;
    int64_t arg = 0;
    T mx = z[0];
    for (int64_t j = 1; j < cols; ++j)
      if (z[j] > mx) { mx = z[j]; arg = j; }
    // exp(z - mx) once per element: kept in dlogits for the gradient when there is one
    T* d = dlogits ? dlogits + r * cols : nullptr;
    T sum = 0;
    if (d) {
      for (int64_t j = 0; j < cols; ++j) {
        d[j] = std::exp(z[j] - mx);
        sum += d[j];
      }
    } else {
      for (int64_t j = 0; j < cols; ++j) sum += std::exp(z[j] - mx);
    }
    const int64_t lab = labels[r];
    row_loss[r] = sparse_xent_loss(z[lab], mx, sum);
    row_ok[r] = arg == lab;
    if (d) {
      const T scale = g / sum;
      for (int64_t j = 0; j < cols; ++j) d[j] = sparse_xent_grad_of_exp(d[j], scale, false, g);
      d[lab] -= g;
    }
  }
  if (correct) {
    int64_t c = 0;
    for (int64_t r = 0; r < rows; ++r) c += row_ok[r];
    *correct = c;
  }
  return sum_fixed_order(row_loss, rows);
}

template <typename T>
double softmax_xent(T* dlogits, const T* logits, const T* targets, int64_t rows, int64_t cols,
                    double grad_scale, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  double* row_loss = ctx.arena->alloc<double>(rows);
  const T g = T(grad_scale);
  const int nt = loss_threads(rows * cols, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * cols;
    const T* t = targets + r * cols;
    T mx = z[0];
    for (int64_t j = 1; j < cols; ++j) mx = z[j] > mx ? z[j] : mx;
    T sum = 0, tsum = 0;
    for (int64_t j = 0; j < cols; ++j) { sum += std::exp(z[j] - mx); tsum += t[j]; }
    const T lse = mx + std::log(sum);
    double l = 0;
    for (int64_t j = 0; j < cols; ++j) l += softmax_xent_loss(z[j], t[j], lse);
    row_loss[r] = l;
    if (dlogits) {
      // d/dz of sum_j t_j (lse - z_j) = tsum * softmax(z) - t
      T* d = dlogits + r * cols;
      for (int64_t j = 0; j < cols; ++j) d[j] = softmax_xent_grad(z[j], t[j], lse, tsum, g);
    }
  }
  return sum_fixed_order(row_loss, rows);
}

template <typename T>
double sigmoid_xent(T* dlogits, const T* logits, const T* targets, int64_t n, double grad_scale) {
  const T g = T(grad_scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T z = logits[i], t = targets[i];
    s += sigmoid_xent_loss(z, t);
    if (dlogits) dlogits[i] = sigmoid_xent_grad(z, t, g);
  }
  return s;
}

template <typename T>
double categorical_xent(T* dp, const T* p, const T* targets, int64_t rows, int64_t cols,
                        double eps, double grad_scale, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  double* row_loss = ctx.arena->alloc<double>(rows);
  const T lo = T(eps), hi = T(1 - eps), g = T(grad_scale);
  const int nt = loss_threads(rows * cols, ctx);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = p + r * cols;
    const T* t = targets + r * cols;
    T S = 0;
    for (int64_t j = 0; j < cols; ++j) S += pr[j];
    double l = 0;
    // q = clip(p/S); dL/dq_j = -t_j/q_j where not clipped; dL/dp_k = (dq_k - sum_j dq_j q_j)/S
    T dot = 0;
    for (int64_t j = 0; j < cols; ++j) {
      T q = pr[j] / S;
      T qc = clip_prob(q, lo, hi);
      l += categorical_xent_loss(t[j], qc);
      if (dp) {
        T dq = categorical_xent_dq(q, t[j], qc, lo, hi);
        dp[r * cols + j] = dq;
        dot += dq * q;
      }
    }
    row_loss[r] = l;
    if (dp)
      for (int64_t j = 0; j < cols; ++j) dp[r * cols + j] = categorical_xent_grad(dp[r * cols + j], dot, S, g);
  }
  return sum_fixed_order(row_loss, rows);
}

template <typename T>
double binary_xent(T* dp, const T* p, const T* targets, int64_t n, double eps, double grad_scale) {
  const T lo = T(eps), hi = T(1 - eps), g = T(grad_scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T q = p[i], t = targets[i];
    s += binary_xent_loss(q, t, lo, hi);
    if (dp) dp[i] = binary_xent_grad(q, t, lo, hi, g);
  }
  return s;
}

template <typename T>
double squared_error(T* dp, const T* p, const T* targets, int64_t n, double grad_scale) {
  const T g = T(2 * grad_scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T d = p[i] - targets[i];
    s += squared_error_loss(d);
    if (dp) dp[i] = squared_error_grad(d, g);
  }
  return s;
}

template <typename T>
double absolute_error(T* dp, const T* p, const T* targets, int64_t n, double grad_scale) {
  const T g = T(grad_scale);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T d = p[i] - targets[i];
    s += absolute_error_loss(d);
    if (dp) dp[i] = absolute_error_grad(d, g);
  }
  return s;
}

#define FASTDL_INSTANTIATE_LOSSES(T)                                                            \
  template double sparse_softmax_xent<T>(T*, int64_t*, const T*, const int64_t*, int64_t,      \
                                         int64_t, double, const Context&);                     \
  template double softmax_xent<T>(T*, const T*, const T*, int64_t, int64_t, double,            \
                                  const Context&);                                             \
  template double sigmoid_xent<T>(T*, const T*, const T*, int64_t, double);                    \
  template double categorical_xent<T>(T*, const T*, const T*, int64_t, int64_t, double, double, \
                                      const Context&);                                         \
  template double binary_xent<T>(T*, const T*, const T*, int64_t, double, double);             \
  template double squared_error<T>(T*, const T*, const T*, int64_t, double);                   \
  template double absolute_error<T>(T*, const T*, const T*, int64_t, double);
FASTDL_INSTANTIATE_LOSSES(float)
FASTDL_INSTANTIATE_LOSSES(double)

}  // namespace fastdl::cpu
