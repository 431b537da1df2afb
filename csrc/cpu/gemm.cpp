// Placeholder driver: forwards to the reference until the blocked engine lands.
#include "cpu/gemm.h"

namespace fastdl::cpu {

template <typename T>
void gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
          int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T alpha, T beta,
          const GemmEpilogue<T>& ep, const Context& ctx) {
  gemm_ref<T>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep);
}

template void gemm<float>(float*, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          int64_t, int64_t, int64_t, int64_t, int64_t, float, float,
                          const GemmEpilogue<float>&, const Context&);
template void gemm<double>(double*, int64_t, int64_t, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                           double, const GemmEpilogue<double>&, const Context&);

}  // namespace fastdl::cpu
