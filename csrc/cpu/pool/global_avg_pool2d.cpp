#include "cpu/pool/global_avg_pool2d.h"

#include <cstring>

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

template <typename T>
void global_avg_pool2d_forward(T* y, const T* x, int64_t N, int64_t HW, int64_t C,
                               const Context& ctx) {
  const T scale = T(1) / T(HW);
  const int nt = threads_for(double(N * HW) * double(C), kParallelMinElements, ctx.nthreads);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T* yn = y + n * C;
    const T* xn = x + n * HW * C;
    std::memset(yn, 0, sizeof(T) * C);
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) yn[c] += xn[p * C + c];
    for (int64_t c = 0; c < C; ++c) yn[c] *= scale;
  }
}

template <typename T>
void global_avg_pool2d_backward(T* dx, const T* dy, int64_t N, int64_t HW, int64_t C,
                                const Context& ctx) {
  const T scale = T(1) / T(HW);
  const int nt = threads_for(double(N * HW) * double(C), kParallelMinElements, ctx.nthreads);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* dyn = dy + n * C;
    T* dxn = dx + n * HW * C;
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) dxn[p * C + c] = dyn[c] * scale;
  }
}

template void global_avg_pool2d_forward<float>(float*, const float*, int64_t, int64_t, int64_t,
                                               const Context&);
template void global_avg_pool2d_forward<double>(double*, const double*, int64_t, int64_t,
                                                int64_t, const Context&);
template void global_avg_pool2d_backward<float>(float*, const float*, int64_t, int64_t, int64_t,
                                                const Context&);
template void global_avg_pool2d_backward<double>(double*, const double*, int64_t, int64_t,
                                                 int64_t, const Context&);

}  // namespace fastdl::cpu
