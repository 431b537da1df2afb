// 2-D max pooling, channels-last: x (N,H,W,C) -> y (N,OH,OW,C). The geometry
// uses Conv2dGeom with the pool window as (KH,KW), no dilation, F unused.
// Padding never wins: a window's maximum is taken over its taps inside x
// (the binding guarantees every window has at least one).
//
// The forward pass may also record, per output, which tap held the maximum
// (argmax), so that the backward pass is a scatter of dy that reads neither x
// nor compares anything: one byte per output, whose value is
//   t        the window's first maximum is tap t = kh * KW + kw (row-major
//            tap order, as TensorFlow breaks ties) and it is positive;
//   t | 128  the same, but the maximum is not positive (zero or negative):
//            a ReLU before the pooling passed it no gradient;
//   255      the maximum is NaN: no tap takes the gradient (as when the
//            backward pass recomputes the maximum from x).
// Windows of up to kMaxPoolArgmaxTaps taps fit the code.
#pragma once
#include <cstdint>

#include "common/conv_geometry.h"
#include "cpu/runtime/context.h"
#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu {

inline constexpr int64_t kMaxPoolArgmaxTaps = 127;
inline constexpr uint8_t kMaxPoolNotPositive = 128;  // the code's flag bit
inline constexpr uint8_t kMaxPoolNoTap = 255;        // the code of a NaN maximum

// y is overwritten; so is argmax unless null (then only y is computed).
template <typename T>
void max_pool2d_forward(T* y /* (N,OH,OW,C) */, uint8_t* argmax /* (N,OH,OW,C) or null */,
                        const T* x /* (N,H,W,C) */, const Conv2dGeom& g, const Context& ctx);

// dx is overwritten: each dy goes to the first maximum of its window (row-major
// tap order, as TensorFlow breaks ties); overlapping windows accumulate. The
// argmax is recomputed from x.
// relu: x is the output of a ReLU and dx becomes the gradient of the ReLU's
// input, dx * (x > 0), in the same pass (a window whose maximum is 0 passes nothing).
template <typename T>
void max_pool2d_backward(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                         const T* x /* (N,H,W,C) */, const Conv2dGeom& g, bool relu,
                         const Context& ctx);

// The same dx from the argmax codes of the forward pass instead of x (the
// same bits): a scatter of dy. relu as above: codes flagged not positive pass nothing.
template <typename T>
void max_pool2d_backward_argmax(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                                const uint8_t* argmax /* (N,OH,OW,C) */, const Conv2dGeom& g,
                                bool relu, const Context& ctx);

// The kernels behind them (max_pool2d_kernels.cpp, one build per capability
// level). scratch: ctx.nthreads * C values (the kernels allocate nothing).
struct MaxPoolKernels {
  template <typename T>
  using Forward = void (*)(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g,
                           const Context& ctx);
  // y and the codes (argmax not null) of every output row on the calling thread.
  template <typename T>
  using ForwardSerial = void (*)(T* y, uint8_t* argmax, const T* x, const Conv2dGeom& g);
  template <typename T>
  using Backward = void (*)(T* dx, const T* dy, const T* x, T* scratch, const Conv2dGeom& g,
                            bool relu, const Context& ctx);
  template <typename T>
  using BackwardArgmax = void (*)(T* dx, const T* dy, const uint8_t* argmax, T* scratch,
                                  const Conv2dGeom& g, bool relu, const Context& ctx);
  Forward<float> forward_f32;
  Forward<double> forward_f64;
  ForwardSerial<float> forward_serial_f32;
  ForwardSerial<double> forward_serial_f64;
  Backward<float> backward_f32;
  Backward<double> backward_f64;
  // The scatter of every image on the calling thread; scratch: OW * C values.
  template <typename T>
  using BackwardArgmaxSerial = void (*)(T* dx, const T* dy, const uint8_t* argmax, T* scratch,
                                        const Conv2dGeom& g, bool relu);
  BackwardArgmax<float> backward_argmax_f32;
  BackwardArgmax<double> backward_argmax_f64;
  BackwardArgmaxSerial<float> backward_argmax_serial_f32;
  BackwardArgmaxSerial<double> backward_argmax_serial_f64;

  template <typename T>
  Forward<T> forward() const {
    if constexpr (sizeof(T) == sizeof(float)) return forward_f32; else return forward_f64;
  }
  template <typename T>
  ForwardSerial<T> forward_serial() const {
    if constexpr (sizeof(T) == sizeof(float)) return forward_serial_f32;
    else return forward_serial_f64;
  }
  template <typename T>
  Backward<T> backward() const {
    if constexpr (sizeof(T) == sizeof(float)) return backward_f32; else return backward_f64;
  }
  template <typename T>
  BackwardArgmax<T> backward_argmax() const {
    if constexpr (sizeof(T) == sizeof(float)) return backward_argmax_f32;
    else return backward_argmax_f64;
  }
  template <typename T>
  BackwardArgmaxSerial<T> backward_argmax_serial() const {
    if constexpr (sizeof(T) == sizeof(float)) return backward_argmax_serial_f32;
    else return backward_argmax_serial_f64;
  }
};
inline DispatchTable<MaxPoolKernels> max_pool_kernels;

}  // namespace fastdl::cpu
