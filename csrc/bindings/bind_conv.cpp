// ops.conv2d / conv2d_backward and the pooling ops: validation, geometry, then
// the kernels. ops.py normalises strides/dilation/pool sizes to pairs and the
// padding to ('same' flag, (top, bottom, left, right)); everything else is
// checked here.
#include <pybind11/stl.h>

#include <array>
#include <sstream>
#include <string>

#include "bindings/common.h"
#include "common/conv_geometry.h"
#include "cpu/pool/avg_pool2d.h"
#include "cpu/conv/conv2d.h"
#include "cpu/pool/global_avg_pool2d.h"
#include "cpu/pool/max_pool2d.h"

namespace fastdl::bind {
namespace {

using Pair = std::array<int64_t, 2>;
using Pads = std::array<int64_t, 4>;  // top, bottom, left, right

std::string pair_str(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

void require_positive(const Pair& p, const char* op, const char* name) {
  if (p[0] < 1 || p[1] < 1)
    throw py::value_error(std::string(op) + ": " + name + " must be positive, got " +
                          pair_str(p[0], p[1]));
}

// a + b for non-negative sizes, ValueError when it overflows int64.
int64_t checked_add(int64_t a, int64_t b, const char* op) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw py::value_error(std::string(op) + ": window, stride or padding too large "
                          "(the geometry overflows 64-bit arithmetic)");
  return r;
}

// Fills padding and output size of g (whose N,H,W,C,KH,KW,SH,SW,DH,DW are set);
// ValueError when the (dilated) window does not fit in the padded input.
void resolve_geometry(Conv2dGeom& g, bool same, const Pads& pads, const char* op,
                      const char* window, const py::array& x, bool pool) {
  // Huge strides, dilations, windows or paddings must not overflow the int64
  // arithmetic below (or in same_padding / conv_out_size): refuse them here.
  checked_add(checked_mul(g.KH - 1, g.DH, op), 1, op);
  checked_add(checked_mul(g.KW - 1, g.DW, op), 1, op);
  checked_add(g.H, checked_add(g.SH, dilated_extent(g.KH, g.DH), op), op);
  checked_add(g.W, checked_add(g.SW, dilated_extent(g.KW, g.DW), op), op);
  if (!same && pads[0] >= 0 && pads[1] >= 0 && pads[2] >= 0 && pads[3] >= 0) {
    checked_add(checked_add(g.H, pads[0], op), pads[1], op);
    checked_add(checked_add(g.W, pads[2], op), pads[3], op);
  }
  if (same) {
    same_padding(g.H, g.KH, g.SH, g.DH, &g.PT, &g.PB);
    same_padding(g.W, g.KW, g.SW, g.DW, &g.PL, &g.PR);
  } else {
    for (int64_t p : pads)
      if (p < 0)
        throw py::value_error(std::string(op) + ": padding must be non-negative, got (" +
                              pair_str(pads[0], pads[1]) + ", " + pair_str(pads[2], pads[3]) +
                              ")");
    g.PT = pads[0]; g.PB = pads[1]; g.PL = pads[2]; g.PR = pads[3];
  }
  const int64_t eh = dilated_extent(g.KH, g.DH), ew = dilated_extent(g.KW, g.DW);
  const int64_t ph = g.H + g.PT + g.PB, pw = g.W + g.PL + g.PR;
  if (eh > ph || ew > pw) {
    std::ostringstream s;
    s << op << ": the " << window << " " << pair_str(g.KH, g.KW);
    if (g.DH != 1 || g.DW != 1) s << " (dilated to " << pair_str(eh, ew) << ")";
    s << " is larger than the padded input " << pair_str(ph, pw) << " (x has shape "
      << shape_str(x) << ", padding ((" << g.PT << ", " << g.PB << "), (" << g.PL << ", "
      << g.PR << ")))";
    throw py::value_error(s.str());
  }
  if (pool && (g.PT >= g.KH || g.PB >= g.KH || g.PL >= g.KW || g.PR >= g.KW)) {
    std::ostringstream s;
    s << op << ": padding ((" << g.PT << ", " << g.PB << "), (" << g.PL << ", " << g.PR
      << ")) must be smaller than pool_size " << pair_str(g.KH, g.KW)
      << " so that every window sees part of x";
    throw py::value_error(s.str());
  }
  g.OH = conv_out_size(g.H, g.KH, g.SH, g.DH, g.PT, g.PB);
  g.OW = conv_out_size(g.W, g.KW, g.SW, g.DW, g.PL, g.PR);
}

cpu::Activation parse_activation(const std::string& s) {
  if (s == "linear" || s == "identity" || s.empty()) return cpu::Activation::identity;
  if (s == "relu") return cpu::Activation::relu;
  throw py::value_error("conv2d: activation must be 'linear' or 'relu', got '" + s + "'");
}

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
  Conv2dGeom g;
  char kind;
};

ConvArgs conv_args(const char* op, py::handle x_h, py::handle w_h, Pair strides, Pair dilation,
                   bool same, Pads pads) {
  ConvArgs a;
  a.x = require_array(x_h, "x");
  a.w = require_array(w_h, "w");
  a.kind = float_kind(a.x, "x");
  require_same_dtype(a.w, "w", a.x, "x");
  if (a.x.ndim() != 4)
    throw py::value_error(std::string(op) + ": x must be 4-D (N, H, W, C), got shape " +
                          shape_str(a.x));
  if (a.w.ndim() != 4)
    throw py::value_error(std::string(op) + ": w must be 4-D (KH, KW, C_in, C_out), got shape " +
                          shape_str(a.w));
  if (a.w.shape(2) != a.x.shape(3))
    throw py::value_error(std::string(op) + ": x has " + std::to_string(a.x.shape(3)) +
                          " channels (shape " + shape_str(a.x) + ") but w expects " +
                          std::to_string(a.w.shape(2)) + " (shape " + shape_str(a.w) + ")");
  if (a.w.shape(0) < 1 || a.w.shape(1) < 1 || a.w.shape(2) < 1)
    throw py::value_error(std::string(op) + ": w must have a non-empty window and channels, got "
                          "shape " + shape_str(a.w));
  require_positive(strides, op, "strides");
  require_positive(dilation, op, "dilation_rate");
  Conv2dGeom& g = a.g;
  g.N = a.x.shape(0); g.H = a.x.shape(1); g.W = a.x.shape(2); g.C = a.x.shape(3);
  g.KH = a.w.shape(0); g.KW = a.w.shape(1); g.F = a.w.shape(3);
  g.SH = strides[0]; g.SW = strides[1]; g.DH = dilation[0]; g.DW = dilation[1];
  resolve_geometry(g, same, pads, op, "kernel", a.x, false);
  checked_numel({g.N, g.OH, g.OW, g.F}, op);
  checked_numel({g.N, g.H, g.W, g.C}, op);
  checked_numel({g.KH, g.KW, g.C, g.F}, op);
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
    require_same_dtype(b, "b", a.x, "x");
    if (b.ndim() != 1 || b.shape(0) != g.F)
      throw py::value_error("conv2d: b must have shape (" + std::to_string(g.F) +
                            ",) to match w " + shape_str(a.w) + ", got " + shape_str(b));
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
                       bool same, Pads pads, const std::string& activation,
                       const std::string& algorithm) {
  ConvArgs a = conv_args("conv2d", x, w, strides, dilation, same, pads);
  cpu::Activation act = parse_activation(activation);
  cpu::ConvAlgorithm algo = parse_algorithm("conv2d", algorithm);
  if (a.kind == 'f') return conv2d_typed<float>(a, b, act, algo);
  return conv2d_typed<double>(a, b, act, algo);
}

template <typename T>
py::tuple conv2d_backward_typed(const ConvArgs& a, const py::array& dy_in, bool need_dx,
                                cpu::ConvAlgorithm algo) {
  const Conv2dGeom& g = a.g;
  auto dy = contiguous<T>(dy_in);
  auto x = contiguous<T>(a.x);
  auto w = contiguous<T>(a.w);
  py::array_t<T> dx;
  if (need_dx) dx = empty<T>({g.N, g.H, g.W, g.C});
  auto dw = empty<T>({g.KH, g.KW, g.C, g.F});
  auto db = empty<T>({g.F});
  const T *pdy = dy.data(), *px = x.data(), *pw = w.data();
  T* pdx = need_dx ? dx.mutable_data() : nullptr;
  T *pdw = dw.mutable_data(), *pdb = db.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::conv2d_backward<T>(pdx, pdw, pdb, pdy, px, pw, g, ctx, algo);
  }
  return py::make_tuple(need_dx ? py::object(dx) : py::object(py::none()), dw, db);
}

py::tuple conv2d_backward_entry(py::handle dy_h, py::handle x, py::handle w, Pair strides,
                                Pair dilation, bool same, Pads pads, bool need_dx,
                                const std::string& algorithm) {
  const char* op = "conv2d_backward";
  ConvArgs a = conv_args(op, x, w, strides, dilation, same, pads);
  cpu::ConvAlgorithm algo = parse_algorithm(op, algorithm);
  py::array dy = require_array(dy_h, "dy");
  require_same_dtype(dy, "dy", a.x, "x");
  const Conv2dGeom& g = a.g;
  bool ok = dy.ndim() == 4 && dy.shape(0) == g.N && dy.shape(1) == g.OH && dy.shape(2) == g.OW &&
            dy.shape(3) == g.F;
  if (!ok)
    throw py::value_error(std::string(op) + ": dy must have the output shape (" +
                          std::to_string(g.N) + ", " + std::to_string(g.OH) + ", " +
                          std::to_string(g.OW) + ", " + std::to_string(g.F) + ") for x " +
                          shape_str(a.x) + " and w " + shape_str(a.w) + ", got " + shape_str(dy));
  if (a.kind == 'f') return conv2d_backward_typed<float>(a, dy, need_dx, algo);
  return conv2d_backward_typed<double>(a, dy, need_dx, algo);
}

// ------------------------------------------------------------ pooling

struct PoolArgs {
  py::array x;
  Conv2dGeom g;
  char kind;
};

PoolArgs pool_args(const char* op, py::handle x_h, Pair pool, Pair strides, bool same,
                   Pads pads) {
  PoolArgs a;
  a.x = require_array(x_h, "x");
  a.kind = float_kind(a.x, "x");
  if (a.x.ndim() != 4)
    throw py::value_error(std::string(op) + ": x must be 4-D (N, H, W, C), got shape " +
                          shape_str(a.x));
  require_positive(pool, op, "pool_size");
  require_positive(strides, op, "strides");
  Conv2dGeom& g = a.g;
  g.N = a.x.shape(0); g.H = a.x.shape(1); g.W = a.x.shape(2); g.C = a.x.shape(3);
  g.KH = pool[0]; g.KW = pool[1]; g.F = g.C;
  g.SH = strides[0]; g.SW = strides[1]; g.DH = 1; g.DW = 1;
  resolve_geometry(g, same, pads, op, "pool window", a.x, true);
  checked_numel({g.N, g.OH, g.OW, g.C}, op);
  checked_numel({g.N, g.H, g.W, g.C}, op);
  return a;
}

py::array check_pool_dy(const char* op, py::handle dy_h, const PoolArgs& a) {
  py::array dy = require_array(dy_h, "dy");
  require_same_dtype(dy, "dy", a.x, "x");
  const Conv2dGeom& g = a.g;
  bool ok = dy.ndim() == 4 && dy.shape(0) == g.N && dy.shape(1) == g.OH && dy.shape(2) == g.OW &&
            dy.shape(3) == g.C;
  if (!ok)
    throw py::value_error(std::string(op) + ": dy must have the output shape (" +
                          std::to_string(g.N) + ", " + std::to_string(g.OH) + ", " +
                          std::to_string(g.OW) + ", " + std::to_string(g.C) + ") for x " +
                          shape_str(a.x) + ", got " + shape_str(dy));
  return dy;
}

enum class PoolKind { max, avg };

template <typename T>
py::array pool_forward_typed(const PoolArgs& a, PoolKind kind) {
  const Conv2dGeom& g = a.g;
  auto x = contiguous<T>(a.x);
  auto y = empty<T>({g.N, g.OH, g.OW, g.C});
  const T* px = x.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    if (kind == PoolKind::max)
      cpu::max_pool2d_forward<T>(py_, px, g, ctx);
    else
      cpu::avg_pool2d_forward<T>(py_, px, g, ctx);
  }
  return y;
}

template <typename T>
py::array pool_backward_typed(const PoolArgs& a, const py::array& dy_in, PoolKind kind,
                              bool relu) {
  const Conv2dGeom& g = a.g;
  auto x = contiguous<T>(a.x);
  auto dy = contiguous<T>(dy_in);
  auto dx = empty<T>({g.N, g.H, g.W, g.C});
  const T *px = x.data(), *pdy = dy.data();
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    if (kind == PoolKind::max)
      cpu::max_pool2d_backward<T>(pdx, pdy, px, g, relu, ctx);
    else
      cpu::avg_pool2d_backward<T>(pdx, pdy, g, ctx);
  }
  return dx;
}

template <PoolKind K>
py::array pool_forward_entry(py::handle x, Pair pool, Pair strides, bool same, Pads pads) {
  const char* op = K == PoolKind::max ? "max_pool2d" : "avg_pool2d";
  PoolArgs a = pool_args(op, x, pool, strides, same, pads);
  if (a.kind == 'f') return pool_forward_typed<float>(a, K);
  return pool_forward_typed<double>(a, K);
}

template <PoolKind K>
py::array pool_backward_entry(py::handle dy, py::handle x, Pair pool, Pair strides, bool same,
                              Pads pads, bool relu) {
  const char* op = K == PoolKind::max ? "max_pool2d_backward" : "avg_pool2d_backward";
  PoolArgs a = pool_args(op, x, pool, strides, same, pads);
  py::array d = check_pool_dy(op, dy, a);
  if (a.kind == 'f') return pool_backward_typed<float>(a, d, K, relu);
  return pool_backward_typed<double>(a, d, K, relu);
}

// avg_pool2d_backward has no relu option.
py::array avg_pool_backward_entry(py::handle dy, py::handle x, Pair pool, Pair strides, bool same,
                                  Pads pads) {
  return pool_backward_entry<PoolKind::avg>(dy, x, pool, strides, same, pads, false);
}

// ------------------------------------------------------------ global average pooling

py::array gap_check_x(const char* op, py::handle x_h) {
  py::array x = require_array(x_h, "x");
  float_kind(x, "x");
  if (x.ndim() != 4)
    throw py::value_error(std::string(op) + ": x must be 4-D (N, H, W, C), got shape " +
                          shape_str(x));
  if (x.shape(1) < 1 || x.shape(2) < 1)
    throw py::value_error(std::string(op) + ": x must have at least one pixel, got shape " +
                          shape_str(x));
  checked_numel(shape_vec(x), op);
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
  require_same_dtype(dy, "dy", x, "x");
  if (dy.ndim() != 2 || dy.shape(0) != x.shape(0) || dy.shape(1) != x.shape(3))
    throw py::value_error(std::string(op) + ": dy must have shape (" +
                          std::to_string(x.shape(0)) + ", " + std::to_string(x.shape(3)) +
                          ") for x " + shape_str(x) + ", got " + shape_str(dy));
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
        py::arg("need_dx"), py::arg("algorithm") = "auto", "(dx or None, dw, db) of conv2d");
  m.def("max_pool2d", &pool_forward_entry<PoolKind::max>, py::arg("x"), py::arg("pool_size"),
        py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("max_pool2d_backward", &pool_backward_entry<PoolKind::max>, py::arg("dy"), py::arg("x"),
        py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"),
        py::arg("relu") = false,
        "dx of max pooling; relu=True: x is a ReLU's output, dx is for the ReLU's input");
  m.def("avg_pool2d", &pool_forward_entry<PoolKind::avg>, py::arg("x"), py::arg("pool_size"),
        py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("avg_pool2d_backward", &avg_pool_backward_entry, py::arg("dy"), py::arg("x"),
        py::arg("pool_size"), py::arg("strides"), py::arg("same"), py::arg("pads"));
  m.def("global_avg_pool2d", &gap_forward_entry, py::arg("x"));
  m.def("global_avg_pool2d_backward", &gap_backward_entry, py::arg("dy"), py::arg("x"));
}

}  // namespace fastdl::bind
