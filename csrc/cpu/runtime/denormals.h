// Flush denormals to zero for the lifetime of a scope (this thread only).
//
// Optimizer state decays geometrically where a gradient is zero (m *= beta_1
// every step) and reaches the denormal range after a few hundred steps; x86
// then takes a slow microcode path on every such element (tens of times
// slower). TensorFlow runs its kernels with flush-to-zero for the same reason.
// Only values below ~1e-38 (float) are affected.
#pragma once
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FASTDL_HAVE_MXCSR 1
#endif

namespace fastdl::cpu {

class FlushDenormals {
 public:
#if defined(FASTDL_HAVE_MXCSR)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }
 private:
  unsigned saved_;
#else
  FlushDenormals() {}
#endif
 public:
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace fastdl::cpu
