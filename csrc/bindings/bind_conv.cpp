// ops.conv2d / conv2d_backward and the pooling ops: the shared checks and
// geometry (bindings_common/checks.h), then the kernels. ops.py normalises
// strides/dilation/pool sizes to pairs and the padding to ('same' flag,
// (top, bottom, left, right)) for both modules.
#include <pybind11/stl.h>

#include <array>
#include <sstream>
#include <string>

#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "common/conv_geometry.h"
#include "cpu/pool/avg_pool2d.h"
#include "cpu/conv/conv2d.h"
#include "cpu/conv/conv2d_max_pool2d.h"
#include "cpu/conv/depthwise_conv2d.h"
#include "cpu/pool/global_avg_pool2d.h"
#include "cpu/pool/max_pool2d.h"

namespace fastdl::bind {
namespace {

using checks::Pair;
using checks::Pads;

cpu::ConvAlgorithm parse_algorithm(const char* op, const std::string& s) {
  if (s == "auto") return cpu::ConvAlgorithm::automatic;
  if (s == "direct") return cpu::ConvAlgorithm::direct;
  if (s == "im2col") return cpu::ConvAlgorithm::im2col;
  throw py::value_error(std::string(op) + ": unknown algorithm '" + s +
                        "' (expected 'auto', 'direct' or 'im2col')");
}

// ------------------------------------------------------------ convolution

struct ConvArgs {
  py::array x, w;
  View vx, vw;
  Conv2dGeom g;
  char kind;
};

ConvArgs conv_args(const char* op, py::handle x_h, py::handle w_h, Pair strides, Pair dilation,
                   bool same, Pads pads) {
  ConvArgs a;
  a.x = require_array(x_h, "x");
  a.w = require_array(w_h, "w");
  a.vx = view_of(a.x);
  a.vw = view_of(a.w);
  a.g = checks::conv_geometry(op, a.vx, a.vw, strides, dilation, same, pads, &a.kind);
  return a;
}

template <typename T>
py::array conv2d_typed(const ConvArgs& a, py::object b_obj, cpu::Activation act,
                       cpu::ConvAlgorithm algo) {
  const Conv2dGeom& g = a.g;
  py::array b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = require_array(b_obj, "b");
    checks::conv_bias(view_of(b), g, a.vx, a.vw);
    b = contiguous<T>(b);
  }
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  auto y = empty<T>({g.N, g.OH, g.OW, g.F});
  const T* px = x.data();
  const T* pw = w.data();
  const T* pb = has_b ? static_cast<const T*>(b.data()) : nullptr;
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::conv2d_forward<T>(py_, px, pw, pb, g, act, ctx, algo);
  }
  return y;
}

py::array conv2d_entry(py::handle x, py::handle w, py::object b, Pair strides, Pair dilation,
                       bool same, Pads pads, py::handle activation,
                       const std::string& algorithm) {
  cpu::Activation act = checks::parse_linear_or_relu<cpu::Activation>(activation, "conv2d: ");
  ConvArgs a = conv_args("conv2d", x, w, strides, dilation, same, pads);
  cpu::ConvAlgorithm algo = parse_algorithm("conv2d", algorithm);
  if (a.kind == 'f') return conv2d_typed<float>(a, b, act, algo);
  return conv2d_typed<double>(a, b, act, algo);
}

template <typename T>
py::tuple conv2d_relu_max_pool2d_typed(const ConvArgs& a, const py::object& b_in,
                                       const Conv2dGeom& pg) {
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  const bool has_b = !b_in.is_none();
  py::array_t<T, py::array::c_style> b;
  if (has_b) b = contiguous<T>(py::array(b_in));
  auto y = empty<T>({pg.N, pg.OH, pg.OW, pg.C});
  auto am = empty<uint8_t>({pg.N, pg.OH, pg.OW, pg.C});
  const T *px = x.data(), *pw = w.data(), *pb = has_b ? b.data() : nullptr;
  T* py_ = y.mutable_data();
  uint8_t* pam = am.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::conv2d_relu_max_pool2d_forward<T>(py_, pam, px, pw, pb, a.g, pg, ctx);
  }
  return py::make_tuple(y, am);
}

py::tuple conv2d_relu_max_pool2d_entry(py::handle x, py::handle w, py::object b_obj,
                                       Pair strides, Pair dilation, bool same, Pads pads,
                                       Pair pool) {
  const char* op = "conv2d_relu_max_pool2d";
  ConvArgs a = conv_args(op, x, w, strides, dilation, same, pads);
  py::object b = py::none();
  if (!b_obj.is_none()) {
    b = require_array(b_obj, "b");
    checks::conv_bias(view_of(py::array(b)), a.g, a.vx, a.vw);
  }
  const Conv2dGeom pg = checks::conv_pool_geometry(op, a.g, pool, cpu::kMaxPoolArgmaxTaps);
  if (a.kind == 'f') return conv2d_relu_max_pool2d_typed<float>(a, b, pg);
  return conv2d_relu_max_pool2d_typed<double>(a, b, pg);
}

template <typename T>
py::tuple conv2d_relu_max_pool2d_backward_typed(const ConvArgs& a, const py::array& dy_in,
                                                const py::array& argmax_in, const Conv2dGeom& pg,
                                                bool need_dx, bool need_db) {
  const Conv2dGeom& g = a.g;
  auto dy = contiguous<T>(dy_in);
  auto am = contiguous<uint8_t>(argmax_in);
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  py::array_t<T> dx, db;
  if (need_dx) dx = empty<T>({g.N, g.H, g.W, g.C});
  auto dw = empty<T>({g.KH, g.KW, g.C, g.F});
  if (need_db) db = empty<T>({g.F});
  const T *pdy = dy.data(), *px = x.data(), *pw = w.data();
  const uint8_t* pam = am.data();
  T* pdx = need_dx ? dx.mutable_data() : nullptr;
  T* pdw = dw.mutable_data();
  T* pdb = need_db ? db.mutable_data() : nullptr;
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::conv2d_relu_max_pool2d_backward<T>(pdx, pdw, pdb, pdy, pam, px, pw, g, pg, ctx);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::object(py::none()), dw,
                        need_db ? py::object(db) : py::object(py::none()));
}

py::tuple conv2d_relu_max_pool2d_backward_entry(py::handle dy_h, py::handle argmax_h,
                                                py::handle x, py::handle w, Pair strides,
                                                Pair dilation, bool same, Pads pads, Pair pool,
                                                bool need_dx, bool need_db) {
  const char* op = "conv2d_relu_max_pool2d_backward";
  ConvArgs a = conv_args(op, x, w, strides, dilation, same, pads);
  const Conv2dGeom pg = checks::conv_pool_geometry(op, a.g, pool, cpu::kMaxPoolArgmaxTaps);
  py::array dy = require_array(dy_h, "dy");
  py::array am = require_array(argmax_h, "argmax");
  checks::conv_pool_grads(op, view_of(dy), view_of(am), pg, a.vx, a.vw);
  if (a.kind == 'f')
    return conv2d_relu_max_pool2d_backward_typed<float>(a, dy, am, pg, need_dx, need_db);
  return conv2d_relu_max_pool2d_backward_typed<double>(a, dy, am, pg, need_dx, need_db);
}

template <typename T>
py::tuple conv2d_backward_typed(const ConvArgs& a, const py::array& dy_in, bool need_dx,
                                bool need_dw, cpu::ConvAlgorithm algo) {
  const Conv2dGeom& g = a.g;
  auto dy = contiguous<T>(dy_in);
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  py::array_t<T> dx, dw, db;
  if (need_dx) dx = empty<T>({g.N, g.H, g.W, g.C});
  if (need_dw) {
    dw = empty<T>({g.KH, g.KW, g.C, g.F});
    db = empty<T>({g.F});
  }
  const T *pdy = dy.data(), *px = x.data(), *pw = w.data();
  T* pdx = need_dx ? dx.mutable_data() : nullptr;
  T* pdw = need_dw ? dw.mutable_data() : nullptr;
  T* pdb = need_dw ? db.mutable_data() : nullptr;
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::conv2d_backward<T>(pdx, pdw, pdb, pdy, px, pw, g, ctx, algo);
  }
  auto or_none = [](bool want, const py::object& o) { return want ? o : py::object(py::none()); };
  return py::make_tuple(or_none(need_dx, dx), or_none(need_dw, dw), or_none(need_dw, db));
}

py::tuple conv2d_backward_entry(py::handle dy_h, py::handle x, py::handle w, Pair strides,
                                Pair dilation, bool same, Pads pads, bool need_dx,
                                const std::string& algorithm, bool need_dw) {
  const char* op = "conv2d_backward";
  ConvArgs a = conv_args(op, x, w, strides, dilation, same, pads);
  cpu::ConvAlgorithm algo = parse_algorithm(op, algorithm);
  py::array dy = require_array(dy_h, "dy");
  checks::conv_dy(op, view_of(dy), a.g, a.vx, a.vw);
  if (a.kind == 'f') return conv2d_backward_typed<float>(a, dy, need_dx, need_dw, algo);
  return conv2d_backward_typed<double>(a, dy, need_dx, need_dw, algo);
}

// ------------------------------------------------------------ depthwise convolution

ConvArgs depthwise_args(const char* op, py::handle x_h, py::handle w_h, Pair strides,
                        Pair dilation, bool same, Pads pads) {
  ConvArgs a;
  a.x = require_array(x_h, "x");
  a.w = require_array(w_h, "w");
  a.vx = view_of(a.x);
  a.vw = view_of(a.w);
  a.g = checks::depthwise_geometry(op, a.vx, a.vw, strides, dilation, same, pads, &a.kind);
  return a;
}

template <typename T>
py::array depthwise_typed(const ConvArgs& a, py::object b_obj, cpu::Activation act) {
  const Conv2dGeom& g = a.g;
  py::array b;
  const bool has_b = !b_obj.is_none();
  if (has_b) {
    b = require_array(b_obj, "b");
    checks::depthwise_bias("depthwise_conv2d", view_of(b), g, a.vx, a.vw);
    b = contiguous<T>(b);
  }
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  auto y = empty<T>({g.N, g.OH, g.OW, g.F});
  const T *px = x.data(), *pw = w.data();
  const T* pb = has_b ? static_cast<const T*>(b.data()) : nullptr;
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::depthwise_conv2d_forward<T>(py_, px, pw, pb, g, act, ctx);
  }
  return y;
}

py::array depthwise_entry(py::handle x, py::handle w, py::object b, Pair strides, Pair dilation,
                          bool same, Pads pads, py::handle activation) {
  cpu::Activation act =
      checks::parse_linear_or_relu<cpu::Activation>(activation, "depthwise_conv2d: ");
  ConvArgs a = depthwise_args("depthwise_conv2d", x, w, strides, dilation, same, pads);
  if (a.kind == 'f') return depthwise_typed<float>(a, b, act);
  return depthwise_typed<double>(a, b, act);
}

template <typename T>
py::tuple depthwise_backward_typed(const ConvArgs& a, const py::array& dy_in, bool need_dx) {
  const Conv2dGeom& g = a.g;
  auto dy = contiguous<T>(dy_in);
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  py::array_t<T> dx;
  if (need_dx) dx = empty<T>({g.N, g.H, g.W, g.C});
  auto dw = empty<T>({g.KH, g.KW, g.C, g.F / g.C});
  auto db = empty<T>({g.F});
  const T *pdy = dy.data(), *px = x.data(), *pw = w.data();
  T* pdx = need_dx ? dx.mutable_data() : nullptr;
  T *pdw = dw.mutable_data(), *pdb = db.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::depthwise_conv2d_backward<T>(pdx, pdw, pdb, pdy, px, pw, g, ctx);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::object(py::none()), dw, db);
}

py::tuple depthwise_backward_entry(py::handle dy_h, py::handle x, py::handle w, Pair strides,
                                   Pair dilation, bool same, Pads pads, bool need_dx) {
  const char* op = "depthwise_conv2d_backward";
  ConvArgs a = depthwise_args(op, x, w, strides, dilation, same, pads);
  py::array dy = require_array(dy_h, "dy");
  checks::conv_dy(op, view_of(dy), a.g, a.vx, a.vw);
  if (a.kind == 'f') return depthwise_backward_typed<float>(a, dy, need_dx);
  return depthwise_backward_typed<double>(a, dy, need_dx);
}

// ------------------------------------------------------------ pooling

struct PoolArgs {
  py::array x;
  View vx;
  Conv2dGeom g;
  char kind;
};

PoolArgs pool_args(const char* op, py::handle x_h, Pair pool, Pair strides, bool same,
                   Pads pads) {
  PoolArgs a;
  a.x = require_array(x_h, "x");
  a.vx = view_of(a.x);
  a.g = checks::pool_geometry(op, a.vx, pool, strides, same, pads, &a.kind);
  return a;
}

py::array check_pool_dy(const char* op, py::handle dy_h, const PoolArgs& a) {
  py::array dy = require_array(dy_h, "dy");
  checks::pool_dy(op, view_of(dy), a.g, a.vx);
  return dy;
}

enum class PoolKind { max, avg };

// argmax: also the max pooling's argmax codes (returned as (y, argmax)).
template <typename T>
py::object pool_forward_typed(const PoolArgs& a, PoolKind kind, bool argmax) {
  const Conv2dGeom& g = a.g;
  auto x = contiguous<T>(a.x);
  auto y = empty<T>({g.N, g.OH, g.OW, g.C});
  py::array_t<uint8_t> am;
  if (argmax) am = empty<uint8_t>({g.N, g.OH, g.OW, g.C});
  const T* px = x.data();
  T* py_ = y.mutable_data();
  uint8_t* pam = argmax ? am.mutable_data() : nullptr;
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    if (kind == PoolKind::max)
      cpu::max_pool2d_forward<T>(py_, pam, px, g, ctx);
    else
      cpu::avg_pool2d_forward<T>(py_, px, g, ctx);
  }
  if (argmax) return py::make_tuple(y, am);
  return std::move(y);
}

// argmax (max pooling): the forward pass's codes, or None (then from x).
template <typename T>
py::array pool_backward_typed(const PoolArgs& a, const py::array& dy_in, PoolKind kind,
                              bool relu, const py::object& argmax) {
  const Conv2dGeom& g = a.g;
  const bool from_argmax = !argmax.is_none();
  py::array_t<T, py::array::c_style> x;
  py::array_t<uint8_t, py::array::c_style> am;
  if (from_argmax) am = contiguous<uint8_t>(py::array(argmax));  // x's values are not read
  else x = contiguous<T>(a.x);
  auto dy = contiguous<T>(dy_in);
  auto dx = empty<T>({g.N, g.H, g.W, g.C});
  const T *px = from_argmax ? nullptr : x.data(), *pdy = dy.data();
  const uint8_t* pam = from_argmax ? am.data() : nullptr;
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    if (kind == PoolKind::avg)
      cpu::avg_pool2d_backward<T>(pdx, pdy, g, ctx);
    else if (from_argmax)
      cpu::max_pool2d_backward_argmax<T>(pdx, pdy, pam, g, relu, ctx);
    else
      cpu::max_pool2d_backward<T>(pdx, pdy, px, g, relu, ctx);
  }
  return dx;
}

py::object max_pool_forward_entry(py::handle x, Pair pool, Pair strides, bool same, Pads pads,
                                  bool return_argmax) {
  const char* op = "max_pool2d";
  PoolArgs a = pool_args(op, x, pool, strides, same, pads);
  if (return_argmax) checks::pool_argmax_window(op, a.g, cpu::kMaxPoolArgmaxTaps);
  if (a.kind == 'f') return pool_forward_typed<float>(a, PoolKind::max, return_argmax);
  return pool_forward_typed<double>(a, PoolKind::max, return_argmax);
}

py::object avg_pool_forward_entry(py::handle x, Pair pool, Pair strides, bool same, Pads pads) {
  PoolArgs a = pool_args("avg_pool2d", x, pool, strides, same, pads);
  if (a.kind == 'f') return pool_forward_typed<float>(a, PoolKind::avg, false);
  return pool_forward_typed<double>(a, PoolKind::avg, false);
}

template <PoolKind K>
py::array pool_backward_entry(py::handle dy, py::handle x, Pair pool, Pair strides, bool same,
                              Pads pads, bool relu, py::handle argmax_h) {
  const char* op = K == PoolKind::max ? "max_pool2d_backward" : "avg_pool2d_backward";
  PoolArgs a = pool_args(op, x, pool, strides, same, pads);
  py::array d = check_pool_dy(op, dy, a);
  py::object am = py::none();
  if (!argmax_h.is_none()) {
    am = require_array(argmax_h, "argmax");
    checks::pool_argmax(op, view_of(py::array(am)), a.g, a.vx, cpu::kMaxPoolArgmaxTaps);
  }
  if (a.kind == 'f') return pool_backward_typed<float>(a, d, K, relu, am);
  return pool_backward_typed<double>(a, d, K, relu, am);
}

// avg_pool2d_backward has no relu option.
py::array avg_pool_backward_entry(py::handle dy, py::handle x, Pair pool, Pair strides, bool same,
                                  Pads pads) {
  return pool_backward_entry<PoolKind::avg>(dy, x, pool, strides, same, pads, false,
                                           py::none());
}

// ------------------------------------------------------------ global average pooling

py::array gap_check_x(const char* op, py::handle x_h) {
  py::array x = require_array(x_h, "x");
  checks::gap_input(op, view_of(x));
  return x;
}

template <typename T>
py::array gap_forward_typed(const py::array& x_in) {
  auto x = contiguous<T>(x_in);
  const int64_t N = x.shape(0), HW = x.shape(1) * x.shape(2), C = x.shape(3);
  auto y = empty<T>({N, C});
  const T* px = x.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::global_avg_pool2d_forward<T>(py_, px, N, HW, C, ctx);
  }
  return y;
}

template <typename T>
py::array gap_backward_typed(const py::array& dy_in, const py::array& x) {
  auto dy = contiguous<T>(dy_in);
  const int64_t N = x.shape(0), HW = x.shape(1) * x.shape(2), C = x.shape(3);
  auto dx = empty<T>({N, x.shape(1), x.shape(2), C});
  const T* pdy = dy.data();
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::global_avg_pool2d_backward<T>(pdx, pdy, N, HW, C, ctx);
  }
  return dx;
}

py::array gap_forward_entry(py::handle x_h) {
  py::array x = gap_check_x("global_avg_pool2d", x_h);
  if (x.dtype().char_() == 'f') return gap_forward_typed<float>(x);
  return gap_forward_typed<double>(x);
}

py::array gap_backward_entry(py::handle dy_h, py::handle x_h) {
  const char* op = "global_avg_pool2d_backward";
  py::array x = gap_check_x(op, x_h);
  py::array dy = require_array(dy_h, "dy");
  checks::gap_dy(op, view_of(dy), view_of(x));
  if (x.dtype().char_() == 'f') return gap_backward_typed<float>(dy, x);
  return gap_backward_typed<double>(dy, x);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", &conv2d_entry, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("strides"),
        py::arg("dilation"), py::arg("same"), py::arg("pads"), py::arg("activation"),
        py::arg("algorithm") = "auto",
        "act(conv(x, w) + b), channels-last; pads = (top, bottom, left, right)");
  m.def("conv2d_backward", &conv2d_backward_entry, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("need_dx"), py::arg("algorithm") = "auto", py::arg("need_dw") = true,
        "(dx or None, dw or None, db or None) of conv2d; need_dw=False: dx only (x's values "
        "are not read)");
  m.def("conv2d_relu_max_pool2d", &conv2d_relu_max_pool2d_entry, py::arg("x"), py::arg("w"),
        py::arg("b"), py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("pool_size"),
        "(y, argmax) of max_pool2d(relu(conv2d(x, w) + b), pool_size, return_argmax=True) "
        "in one pass; pool strides = pool_size, 'valid'");
  m.def("conv2d_relu_max_pool2d_backward", &conv2d_relu_max_pool2d_backward_entry,
        py::arg("dy"), py::arg("argmax"), py::arg("x"), py::arg("w"), py::arg("strides"),
        py::arg("dilation"), py::arg("same"), py::arg("pads"), py::arg("pool_size"),
        py::arg("need_dx"), py::arg("need_db"),
        "(dx or None, dw, db or None) of conv2d_relu_max_pool2d for the pooled output's dy "
        "and the forward pass's argmax codes");
  m.def("depthwise_conv2d", &depthwise_entry, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("activation"),
        "act(depthwise(x, w) + b), channels-last; w (KH,KW,C,M) -> y (N,OH,OW,C*M)");
  m.def("depthwise_conv2d_backward", &depthwise_backward_entry, py::arg("dy"), py::arg("x"),
        py::arg("w"), py::arg("strides"), py::arg("dilation"), py::arg("same"), py::arg("pads"),
        py::arg("need_dx"), "(dx or None, dw, db) of depthwise_conv2d");
  m.def("max_pool2d", &max_pool_forward_entry, py::arg("x"), py::arg("pool_size"),
        py::arg("strides"), py::arg("same"), py::arg("pads"), py::arg("return_argmax") = false,
        "y, or (y, argmax) with return_argmax: uint8 codes of each window's first maximum");
  m.def("max_pool2d_backward", &pool_backward_entry<PoolKind::max>, py::arg("dy"), py::arg("x"),
        py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"),
        py::arg("relu") = false, py::arg("argmax") = py::none(),
        "dx of max pooling; relu=True: x is a ReLU's output, dx is for the ReLU's input; "
        "argmax: the forward pass's codes (then x's values are not read)");
  m.def("avg_pool2d", &avg_pool_forward_entry, py::arg("x"), py::arg("pool_size"),
        py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("avg_pool2d_backward", &avg_pool_backward_entry, py::arg("dy"), py::arg("x"),
        py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("global_avg_pool2d", &gap_forward_entry, py::arg("x"));
  m.def("global_avg_pool2d_backward", &gap_backward_entry, py::arg("dy"), py::arg("x"));
}

}  // namespace fastdl::bind
