// Per-unit gate math of the LSTM and GRU cells (Keras gate order), forward and
// backward, host/device. The callers do the matrix products; these functions
// take one unit of one batch row.
//
// LSTM, gates i, f, g (= c~), o:
//   i = sigmoid(zi)  f = sigmoid(zf)  g = tanh(zg)  o = sigmoid(zo)
//   c = f c_prev + i g          h = o tanh(c)
// GRU, Keras reset_after=True, gates z, r, hh (= h~); x-part xz/xr/xh = x K + b[0],
// recurrent part rz/rr/rh = h_prev RK + b[1]:
//   z = sigmoid(xz + rz)  r = sigmoid(xr + rr)  hh = tanh(xh + r rh)
//   h = z h_prev + (1 - z) hh
#pragma once
#include "common/cuda_activation.h"

namespace fastdl::hd {

template <typename T>
struct LstmGates { T i, f, g, o; };

template <typename T>
FASTDL_HD LstmGates<T> lstm_gates(T zi, T zf, T zg, T zo) {
  return {sigmoid(zi), sigmoid(zf), tanh_(zg), sigmoid(zo)};
}

// Backward of one LSTM unit. dh: total gradient reaching h_t; dc_next: gradient
// reaching c_t from step t+1. Writes the pre-activation gradients and returns
// the gradient reaching c_{t-1}.
template <typename T>
FASTDL_HD T lstm_cell_backward(const LstmGates<T>& a, T c, T c_prev, T dh, T dc_next, T* dzi,
                               T* dzf, T* dzg, T* dzo) {
  T tc = tanh_(c);
  T dc = dc_next + dh * a.o * (T(1) - tc * tc);
  *dzo = dh * tc * a.o * (T(1) - a.o);
  *dzi = dc * a.g * a.i * (T(1) - a.i);
  *dzg = dc * a.i * (T(1) - a.g * a.g);
  *dzf = dc * c_prev * a.f * (T(1) - a.f);
  return dc * a.f;
}

template <typename T>
struct GruGates { T z, r, hh; };

template <typename T>
FASTDL_HD GruGates<T> gru_gates(T xz, T xr, T xh, T rz, T rr, T rh) {
  GruGates<T> a;
  a.z = sigmoid(xz + rz);
  a.r = sigmoid(xr + rr);
  a.hh = tanh_(xh + a.r * rh);
  return a;
}

FASTDL_HD float gru_output(float z, float h_prev, float hh) { return z * h_prev + (1.0f - z) * hh; }
FASTDL_HD double gru_output(double z, double h_prev, double hh) {
  return z * h_prev + (1.0 - z) * hh;
}

// Backward of one GRU unit. dh: total gradient reaching h_t; rh: the saved
// recurrent part of the candidate (h_prev RK_h + b[1]_h). Writes the gradients of
// the x-part pre-activations (dxz, dxr, dxh), of the recurrent part (drz, drr,
// drh; drz == dxz and drr == dxr) and returns the direct gradient to h_prev
// (the part through the recurrent matrix is added by the caller).
template <typename T>
FASTDL_HD T gru_cell_backward(const GruGates<T>& a, T rh, T h_prev, T dh, T* dxz, T* dxr, T* dxh,
                              T* drh) {
  T dz = dh * (h_prev - a.hh);
  T dhh_pre = dh * (T(1) - a.z) * (T(1) - a.hh * a.hh);
  *dxz = dz * a.z * (T(1) - a.z);
  *dxr = dhh_pre * rh * a.r * (T(1) - a.r);
  *dxh = dhh_pre;
  *drh = dhh_pre * a.r;
  return dh * a.z;
}

}  // namespace fastdl::hd
