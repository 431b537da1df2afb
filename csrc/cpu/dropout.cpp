// Dispatch on ctx.isa to the mask loop of dropout_loops.h compiled for the
// generic baseline, AVX2 or AVX-512. Forward and backward are the same pass.
#include "cpu/dropout.h"

#include "cpu/dropout_loops.h"

FASTDL_DEFINE_DROPOUT_ENTRY_POINT(generic)

namespace fastdl::cpu {
#if defined(FASTDL_X86)
template <typename T>
void dropout_mask_avx2(T*, const T*, int64_t, double, uint64_t, int);
template <typename T>
void dropout_mask_avx512(T*, const T*, int64_t, double, uint64_t, int);
#endif

namespace {
template <typename T>
void apply_mask(T* y, const T* x, int64_t n, double rate, uint64_t seed, const Context& ctx) {
#if defined(FASTDL_X86)
  if (ctx.isa == Isa::avx512) return dropout_mask_avx512<T>(y, x, n, rate, seed, ctx.nthreads);
  if (ctx.isa == Isa::avx2) return dropout_mask_avx2<T>(y, x, n, rate, seed, ctx.nthreads);
#endif
  dropout_mask_generic<T>(y, x, n, rate, seed, ctx.nthreads);
}
}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, int64_t n, double rate, uint64_t seed, const Context& ctx) {
  apply_mask(y, x, n, rate, seed, ctx);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, int64_t n, double rate, uint64_t seed,
                      const Context& ctx) {
  apply_mask(dx, dy, n, rate, seed, ctx);
}

template void dropout_forward<float>(float*, const float*, int64_t, double, uint64_t,
                                     const Context&);
template void dropout_forward<double>(double*, const double*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<float>(float*, const float*, int64_t, double, uint64_t,
                                      const Context&);
template void dropout_backward<double>(double*, const double*, int64_t, double, uint64_t,
                                       const Context&);

}  // namespace fastdl::cpu
