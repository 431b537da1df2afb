// _cuda conv2d / pooling: the shared checks and geometry
// (bindings_common/checks.h), scratch from CuPy, then the launchers in cuda/conv2d.h.
#include <pybind11/stl.h>

#include <algorithm>
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "cuda/conv/conv2d.h"
#include "cuda/gemm/gemm.h"
#include "cuda/nn/nn.h"

namespace fastdl::bind_cuda {
namespace {


// col scratch budget per chunk of images (elements); at least one image.
constexpr int64_t kColBudget = int64_t(1) << 26;

using checks::Pair;
using checks::Pads;

// x, w: checked by conv_geometry, then made contiguous.
struct ConvArgs {
  DevArray x, w;
  Conv2dGeom g;
  char code;
};

ConvArgs conv_args(const char* op, py::handle x_h, py::handle w_h, const Pair& strides,
                   const Pair& dilation, bool same, const Pads& pads) {
  ConvArgs a;
  a.x = device_array(x_h, "x");
  a.w = device_array(w_h, "w");
  a.g = checks::conv_geometry(op, a.x.view(), a.w.view(), strides, dilation, same, pads, &a.code);
  a.x = contiguous(a.x, "x");
  a.w = contiguous(a.w, "w");
  return a;
}

int64_t conv_chunk(const Conv2dGeom& g) {
  const int64_t per_image = g.OH * g.OW * g.KH * g.KW * g.C;  // checked by conv_geometry
  int64_t chunk = per_image > 0 ? kColBudget / per_image : g.N;
  chunk = std::max<int64_t>(1, std::min<int64_t>(chunk, std::max<int64_t>(g.N, 1)));
  return chunk;
}

py::object conv2d_entry(py::handle x_h, py::handle w_h, py::handle b_h, Pair strides,
                        Pair dilation, bool same, Pads pads, py::handle activation) {
  const cuda::Activation act =
      checks::parse_linear_or_relu<cuda::Activation>(activation, "conv2d: ");
  ConvArgs a = conv_args("conv2d", x_h, w_h, strides, dilation, same, pads);
  const Conv2dGeom& g = a.g;
  const DevArray &x = a.x, &w = a.w;
  const char code = a.code;
  const int64_t F = g.F;
  DevArray b = device_array_or_none(b_h, "b");
  if (b.present()) {
    checks::conv_bias(b.view(), g, x.view(), w.view());
    b = contiguous(b, "b");
  }
  DevArray y = empty({g.N, g.OH, g.OW, F}, code);
  const int64_t chunk = conv_chunk(g);
  const bool pointwise = cuda::conv_is_pointwise(g);
  DevArray col = empty({pointwise ? 0 : chunk * g.OH * g.OW * g.KH * g.KW * g.C}, code);
  cudaStream_t s = current_stream();
  const bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::conv2d<float>(y.data<float>(), x.data<const float>(), w.data<const float>(),
                                    b.data<const float>(), col.data<float>(), g, F, chunk, act, tf32,
                                    s)
              : cuda::conv2d<double>(y.data<double>(), x.data<const double>(),
                                     w.data<const double>(), b.data<const double>(),
                                     col.data<double>(), g, F, chunk, act, tf32, s);
  }
  check_cuda(err, "conv2d");
  return y.obj;
}

// (dx or None, dw, db); need_dx=False skips dx (and its GEMM and col2im).
py::tuple conv2d_backward_entry(py::handle dy_h, py::handle x_h, py::handle w_h, Pair strides,
                                Pair dilation, bool same, Pads pads, bool need_dx, bool need_dw) {
  const char* op = "conv2d_backward";
  ConvArgs a = conv_args(op, x_h, w_h, strides, dilation, same, pads);
  const Conv2dGeom& g = a.g;
  const DevArray &x = a.x, &w = a.w;
  const char code = a.code;
  const int64_t F = g.F;
  DevArray dy = device_array(dy_h, "dy");
  checks::conv_dy(op, dy.view(), g, x.view(), w.view());
  dy = contiguous(dy, "dy");
  DevArray dx, dw, db;
  if (need_dx) dx = empty(x.shape, code);
  if (need_dw) {
    dw = empty(w.shape, code);
    db = empty({F}, code);
  }
  const int64_t chunk = conv_chunk(g);
  const bool pointwise = cuda::conv_is_pointwise(g);
  const int64_t col_elems = pointwise ? 0 : chunk * g.OH * g.OW * g.KH * g.KW * g.C;
  DevArray col = empty({need_dw ? col_elems : 0}, code);
  DevArray dcol = empty({need_dx ? col_elems : 0}, code);
  DevArray partial = empty({need_dw ? cuda::sum_rows_partials(g.N * g.OH * g.OW) : 0, F}, code);
  const int64_t work_elems =
      need_dw ? cuda::gemm_workspace_elems(g.KH * g.KW * g.C, F, chunk * g.OH * g.OW) : 0;
  DevArray work = workspace(work_elems, code);
  cudaStream_t s = current_stream();
  const bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::conv2d_backward<float>(dx.data<float>(), dw.data<float>(), db.data<float>(),
                                             dy.data<const float>(), x.data<const float>(),
                                             w.data<const float>(), col.data<float>(),
                                             dcol.data<float>(), partial.data<float>(),
                                             work.data<float>(), work_elems, g, F, chunk, tf32, s)
              : cuda::conv2d_backward<double>(dx.data<double>(), dw.data<double>(),
                                              db.data<double>(), dy.data<const double>(),
                                              x.data<const double>(), w.data<const double>(),
                                              col.data<double>(), dcol.data<double>(),
                                              partial.data<double>(), work.data<double>(),
                                              work_elems, g, F, chunk, tf32, s);
  }
  check_cuda(err, "conv2d_backward");
  auto or_none = [](bool want, const py::object& o) { return want ? o : py::object(py::none()); };
  return py::make_tuple(or_none(need_dx, dx.obj), or_none(need_dw, dw.obj),
                        or_none(need_dw, db.obj));
}

// ------------------------------------------------------------ depthwise convolution
ConvArgs depthwise_args(const char* op, py::handle x_h, py::handle w_h, const Pair& strides,
                        const Pair& dilation, bool same, const Pads& pads) {
  ConvArgs a;
  a.x = device_array(x_h, "x");
  a.w = device_array(w_h, "w");
  a.g = checks::depthwise_geometry(op, a.x.view(), a.w.view(), strides, dilation, same, pads,
                                   &a.code);
  a.x = contiguous(a.x, "x");
  a.w = contiguous(a.w, "w");
  return a;
}

py::object depthwise_entry(py::handle x_h, py::handle w_h, py::handle b_h, Pair strides,
                           Pair dilation, bool same, Pads pads, py::handle activation) {
  const char* op = "depthwise_conv2d";
  const cuda::Activation act =
      checks::parse_linear_or_relu<cuda::Activation>(activation, "depthwise_conv2d: ");
  ConvArgs a = depthwise_args(op, x_h, w_h, strides, dilation, same, pads);
  const Conv2dGeom& g = a.g;
  DevArray b = device_array_or_none(b_h, "b");
  if (b.present()) {
    checks::depthwise_bias(op, b.view(), g, a.x.view(), a.w.view());
    b = contiguous(b, "b");
  }
  DevArray y = empty({g.N, g.OH, g.OW, g.F}, a.code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = a.code == 'f'
              ? cuda::depthwise_conv2d<float>(y.data<float>(), a.x.data<const float>(),
                                              a.w.data<const float>(), b.data<const float>(), g,
                                              act, s)
              : cuda::depthwise_conv2d<double>(y.data<double>(), a.x.data<const double>(),
                                               a.w.data<const double>(), b.data<const double>(),
                                               g, act, s);
  }
  check_cuda(err, op);
  return y.obj;
}

py::tuple depthwise_backward_entry(py::handle dy_h, py::handle x_h, py::handle w_h, Pair strides,
                                   Pair dilation, bool same, Pads pads, bool need_dx) {
  const char* op = "depthwise_conv2d_backward";
  ConvArgs a = depthwise_args(op, x_h, w_h, strides, dilation, same, pads);
  const Conv2dGeom& g = a.g;
  DevArray dy = device_array(dy_h, "dy");
  checks::conv_dy(op, dy.view(), g, a.x.view(), a.w.view());
  dy = contiguous(dy, "dy");
  DevArray dx, dw = empty(a.w.shape, a.code), db = empty({g.F}, a.code);
  if (need_dx) dx = empty(a.x.shape, a.code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = a.code == 'f'
              ? cuda::depthwise_conv2d_backward<float>(
                    dx.data<float>(), dw.data<float>(), db.data<float>(), dy.data<const float>(),
                    a.x.data<const float>(), a.w.data<const float>(), g, s)
              : cuda::depthwise_conv2d_backward<double>(
                    dx.data<double>(), dw.data<double>(), db.data<double>(),
                    dy.data<const double>(), a.x.data<const double>(), a.w.data<const double>(),
                    g, s);
  }
  check_cuda(err, op);
  return py::make_tuple(need_dx ? dx.obj : py::object(py::none()), dw.obj, db.obj);
}

// ------------------------------------------------------------ pooling
// x: checked by pool_geometry, then made contiguous.
DevArray pool_input(const char* op, py::handle x_h, const Pair& pool, const Pair& strides,
                    bool same, const Pads& pads, Conv2dGeom* g, char* code) {
  DevArray x = device_array(x_h, "x");
  *g = checks::pool_geometry(op, x.view(), pool, strides, same, pads, code);
  return contiguous(x, "x");
}

enum class PoolKind { max, avg };

py::object pool_entry(py::handle x_h, Pair pool, Pair strides, bool same, Pads pads,
                      PoolKind kind) {
  const char* op = kind == PoolKind::max ? "max_pool2d" : "avg_pool2d";
  Conv2dGeom g;
  char code;
  DevArray x = pool_input(op, x_h, pool, strides, same, pads, &g, &code);
  DevArray y = empty({g.N, g.OH, g.OW, g.C}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    if (code == 'f')
      err = kind == PoolKind::max ? cuda::max_pool2d<float>(y.data<float>(), x.data<const float>(), g, s)
                                  : cuda::avg_pool2d<float>(y.data<float>(), x.data<const float>(), g, s);
    else
      err = kind == PoolKind::max
                ? cuda::max_pool2d<double>(y.data<double>(), x.data<const double>(), g, s)
                : cuda::avg_pool2d<double>(y.data<double>(), x.data<const double>(), g, s);
  }
  check_cuda(err, op);
  return y.obj;
}

py::object pool_backward_entry(py::handle dy_h, py::handle x_h, Pair pool, Pair strides,
                               bool same, Pads pads, PoolKind kind, bool relu) {
  const char* op = kind == PoolKind::max ? "max_pool2d_backward" : "avg_pool2d_backward";
  Conv2dGeom g;
  char code;
  DevArray x = pool_input(op, x_h, pool, strides, same, pads, &g, &code);
  DevArray dy = device_array(dy_h, "dy");
  checks::pool_dy(op, dy.view(), g, x.view());
  dy = contiguous(dy, "dy");
  DevArray dx = empty(x.shape, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    if (code == 'f')
      err = kind == PoolKind::max
                ? cuda::max_pool2d_backward<float>(dx.data<float>(), dy.data<const float>(),
                                                   x.data<const float>(), g, relu, s)
                : cuda::avg_pool2d_backward<float>(dx.data<float>(), dy.data<const float>(), g, s);
    else
      err = kind == PoolKind::max
                ? cuda::max_pool2d_backward<double>(dx.data<double>(), dy.data<const double>(),
                                                    x.data<const double>(), g, relu, s)
                : cuda::avg_pool2d_backward<double>(dx.data<double>(), dy.data<const double>(), g,
                                                    s);
  }
  check_cuda(err, op);
  return dx.obj;
}

py::object global_avg_entry(py::handle x_h) {
  DevArray x = device_array(x_h, "x");
  const char code = checks::gap_input("global_avg_pool2d", x.view());
  x = contiguous(x, "x");
  int64_t N = x.shape[0], HW = x.shape[1] * x.shape[2], C = x.shape[3];
  DevArray y = empty({N, C}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::global_avg_pool2d<float>(y.data<float>(), x.data<const float>(), N,
                                                       HW, C, s)
                      : cuda::global_avg_pool2d<double>(y.data<double>(), x.data<const double>(),
                                                        N, HW, C, s);
  }
  check_cuda(err, "global_avg_pool2d");
  return y.obj;
}

py::object global_avg_backward_entry(py::handle dy_h, py::handle x_h) {
  const char* op = "global_avg_pool2d_backward";
  DevArray x = device_array(x_h, "x");  // only its shape is used
  const char code = checks::gap_input(op, x.view());
  DevArray dy = device_array(dy_h, "dy");
  checks::gap_dy(op, dy.view(), x.view());
  dy = contiguous(dy, "dy");
  int64_t N = x.shape[0], HW = x.shape[1] * x.shape[2], C = x.shape[3];
  DevArray dx = empty(x.shape, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::global_avg_pool2d_backward<float>(dx.data<float>(),
                                                                dy.data<const float>(), N, HW, C, s)
                      : cuda::global_avg_pool2d_backward<double>(
                            dx.data<double>(), dy.data<const double>(), N, HW, C, s);
  }
  check_cuda(err, "global_avg_pool2d_backward");
  return dx.obj;
}

}  // namespace

// The same names and arguments as the CPU module's: ops.py normalises strides,
// dilation, pool sizes and padding once for both (_pair, _padding).
void bind_cuda_conv(py::module_& m) {
  m.def("conv2d", &conv2d_entry, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("strides"),
        py::arg("dilation"), py::arg("same"), py::arg("pads"), py::arg("activation"),
        "act(conv(x, w) + b): x (N,H,W,C), w (KH,KW,C,F), b (F,) -> y (N,OH,OW,F); "
        "pads = (top, bottom, left, right)");
  m.def("conv2d_backward", &conv2d_backward_entry, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("need_dx"), py::arg("need_dw") = true,
        "-> (dx or None, dw or None, db or None); need_dw=False: dx only (x's values unread)");
  m.def("depthwise_conv2d", &depthwise_entry, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("activation"));
  m.def("depthwise_conv2d_backward", &depthwise_backward_entry, py::arg("dy"), py::arg("x"),
        py::arg("w"), py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("need_dx"));
  m.def("max_pool2d",
        [](py::handle x, Pair pool, Pair strides, bool same, Pads pads) {
          return pool_entry(x, pool, strides, same, pads, PoolKind::max);
        },
        py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("max_pool2d_backward",
        [](py::handle dy, py::handle x, Pair pool, Pair strides, bool same, Pads pads, bool relu) {
          return pool_backward_entry(dy, x, pool, strides, same, pads, PoolKind::max, relu);
        },
        py::arg("dy"), py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("same"),
        py::arg("pads"), py::arg("relu") = false);
  m.def("avg_pool2d",
        [](py::handle x, Pair pool, Pair strides, bool same, Pads pads) {
          return pool_entry(x, pool, strides, same, pads, PoolKind::avg);
        },
        py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("avg_pool2d_backward",
        [](py::handle dy, py::handle x, Pair pool, Pair strides, bool same, Pads pads) {
          return pool_backward_entry(dy, x, pool, strides, same, pads, PoolKind::avg, false);
        },
        py::arg("dy"), py::arg("x"), py::arg("pool_size"), py::arg("strides"), py::arg("same"),
        py::arg("pads"));
  m.def("global_avg_pool2d", &global_avg_entry, py::arg("x"));
  m.def("global_avg_pool2d_backward", &global_avg_backward_entry, py::arg("dy"), py::arg("x"));
}

}  // namespace fastdl::bind_cuda
