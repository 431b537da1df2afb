// Per-element math of the recurrent cells (SimpleRNN, LSTM, GRU), forward and
// backward, shared by the CPU kernels (csrc/cpu/{simple_rnn,lstm,gru}.cpp) and a
// future CUDA twin. Everything here works on one unit u of one batch row; the
// callers loop over rows and units and do the matrix products.
//
// Conventions (Keras layouts, gate blocks side by side in the G*U columns):
//   LSTM gates i, f, c~ (called g here), o;  GRU gates z, r, h~ (called hh here).
// "pre" means a pre-activation (before sigmoid/tanh); d<name> a gradient.
//
// The float versions of sigmoid and tanh use exp_fast, a branchless exp the
// compiler can vectorise (a libm call would stop it); it is accurate to a few
// float ulps. The double versions call libm, so float64 gradient checks see the
// exact functions.
//
// Everything sits in an anonymous namespace: each translation unit that
// includes this header gets its own copies, so the copies compiled with AVX2 or
// AVX-512 flags (csrc/cpu/rnn_rows_avx*.cpp) can never be merged by the linker
// into code that runs on a CPU without those instructions.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/hd.h"

namespace fastdl::rnn {
namespace {

// ------------------------------------------------------------ scalar helpers

FASTDL_HD uint32_t float_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
FASTDL_HD float bits_float(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

// m ? a : b through a bit mask. A plain ?: on floats becomes a branch that GCC
// will not if-convert under its default -ftrapping-math, which stops the loop
// around it from vectorising; the mask form vectorises.
FASTDL_HD float select(bool m, float a, float b) {
  const uint32_t mask = 0u - uint32_t(m);
  return bits_float((float_bits(a) & mask) | (float_bits(b) & ~mask));
}

// e^x for float without a library call or branch: x = k ln2 + r with |r| <= ln2/2,
// e^x = 2^k e^r, e^r by its Taylor series to r^7 (error below 1e-8 relative).
// Inputs are clamped to [-87, 88], so the result stays a normal float.
FASTDL_HD float exp_fast(float x) {
  x = select(x < -87.0f, -87.0f, x);
  x = select(x > 88.0f, 88.0f, x);
  // Round x/ln2 to the nearest integer k: adding 1.5*2^23 pushes the fraction out
  // of the mantissa, whose low bits then hold k.
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const int32_t k = int32_t(float_bits(t) - float_bits(shifter));
  const float kf = t - shifter;
  // r = x - k ln2, with ln2 split in two so k*ln2_hi is exact.
  float r = x - kf * 0.693145751953125f;
  r = r - kf * 1.428606765330187045e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * bits_float(uint32_t(k + 127) << 23);  // times 2^k
}

FASTDL_HD float sigmoid(float x) { return 1.0f / (1.0f + exp_fast(-x)); }
FASTDL_HD double sigmoid(double x) { return 1.0 / (1.0 + ::exp(-x)); }

// tanh x = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|). Near zero that loses
// relative accuracy (1 - e cancels), so |x| < 0.25 uses the odd Taylor series.
FASTDL_HD float tanh_act(float x) {
  const uint32_t sign = float_bits(x) & 0x80000000u;
  const float a = bits_float(float_bits(x) ^ sign);  // |x|
  const float e = exp_fast(-2.0f * a);
  const float big = bits_float(float_bits((1.0f - e) / (1.0f + e)) | sign);
  const float x2 = x * x;
  float small = 62.0f / 2835.0f;
  small = small * x2 - 17.0f / 315.0f;
  small = small * x2 + 2.0f / 15.0f;
  small = small * x2 - 1.0f / 3.0f;
  small = x + x * x2 * small;
  return select(a < 0.25f, small, big);
}
FASTDL_HD double tanh_act(double x) { return ::tanh(x); }

// ------------------------------------------------------------ SimpleRNN
// h = act(pre); backward needs only h: tanh' = 1 - h^2, relu' = [h > 0].

template <typename T>
FASTDL_HD T tanh_grad_from_out(T h) { return T(1) - h * h; }

template <typename T>
FASTDL_HD T relu_grad_from_out(T h) { return T(h > T(0)); }

// ------------------------------------------------------------ LSTM
// In: the four pre-activations and c_prev. Out: the activated gates (in place),
// the new cell state c and output h.
//   i, f, o = sigmoid(pre),  g = tanh(pre),  c = f c_prev + i g,  h = o tanh(c)
// In two halves, the gate activations and the state update, so a CPU row pass
// can run each half as its own short loop (lstm_cell_forward = both, in order).
template <typename T>
FASTDL_HD void lstm_cell_state(T i, T f, T g, T o, T c_prev, T& c, T& h) {
  c = f * c_prev + i * g;
  h = o * tanh_act(c);
}

template <typename T>
FASTDL_HD void lstm_cell_forward(T& i, T& f, T& g, T& o, T c_prev, T& c, T& h) {
  i = sigmoid(i);
  f = sigmoid(f);
  g = tanh_act(g);
  o = sigmoid(o);
  lstm_cell_state(i, f, g, o, c_prev, c, h);
}

// In: the saved activated gates, c and c_prev, dh (total gradient reaching h)
// and dc (gradient reaching c from the step after). Out: the four gate
// pre-activation gradients, and dc becomes the gradient reaching c_prev.
template <typename T>
FASTDL_HD void lstm_cell_backward(T i, T f, T g, T o, T c, T c_prev, T dh, T& dc, T& di_pre,
                                  T& df_pre, T& dg_pre, T& do_pre) {
  T tc = tanh_act(c);
  T dct = dc + dh * o * (T(1) - tc * tc);  // all of dL/dc at this step
  do_pre = dh * tc * o * (T(1) - o);
  di_pre = dct * g * i * (T(1) - i);
  dg_pre = dct * i * (T(1) - g * g);
  df_pre = dct * c_prev * f * (T(1) - f);
  dc = dct * f;
}

// ------------------------------------------------------------ GRU (reset_after=True)
// In: input projections xz, xr, xh (x W + b_in) and recurrent projections hz,
// hr, hh_rec (h_prev U + b_rec), h_prev. Out: z, r, hh and h.
//   z = sigmoid(xz + hz), r = sigmoid(xr + hr), hh = tanh(xh + r hh_rec),
//   h = z h_prev + (1 - z) hh
template <typename T>
FASTDL_HD void gru_cell_forward(T xz, T xr, T xh, T hz, T hr, T hh_rec, T h_prev, T& z, T& r,
                                T& hh, T& h) {
  z = sigmoid(xz + hz);
  r = sigmoid(xr + hr);
  hh = tanh_act(xh + r * hh_rec);
  h = z * h_prev + (T(1) - z) * hh;
}

// In: saved z, r, hh, hh_rec, h_prev and dh (total gradient reaching h).
// Out: gradients of the pre-activations as seen from the input side
// (dz_pre, dr_pre, dhh_pre: what x W + b_in receives), of the candidate's
// recurrent projection (dhh_rec = dhh_pre r: what h_prev U_h + b_rec,h receives;
// the z and r parts are the same as the input side), and the direct part of
// dh_prev (dh z; the part through U is added by a matrix product).
template <typename T>
FASTDL_HD void gru_cell_backward(T z, T r, T hh, T hh_rec, T h_prev, T dh, T& dz_pre, T& dr_pre,
                                 T& dhh_pre, T& dhh_rec, T& dh_prev_direct) {
  dz_pre = dh * (h_prev - hh) * z * (T(1) - z);
  dhh_pre = dh * (T(1) - z) * (T(1) - hh * hh);
  dr_pre = dhh_pre * hh_rec * r * (T(1) - r);
  dhh_rec = dhh_pre * r;
  dh_prev_direct = dh * z;
}

}  // namespace
}  // namespace fastdl::rnn
