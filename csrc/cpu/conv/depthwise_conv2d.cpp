// Depthwise convolution drivers (depthwise_conv2d.h): threading and the
// per-thread accumulators; the loops are in depthwise_conv2d_kernels.cpp,
// looked up for ctx.isa.
//
// Forward: threads take contiguous ranges of (image, band of output rows)
// items; their writes are independent. Backward: threads take contiguous
// ranges of images (each owns its images of dx, so the scatter needs no
// atomics) and accumulate dw and db into their own slices, summed in thread
// order afterwards (results do not depend on timing). A layer too small to pay
// for a parallel region runs on one thread (runtime/threading.h).
#include "cpu/conv/depthwise_conv2d.h"

#include <algorithm>

#include "cpu/runtime/threading.h"

namespace fastdl::cpu {

namespace {
// Multiply-adds of the layer (forward; the backward costs about twice that).
double depthwise_macs(const Conv2dGeom& g) {
  return double(g.N) * double(g.OH) * double(g.OW) * double(g.KH) * double(g.KW) * double(g.F);
}

constexpr int64_t kRowsPerItem = 4;  // output rows per forward work item
}  // namespace

template <typename T>
void depthwise_conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dGeom& g,
                              Activation act, const Context& ctx) {
  if (g.N * g.OH * g.OW * g.F == 0) return;
  const auto kernel = depthwise_conv_kernels[ctx.isa].rows<T>();
  const bool relu = act == Activation::relu;
  const int64_t bands = (g.OH + kRowsPerItem - 1) / kRowsPerItem, items = g.N * bands;
  const int nt = int(std::min<int64_t>(
      threads_for(depthwise_macs(g), kParallelMinMacs, ctx.nthreads), items));
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t n = item / bands, oh0 = item % bands * kRowsPerItem;
    kernel(y, x, w, b, g, n, oh0, std::min(oh0 + kRowsPerItem, g.OH), relu);
  }
}

namespace {
// With stride 1 and M = 1, dx is itself a depthwise convolution: of dy, padded
// by the window extent minus the forward padding, with the window flipped
// (as conv2d's direct_conv_dx). It then gathers with its sums in registers (the
// forward kernel) instead of scattering into dx tap by tap.
bool dx_is_depthwise_conv(const Conv2dGeom& g) {
  const int64_t eh = (g.KH - 1) * g.DH, ew = (g.KW - 1) * g.DW;
  return g.F == g.C && g.SH == 1 && g.SW == 1 && g.PT <= eh && g.PB <= eh && g.PL <= ew &&
         g.PR <= ew;
}

template <typename T>
void depthwise_dx_as_conv(T* dx /* (N,H,W,C) */, const T* dy /* (N,OH,OW,C) */,
                          const T* w /* (KH,KW,C,1) */, const Conv2dGeom& g, const Context& ctx) {
  ArenaScope scope(ctx.arena);
  T* wf = ctx.arena->alloc<T>(g.KH * g.KW * g.C);
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw)
      std::copy_n(w + ((g.KH - 1 - kh) * g.KW + (g.KW - 1 - kw)) * g.C, g.C,
                  wf + (kh * g.KW + kw) * g.C);
  const int64_t eh = (g.KH - 1) * g.DH, ew = (g.KW - 1) * g.DW;
  Conv2dGeom t = g;
  t.H = g.OH; t.W = g.OW;
  t.PT = eh - g.PT; t.PB = eh - g.PB; t.PL = ew - g.PL; t.PR = ew - g.PR;
  t.OH = g.H; t.OW = g.W;
  depthwise_conv2d_forward<T>(dx, dy, wf, nullptr, t, Activation::identity, ctx);
}
}  // namespace

template <typename T>
void depthwise_conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const Conv2dGeom& g, const Context& ctx) {
  const int64_t KF = g.KH * g.KW * g.F;
  if (g.N * g.OH * g.OW * g.F == 0) {
    std::fill(dw, dw + KF, T(0));
    if (db) std::fill(db, db + g.F, T(0));
    if (dx) std::fill(dx, dx + g.N * g.H * g.W * g.C, T(0));
    return;
  }
  const auto kernel = depthwise_conv_kernels[ctx.isa].image<T>();
  if (dx && dx_is_depthwise_conv(g)) {  // dx by the forward kernel; dw and db below
    depthwise_dx_as_conv<T>(dx, dy, w, g, ctx);
    dx = nullptr;
  }
  const int nt = int(std::min<int64_t>(
      threads_for(2 * depthwise_macs(g), kParallelMinMacs, ctx.nthreads), g.N));
  ArenaScope scope(ctx.arena);
  // Thread 0 accumulates straight into dw/db, the others into their slices.
  T* dw_part = nt > 1 ? ctx.arena->alloc<T>((nt - 1) * KF) : nullptr;
  T* db_all = ctx.arena->alloc<T>(nt * g.F);
  std::fill(dw, dw + KF, T(0));
  if (dw_part) std::fill(dw_part, dw_part + (nt - 1) * KF, T(0));
  std::fill(db_all, db_all + nt * g.F, T(0));
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    T* dw_t = t == 0 ? dw : dw_part + (t - 1) * KF;
    T* db_t = db ? db_all + t * g.F : nullptr;
    for (int64_t n = g.N * t / nt; n < g.N * (t + 1) / nt; ++n)
      kernel(dx, dw_t, db_t, dy, x, w, g, n);
  }
  for (int t = 1; t < nt; ++t) {
    const T* p = dw_part + (t - 1) * KF;
    for (int64_t i = 0; i < KF; ++i) dw[i] += p[i];
  }
  if (db) {
    std::copy(db_all, db_all + g.F, db);
    for (int t = 1; t < nt; ++t)
      for (int64_t j = 0; j < g.F; ++j) db[j] += db_all[t * g.F + j];
  }
}

#define FASTDL_INSTANTIATE(T)                                                                 \
  template void depthwise_conv2d_forward<T>(T*, const T*, const T*, const T*,                 \
                                            const Conv2dGeom&, Activation, const Context&);   \
  template void depthwise_conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*,        \
                                             const Conv2dGeom&, const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cpu
