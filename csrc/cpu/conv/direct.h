// Direct convolution kernels: register-blocked loops that read each output
// pixel's taps in place (tap k of pixel p at base[p][off[k]], in a padded copy
// of a few input rows) instead of from a patch matrix. The forward kernel
// holds PB pixels x 2 vectors of filters in registers and walks the K taps;
// the dw kernel holds KB taps x 2 vectors of filters and walks the pixels.
// Both are vectorised across filters (F contiguous in w, y and dy). The dx
// kernel is the forward kernel turned around: tap by tap, it holds PB pixels x
// 2 vectors of channels of that tap's gradient (the patch matrix's row entries
// of dx), walks the F filters of dy, and adds the result into dx in place,
// where tap k of pixel p lands at dst[p][off[k]] (no patch matrix, no col2im).
//
// direct_kernels.cpp is compiled once per capability level, with PB/KB sized
// to that level's register file, and registers in direct_conv_kernels.
#pragma once
#include <cstdint>

#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

// y (np,F) overwritten = act(patches (np,K) . w (K,F) + b), patch(p,k) = base[p][off[k]].
template <typename T>
using DirectForwardFn = void (*)(T* y, const T* const* base, const int64_t* off, const T* w,
                                 const T* b, int64_t np, int64_t K, int64_t F, bool relu);
// dw (K,F) += patches^T (K,np) . dy (np,F); db (F,) += column sums of dy, unless null.
template <typename T>
using DirectDwFn = void (*)(T* dw, T* db, const T* const* base, const int64_t* off, const T* dy,
                            int64_t np, int64_t K, int64_t F);

// For every tap k < taps, in order, and pixel p < np: dst[p][off[k] + c] +=
// sum_f dy[p,f] * wt[k,f,c], c < C. For each k, the C-long runs of different
// pixels must not overlap. A dx value sums its terms tap by tap, so the pixels a
// call is given do not change the order of the others' terms: leaving out a
// pixel whose dy is zero (finite w) gives the same bits.
template <typename T>
using DirectDxFn = void (*)(T* const* dst, const int64_t* off, const T* dy, const T* wt,
                            int64_t np, int64_t taps, int64_t C, int64_t F);

struct DirectConvKernels {
  DirectForwardFn<float> forward_f32;
  DirectForwardFn<double> forward_f64;
  DirectDwFn<float> dw_f32;
  DirectDwFn<double> dw_f64;
  DirectDxFn<float> dx_f32;
  DirectDxFn<double> dx_f64;

  template <typename T>
  DirectForwardFn<T> forward() const {
    if constexpr (sizeof(T) == sizeof(float)) return forward_f32; else return forward_f64;
  }
  template <typename T>
  DirectDwFn<T> dw() const {
    if constexpr (sizeof(T) == sizeof(float)) return dw_f32; else return dw_f64;
  }
  template <typename T>
  DirectDxFn<T> dx() const {
    if constexpr (sizeof(T) == sizeof(float)) return dx_f32; else return dx_f64;
  }
};
inline DispatchTable<DirectConvKernels> direct_conv_kernels;

}  // namespace fastdl::cpu
