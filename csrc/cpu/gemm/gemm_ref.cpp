#include "cpu/gemm/gemm.h"

namespace fastdl::cpu {

template <typename T>
void gemm_ref(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
              const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k,
              T alpha, T beta, const GemmEpilogue<T>& ep) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
      T v = alpha * acc;
      if (beta != T(0)) v += beta * c[i * rs_c + j * cs_c];
      if (ep.bias) v += ep.bias[j];
      if (ep.act == Activation::relu) v = v > T(0) ? v : T(0);
      c[i * rs_c + j * cs_c] = v;
    }
  }
}

template void gemm_ref<float>(float*, int64_t, int64_t, const float*, int64_t, int64_t,
                              const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float,
                              float, const GemmEpilogue<float>&);
template void gemm_ref<double>(double*, int64_t, int64_t, const double*, int64_t, int64_t,
                               const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                               double, const GemmEpilogue<double>&);

}  // namespace fastdl::cpu
