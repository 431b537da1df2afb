#include "cpu/nn/softmax.h"

#include <cmath>

#include "common/activation_math.h"
#include "cpu/runtime/threading.h"

namespace fastdl::cpu {
namespace {
// Cost per element relative to relu (runtime/threading.h): an exp.
constexpr double kCost = 33;

template <typename T>
void softmax_row(T* y, const T* x, int64_t c, bool log) {
  T mx = x[0];
  for (int64_t j = 1; j < c; ++j) mx = x[j] > mx ? x[j] : mx;
  T sum = 0;
  if (log) {
    for (int64_t j = 0; j < c; ++j) sum += std::exp(x[j] - mx);
    T lse = mx + std::log(sum);
    for (int64_t j = 0; j < c; ++j) y[j] = x[j] - lse;
  } else {
    for (int64_t j = 0; j < c; ++j) { y[j] = std::exp(x[j] - mx); sum += y[j]; }
    T inv = T(1) / sum;
    for (int64_t j = 0; j < c; ++j) y[j] *= inv;
  }
}

template <typename T>
void softmax_backward_row(T* dx, const T* dy, const T* y, int64_t c, bool log) {
  T s = 0;
  if (log) {
    for (int64_t j = 0; j < c; ++j) s += dy[j];
    for (int64_t j = 0; j < c; ++j) dx[j] = log_softmax_grad(dy[j], y[j], s);
  } else {
    for (int64_t j = 0; j < c; ++j) s += dy[j] * y[j];
    for (int64_t j = 0; j < c; ++j) dx[j] = softmax_grad(dy[j], y[j], s);
  }
}
}  // namespace

template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log, const Context& ctx) {
  if (cols == 0) return;
  const int nt = threads_for(double(rows * cols) * kCost, kParallelMinElements, ctx.nthreads);
  auto row = [&](int64_t r) { softmax_row(y + r * cols, x + r * cols, cols, log); };
  if (nt <= 1) {   // no parallel region at all: an inactive one still costs ~0.5 us,
    for (int64_t r = 0; r < rows; ++r) row(r);   // as much as a one-sample predict's softmax
    return;
  }
#pragma omp parallel for num_threads(nt)
  for (int64_t r = 0; r < rows; ++r) row(r);
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log,
                      const Context& ctx) {
  if (cols == 0) return;
  const int nt = threads_for(double(rows * cols) * kCost, kParallelMinElements, ctx.nthreads);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r)
    softmax_backward_row(dx + r * cols, dy + r * cols, y + r * cols, cols, log);
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t, bool, const Context&);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t, bool,
                                      const Context&);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t, bool,
                                      const Context&);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t,
                                       bool, const Context&);

}  // namespace fastdl::cpu
