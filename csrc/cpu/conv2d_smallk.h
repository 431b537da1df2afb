// Register-blocked kernels for convolutions whose patch length K = KH*KW*C is
// small (a first layer on 1- or 3-channel images: K = 9 or 27). There the
// patch matrix would be as big as the output and a GEMM with k = 9 spends its
// time packing, so these loops read each pixel's taps straight from a padded
// copy of the input rows (tap k of pixel p at base[p][off[k]]) and keep the
// outputs in registers, vectorised across filters.
//
// One body (conv2d_smallk_impl.h) is compiled three times: generic, AVX2 and
// AVX-512 (by the file-name suffix); conv2d.cpp picks one by ctx.isa.
#pragma once
#include <cstdint>

namespace fastdl::cpu {

#define FASTDL_SMALLK_DECLARE(ns)                                                              \
  namespace ns {                                                                               \
  /* y (np,F) overwritten = act(patches (np,K) . w (K,F) + b), patch(p,k) = base[p][off[k]] */ \
  template <typename T>                                                                        \
  void smallk_forward(T* y, const T* const* base, const int64_t* off, const T* w, const T* b,  \
                      int64_t np, int64_t K, int64_t F, bool relu);                            \
  /* dw (K,F) += patches^T (K,np) . dy (np,F) */                                               \
  template <typename T>                                                                        \
  void smallk_dw(T* dw, const T* const* base, const int64_t* off, const T* dy, int64_t np,     \
                 int64_t K, int64_t F);                                                        \
  }
FASTDL_SMALLK_DECLARE(generic)
FASTDL_SMALLK_DECLARE(avx2)
FASTDL_SMALLK_DECLARE(avx512)
#undef FASTDL_SMALLK_DECLARE

}  // namespace fastdl::cpu
