// Direct convolution kernels: register-blocked loops that read each output
// pixel's taps in place (tap k of pixel p at base[p][off[k]], in a padded copy
// of a few input rows) instead of from a patch matrix. The forward kernel
// holds PB pixels x 2 vectors of filters in registers and walks the K taps;
// the dw kernel holds KB taps x 2 vectors of filters and walks the pixels.
// Both are vectorised across filters (F contiguous in w, y and dy).
//
// One body (conv2d_direct_impl.h) is compiled three times: generic, AVX2 and
// AVX-512 (by the file-name suffix), with PB/KB sized to the register file;
// conv2d.cpp picks one by ctx.isa.
#pragma once
#include <cstdint>

namespace fastdl::cpu {

#define FASTDL_DIRECT_DECLARE(ns)                                                              \
  namespace ns {                                                                               \
  /* y (np,F) overwritten = act(patches (np,K) . w (K,F) + b), patch(p,k) = base[p][off[k]] */ \
  template <typename T>                                                                        \
  void direct_forward(T* y, const T* const* base, const int64_t* off, const T* w, const T* b,  \
                      int64_t np, int64_t K, int64_t F, bool relu);                            \
  /* dw (K,F) += patches^T (K,np) . dy (np,F); db (F,) += column sums of dy, unless null */    \
  template <typename T>                                                                        \
  void direct_dw(T* dw, T* db, const T* const* base, const int64_t* off, const T* dy,          \
                 int64_t np, int64_t K, int64_t F);                                            \
  }
FASTDL_DIRECT_DECLARE(generic)
FASTDL_DIRECT_DECLARE(avx2)
FASTDL_DIRECT_DECLARE(avx512)
#undef FASTDL_DIRECT_DECLARE

}  // namespace fastdl::cpu
