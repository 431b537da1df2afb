#include "cpu/nn/activations.h"

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {
namespace {

// Cost per element relative to relu (runtime/threading.h): exp or tanh ~100.
template <Act A>
constexpr double kCost = A == Act::relu || A == Act::linear ? 1 : 100;

template <Act A, typename T>
void forward_loop(T* y, const T* x, int64_t n, const Context& ctx) {
  const int nt = threads_for(double(n) * kCost<A>, kParallelMinElements, ctx.nthreads);
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) y[i] = act_forward<A>(x[i]);
}

template <Act A, typename T>
void backward_loop(T* dx, const T* dy, const T* y, int64_t n, const Context& ctx) {
  const int nt = threads_for(double(n), kParallelMinElements, ctx.nthreads);  // no exp here
#pragma omp parallel for num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < n; ++i) dx[i] = act_backward<A>(dy[i], y[i]);
}

}  // namespace

template <typename T>
void activation_forward(T* y, const T* x, int64_t n, Act act, const Context& ctx) {
  switch (act) {
    case Act::relu: forward_loop<Act::relu>(y, x, n, ctx); break;
    case Act::sigmoid: forward_loop<Act::sigmoid>(y, x, n, ctx); break;
    case Act::tanh: forward_loop<Act::tanh>(y, x, n, ctx); break;
    case Act::linear: forward_loop<Act::linear>(y, x, n, ctx); break;
  }
}

template <typename T>
void activation_backward(T* dx, const T* dy, const T* y, int64_t n, Act act, const Context& ctx) {
  switch (act) {
    case Act::relu: backward_loop<Act::relu>(dx, dy, y, n, ctx); break;
    case Act::sigmoid: backward_loop<Act::sigmoid>(dx, dy, y, n, ctx); break;
    case Act::tanh: backward_loop<Act::tanh>(dx, dy, y, n, ctx); break;
    case Act::linear: backward_loop<Act::linear>(dx, dy, y, n, ctx); break;
  }
}

template void activation_forward<float>(float*, const float*, int64_t, Act, const Context&);
template void activation_forward<double>(double*, const double*, int64_t, Act, const Context&);
template void activation_backward<float>(float*, const float*, const float*, int64_t, Act,
                                         const Context&);
template void activation_backward<double>(double*, const double*, const double*, int64_t, Act,
                                          const Context&);

}  // namespace fastdl::cpu
