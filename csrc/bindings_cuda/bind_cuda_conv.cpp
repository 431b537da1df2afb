// _cuda conv2d / pooling: argument parsing (padding forms, int-or-pair sizes),
// geometry, scratch from CuPy, then the launchers in cuda/conv2d.h.
#include <algorithm>
#include <cctype>
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "cuda/conv/conv2d.h"
#include "cuda/nn/nn.h"

namespace fastdl::bind_cuda {
namespace {


// col scratch budget per chunk of images (elements); at least one image.
constexpr int64_t kColBudget = int64_t(1) << 26;

struct Pair { int64_t h, w; };

Pair int_pair(py::handle v, const char* name, const char* op) {
  auto bad = [&]() {
    return py::value_error(std::string(op) + ": " + name +
                           " must be a positive int or a pair of positive ints, got " +
                           py::repr(v).cast<std::string>());
  };
  Pair p;
  if (py::isinstance<py::bool_>(v)) throw bad();
  if (py::isinstance<py::int_>(v)) {
    p.h = p.w = v.cast<int64_t>();
  } else if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(v);
    if (s.size() != 2 || !py::isinstance<py::int_>(s[0]) || !py::isinstance<py::int_>(s[1]))
      throw bad();
    p.h = s[0].cast<int64_t>();
    p.w = s[1].cast<int64_t>();
  } else {
    throw bad();
  }
  if (p.h < 1 || p.w < 1) throw bad();
  return p;
}

// Fills g.PT, g.PL, g.OH, g.OW from padding ("valid", "same", int, (ph, pw),
// ((t, b), (l, r))) and the window/stride/dilation already in g.
void resolve_padding(Conv2dGeom& g, py::handle padding, const char* op, bool pool) {
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  auto bad = [&]() {
    return py::value_error(std::string(op) +
                           ": padding must be 'valid', 'same', an int, (ph, pw) or "
                           "((top, bottom), (left, right)) of non-negative ints, got " +
                           py::repr(padding).cast<std::string>());
  };
  auto as_int = [&](py::handle h) {
    if (!py::isinstance<py::int_>(h) || py::isinstance<py::bool_>(h)) throw bad();
    int64_t v = h.cast<int64_t>();
    if (v < 0) throw bad();
    return v;
  };
  if (py::isinstance<py::str>(padding)) {
    std::string s = padding.cast<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (s == "same") {
      same_padding(g.H, g.KH, g.SH, g.DH, &pt, &pb);
      same_padding(g.W, g.KW, g.SW, g.DW, &pl, &pr);
    } else if (s != "valid") {
      throw bad();
    }
  } else if (py::isinstance<py::int_>(padding)) {
    pt = pb = pl = pr = as_int(padding);
  } else if (py::isinstance<py::tuple>(padding) || py::isinstance<py::list>(padding)) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(padding);
    if (s.size() != 2) throw bad();
    auto side = [&](py::handle h, int64_t& lo, int64_t& hi) {
      if (py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) {
        py::sequence t = py::reinterpret_borrow<py::sequence>(h);
        if (t.size() != 2) throw bad();
        lo = as_int(t[0]);
        hi = as_int(t[1]);
      } else {
        lo = hi = as_int(h);
      }
    };
    side(s[0], pt, pb);
    side(s[1], pl, pr);
  } else {
    throw bad();
  }
  if (pool && (pt >= g.KH || pb >= g.KH || pl >= g.KW || pr >= g.KW))
    throw py::value_error(std::string(op) + ": padding ((" + std::to_string(pt) + ", " +
                          std::to_string(pb) + "), (" + std::to_string(pl) + ", " +
                          std::to_string(pr) + ")) must be smaller than pool_size (" +
                          std::to_string(g.KH) + ", " + std::to_string(g.KW) +
                          ") so that every window sees part of x");
  g.PT = pt;
  g.PB = pb;
  g.PL = pl;
  g.PR = pr;
  g.OH = conv_out_size(g.H, g.KH, g.SH, g.DH, pt, pb);
  g.OW = conv_out_size(g.W, g.KW, g.SW, g.DW, pl, pr);
  if (g.OH < 1 || g.OW < 1)
    throw py::value_error(std::string(op) + ": the window (" + std::to_string(g.KH) + ", " +
                          std::to_string(g.KW) + ") with dilation (" + std::to_string(g.DH) +
                          ", " + std::to_string(g.DW) + ") does not fit the padded input (" +
                          std::to_string(g.H + pt + pb) + ", " + std::to_string(g.W + pl + pr) +
                          ")");
}

DevArray image(py::handle h, const char* name) {
  DevArray x = contiguous_array(h, name);
  float_code(x, name);
  require_ndim(x, 4, name);
  return x;
}

void set_input(Conv2dGeom& g, const DevArray& x) {
  g.N = x.shape[0]; g.H = x.shape[1]; g.W = x.shape[2]; g.C = x.shape[3];
}

int64_t conv_chunk(const Conv2dGeom& g) {
  int64_t per_image = checked_mul(checked_mul(g.OH * g.OW, g.KH * g.KW, "conv2d"), g.C, "conv2d");
  int64_t chunk = per_image > 0 ? kColBudget / per_image : g.N;
  chunk = std::max<int64_t>(1, std::min<int64_t>(chunk, std::max<int64_t>(g.N, 1)));
  return chunk;
}

Conv2dGeom conv_geometry(const DevArray& x, const DevArray& w, py::handle strides, py::handle padding,
                     py::handle dilation, const char* op) {
  Conv2dGeom g{};
  set_input(g, x);
  g.KH = w.shape[0];
  g.KW = w.shape[1];
  g.F = w.shape[3];
  if (w.shape[2] != g.C)
    throw py::value_error(std::string(op) + ": w " + shape_str(w) + " expects " +
                          std::to_string(w.shape[2]) + " input channels but x " + shape_str(x) +
                          " has " + std::to_string(g.C));
  Pair s = int_pair(strides, "strides", op), d = int_pair(dilation, "dilation_rate", op);
  g.SH = s.h; g.SW = s.w; g.DH = d.h; g.DW = d.w;
  resolve_padding(g, padding, op, false);
  return g;
}

cuda::Activation parse_activation(py::handle h) {
  if (h.is_none()) return cuda::Activation::identity;
  const std::string s = py::str(h).cast<std::string>();
  if (s == "linear" || s == "identity" || s.empty()) return cuda::Activation::identity;
  if (s == "relu") return cuda::Activation::relu;
  throw py::value_error("conv2d: activation must be 'linear' or 'relu', got '" + s + "'");
}

py::object conv2d_entry(py::handle x_h, py::handle w_h, py::object b_h, py::handle strides,
                        py::handle padding, py::handle dilation, py::handle activation) {
  const cuda::Activation act = parse_activation(activation);
  DevArray x = image(x_h, "x");
  DevArray w = contiguous_array(w_h, "w");
  char code = x.float_code();
  require_same_dtype(w, "w", x, "x");
  require_ndim(w, 4, "w");
  const int64_t F = w.shape[3];
  DevArray b;
  if (!b_h.is_none()) {
    b = contiguous_array(b_h, "b");
    require_same_dtype(b, "b", x, "x");
    require_shape(b, {F}, "b");
  }
  Conv2dGeom g = conv_geometry(x, w, strides, padding, dilation, "conv2d");
  checked_mul(checked_mul(g.N * g.OH, g.OW, "conv2d output"), F, "conv2d output");
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
py::tuple conv2d_backward_entry(py::handle dy_h, py::handle x_h, py::handle w_h,
                                py::handle strides, py::handle padding, py::handle dilation,
                                bool need_dx) {
  DevArray x = image(x_h, "x");
  DevArray w = contiguous_array(w_h, "w");
  DevArray dy = contiguous_array(dy_h, "dy");
  char code = x.float_code();
  require_same_dtype(w, "w", x, "x");
  require_same_dtype(dy, "dy", x, "x");
  require_ndim(w, 4, "w");
  const int64_t F = w.shape[3];
  Conv2dGeom g = conv_geometry(x, w, strides, padding, dilation, "conv2d_backward");
  require_shape(dy, {g.N, g.OH, g.OW, F}, "dy");
  DevArray dx, dw = empty(w.shape, code), db = empty({F}, code);
  if (need_dx) dx = empty(x.shape, code);
  const int64_t chunk = conv_chunk(g);
  const bool pointwise = cuda::conv_is_pointwise(g);
  const int64_t col_elems = pointwise ? 0 : chunk * g.OH * g.OW * g.KH * g.KW * g.C;
  DevArray col = empty({col_elems}, code), dcol = empty({need_dx ? col_elems : 0}, code);
  DevArray partial = empty({cuda::sum_rows_partials(g.N * g.OH * g.OW), F}, code);
  cudaStream_t s = current_stream();
  const bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::conv2d_backward<float>(dx.data<float>(), dw.data<float>(), db.data<float>(),
                                             dy.data<const float>(), x.data<const float>(),
                                             w.data<const float>(), col.data<float>(),
                                             dcol.data<float>(), partial.data<float>(), g, F,
                                             chunk, tf32, s)
              : cuda::conv2d_backward<double>(dx.data<double>(), dw.data<double>(),
                                              db.data<double>(), dy.data<const double>(),
                                              x.data<const double>(), w.data<const double>(),
                                              col.data<double>(), dcol.data<double>(),
                                              partial.data<double>(), g, F, chunk, tf32, s);
  }
  check_cuda(err, "conv2d_backward");
  return py::make_tuple(need_dx ? dx.obj : py::object(py::none()), dw.obj, db.obj);
}

// ------------------------------------------------------------ pooling
Conv2dGeom pool_geometry(const DevArray& x, py::handle pool_size, py::object strides,
                     py::handle padding, const char* op) {
  Conv2dGeom g{};
  set_input(g, x);
  Pair k = int_pair(pool_size, "pool_size", op);
  Pair s = strides.is_none() ? k : int_pair(strides, "strides", op);
  g.KH = k.h; g.KW = k.w; g.SH = s.h; g.SW = s.w; g.DH = g.DW = 1;
  resolve_padding(g, padding, op, true);
  return g;
}

enum class PoolKind { max, avg };

py::object pool_entry(py::handle x_h, py::handle pool_size, py::object strides,
                      py::handle padding, PoolKind kind) {
  const char* op = kind == PoolKind::max ? "max_pool2d" : "avg_pool2d";
  DevArray x = image(x_h, "x");
  char code = x.float_code();
  Conv2dGeom g = pool_geometry(x, pool_size, strides, padding, op);
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

py::object pool_backward_entry(py::handle dy_h, py::handle x_h, py::handle pool_size,
                               py::object strides, py::handle padding, PoolKind kind,
                               bool relu) {
  const char* op = kind == PoolKind::max ? "max_pool2d_backward" : "avg_pool2d_backward";
  DevArray x = image(x_h, "x");
  DevArray dy = contiguous_array(dy_h, "dy");
  char code = x.float_code();
  require_same_dtype(dy, "dy", x, "x");
  Conv2dGeom g = pool_geometry(x, pool_size, strides, padding, op);
  require_shape(dy, {g.N, g.OH, g.OW, g.C}, "dy");
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
  DevArray x = image(x_h, "x");
  char code = x.float_code();
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
  DevArray x = device_array(x_h, "x");  // only its shape is used
  float_code(x, "x");
  require_ndim(x, 4, "x");
  DevArray dy = contiguous_array(dy_h, "dy");
  char code = x.float_code();
  require_same_dtype(dy, "dy", x, "x");
  int64_t N = x.shape[0], HW = x.shape[1] * x.shape[2], C = x.shape[3];
  require_shape(dy, {N, C}, "dy");
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

void bind_cuda_conv(py::module_& m) {
  m.def("conv2d", &conv2d_entry, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
        py::arg("strides") = 1, py::arg("padding") = "valid", py::arg("dilation_rate") = 1,
        py::arg("activation") = "linear",
        "act(conv(x, w) + b): x (N,H,W,C), w (KH,KW,C,F), b (F,) -> y (N,OH,OW,F)");
  m.def("conv2d_backward", &conv2d_backward_entry, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("strides") = 1, py::arg("padding") = "valid", py::arg("dilation_rate") = 1,
        py::arg("need_dx") = true, "-> (dx or None, dw, db)");
  m.def("max_pool2d",
        [](py::handle x, py::handle pool_size, py::object strides, py::handle padding) {
          return pool_entry(x, pool_size, strides, padding, PoolKind::max);
        },
        py::arg("x"), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
        py::arg("padding") = "valid");
  m.def("max_pool2d_backward",
        [](py::handle dy, py::handle x, py::handle pool_size, py::object strides,
           py::handle padding, bool relu) {
          return pool_backward_entry(dy, x, pool_size, strides, padding, PoolKind::max, relu);
        },
        py::arg("dy"), py::arg("x"), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
        py::arg("padding") = "valid", py::arg("relu") = false);
  m.def("avg_pool2d",
        [](py::handle x, py::handle pool_size, py::object strides, py::handle padding) {
          return pool_entry(x, pool_size, strides, padding, PoolKind::avg);
        },
        py::arg("x"), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
        py::arg("padding") = "valid");
  m.def("avg_pool2d_backward",
        [](py::handle dy, py::handle x, py::handle pool_size, py::object strides,
           py::handle padding) {
          return pool_backward_entry(dy, x, pool_size, strides, padding, PoolKind::avg, false);
        },
        py::arg("dy"), py::arg("x"), py::arg("pool_size") = 2, py::arg("strides") = py::none(),
        py::arg("padding") = "valid");
  m.def("global_avg_pool2d", &global_avg_entry, py::arg("x"));
  m.def("global_avg_pool2d_backward", &global_avg_backward_entry, py::arg("dy"), py::arg("x"));
}

}  // namespace fastdl::bind_cuda
