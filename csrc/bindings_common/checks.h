// Argument checks shared by both compiled modules: fastdl._C (NumPy arrays,
// csrc/bindings) and fastdl._cuda (CuPy arrays, csrc/bindings_cuda).
//
// Each module turns its Python arguments into a View (shape, byte strides,
// dtype, data pointer) its own way, then calls the checks here, so both raise
// the same TypeError / ValueError with the same words for the same mistake.
// Everything here is header-only and inline: the checks run on every call, so
// they must cost no more than the hand-written ones they replace (a few compares
// on the success path; messages are only built on the error path).
//
// Python normalises strides / pool sizes / dilation to pairs of ints and the
// padding to ('same' flag, (top, bottom, left, right)) before either module is
// called (python/fastdl/ops.py: _pair, _padding); the geometry checks start
// from there.
#pragma once
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "common/conv_geometry.h"

namespace fastdl::checks {
namespace py = pybind11;

// ------------------------------------------------------------ the view
// One array argument as both modules see it. `obj` keeps nothing alive: the
// caller holds the array while the View is used. A View without obj is an
// absent optional argument (None).
struct View {
  py::handle obj;
  const void* data = nullptr;
  const int64_t* shape = nullptr;
  const int64_t* strides = nullptr;  // in bytes
  int ndim = 0;
  char kind = 0;  // NumPy dtype kind: 'f', 'i', 'u', 'b', 'c', 'O', ...
  int itemsize = 0;
  bool writeable = true;

  bool present() const { return obj.ptr() != nullptr; }
  int64_t dim(int i) const { return shape[i]; }
  // 'f' for float32, 'd' for float64, 0 for anything else.
  char float_code() const {
    return kind == 'f' ? (itemsize == 4 ? 'f' : itemsize == 8 ? 'd' : 0) : 0;
  }
  bool has_shape(std::initializer_list<int64_t> s) const {
    if (ndim != int(s.size())) return false;
    int i = 0;
    for (int64_t d : s)
      if (shape[i++] != d) return false;
    return true;
  }
  bool c_contiguous() const {
    for (int i = 0; i < ndim; ++i)
      if (shape[i] == 0) return true;  // no elements (NumPy may give them any strides)
    int64_t expect = itemsize;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expect) return false;
      expect *= shape[i];
    }
    return true;
  }
};

using Shape = std::vector<int64_t>;
inline Shape shape_of(const View& a) { return Shape(a.shape, a.shape + a.ndim); }

// ------------------------------------------------------------ message pieces
inline std::string shape_str(const int64_t* s, size_t n) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < n; ++i) o << (i ? ", " : "") << s[i];
  if (n == 1) o << ",";
  o << ")";
  return o.str();
}
inline std::string shape_str(const Shape& s) { return shape_str(s.data(), s.size()); }
inline std::string shape_str(std::initializer_list<int64_t> s) {
  return shape_str(s.begin(), s.size());
}
inline std::string shape_str(const View& a) { return shape_str(a.shape, size_t(a.ndim)); }
inline std::string pair_str(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}
// "float32", "int64", ... (the array's own dtype, as NumPy and CuPy print it).
inline std::string dtype_str(const View& a) { return py::str(a.obj.attr("dtype")); }
// Name of a Python object's type, for "got list" in messages.
inline std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

[[noreturn]] inline void value_error(const std::string& s) { throw py::value_error(s); }
[[noreturn]] inline void type_error(const std::string& s) { throw py::type_error(s); }

// ------------------------------------------------------------ element checks
// TypeError unless float32 or float64; returns 'f' or 'd'.
inline char require_float(const View& a, const char* name) {
  const char c = a.float_code();
  if (!c) type_error(std::string(name) + " must be float32 or float64, got " + dtype_str(a));
  return c;
}

inline void require_same_dtype(const View& a, const char* name, const View& ref,
                               const char* ref_name) {
  if (a.kind != ref.kind || a.itemsize != ref.itemsize)
    type_error(std::string(name) + " has dtype " + dtype_str(a) + " but " + ref_name +
               " has dtype " + dtype_str(ref) + "; they must match");
}

inline void require_ndim(const View& a, int ndim, const char* name) {
  if (a.ndim != ndim)
    value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got shape " +
                shape_str(a));
}

inline void require_shape(const View& a, const Shape& shape, const char* name) {
  bool ok = a.ndim == int(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape[i] == shape[i];
  if (!ok)
    value_error(std::string(name) + " must have shape " + shape_str(shape) + ", got " +
                shape_str(a));
}

inline void require_writeable(const View& a, const char* name) {
  if (!a.writeable) value_error(std::string(name) + " is read-only");
}

// a * b and a + b of sizes, ValueError when they overflow int64.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    value_error(std::string(what) + ": size overflows 64-bit indexing");
  return r;
}
inline int64_t checked_numel(std::initializer_list<int64_t> dims, const char* what) {
  int64_t r = 1;
  for (int64_t d : dims) r = checked_mul(r, d, what);
  return r;
}
inline int64_t checked_numel(const View& a, const char* what) {
  int64_t r = 1;
  for (int i = 0; i < a.ndim; ++i) r = checked_mul(r, a.shape[i], what);
  return r;
}

// ------------------------------------------------------------ memory overlap
// Byte range [lo, hi) the elements of a span (lo == hi when it has none).
inline void byte_bounds(const View& a, uintptr_t& lo, uintptr_t& hi) {
  lo = hi = reinterpret_cast<uintptr_t>(a.data);
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] == 0) { hi = lo; return; }
    const int64_t ext = (a.shape[i] - 1) * a.strides[i];
    if (ext > 0) hi += uintptr_t(ext); else lo -= uintptr_t(-ext);
  }
  hi += uintptr_t(a.itemsize);
}

// Conservative, as numpy.may_share_memory: true when the byte ranges intersect.
inline bool may_overlap(const View& x, const View& y) {
  if (!x.present() || !y.present() || !x.data || !y.data) return false;
  uintptr_t xl, xh, yl, yh;
  byte_bounds(x, xl, xh);
  byte_bounds(y, yl, yh);
  if (xl == xh || yl == yh) return false;
  return xl < yh && yl < xh;
}

// The same elements at the same addresses (an in-place call).
inline bool same_memory(const View& x, const View& y) {
  if (x.data != y.data || x.ndim != y.ndim) return false;
  for (int i = 0; i < x.ndim; ++i)
    if (x.shape[i] != y.shape[i] || (x.shape[i] > 1 && x.strides[i] != y.strides[i])) return false;
  return true;
}

// True when two different elements of a may share memory (a zero stride from
// broadcast_to, or as_strided): such an array cannot be an output.
inline bool self_overlapping(const View& a) {
  std::array<std::pair<int64_t, int64_t>, 32> ax{};  // (|stride|, dim) of axes longer than 1
  int n = 0;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] == 0) return false;
    if (a.shape[i] > 1) {
      if (n == int(ax.size())) return true;
      ax[n++] = {std::llabs(a.strides[i]), a.shape[i]};
    }
  }
  std::sort(ax.begin(), ax.begin() + n);
  int64_t need = a.itemsize;  // the smallest stride that skips every earlier element
  for (int i = 0; i < n; ++i) {
    if (ax[i].first < need) return true;
    need = ax[i].first * ax[i].second;
  }
  return false;
}

inline void require_no_self_overlap(const View& out, const char* name) {
  if (self_overlapping(out))
    value_error(std::string(name) + " " + shape_str(out) +
                " has elements that share memory (a zero or overlapping stride)");
}

// An out= of an element-wise or row-wise op: the input itself (in place) or
// memory apart from it; a partial overlap would read elements already written.
inline void require_apart_or_same(const View& out, const char* name, const View& in,
                                  const char* in_name) {
  if (may_overlap(out, in) && !same_memory(out, in))
    value_error(std::string(name) + " partially overlaps " + in_name +
                " in memory; pass " + in_name + " itself (in place) or a separate array");
}

// ------------------------------------------------------------ names -> enums
// Templates over each module's own enum (the names of the enumerators match).
// None, '', 'linear' and 'identity' mean no activation.
template <class E>
E parse_linear_or_relu(py::handle h, const std::string& prefix = "") {
  if (h.is_none()) return E::identity;
  if (!py::isinstance<py::str>(h))
    type_error(prefix + "activation must be a string ('linear' or 'relu'), got " + type_name(h));
  const std::string s = h.cast<std::string>();
  if (s == "linear" || s == "identity" || s.empty()) return E::identity;
  if (s == "relu") return E::relu;
  value_error(prefix + "activation must be 'linear' or 'relu', got '" + s + "'");
}

template <class E>
E parse_elementwise_act(const std::string& s) {
  if (s == "relu") return E::relu;
  if (s == "sigmoid") return E::sigmoid;
  if (s == "tanh") return E::tanh;
  if (s == "linear") return E::linear;
  value_error("activation must be one of 'relu', 'sigmoid', 'tanh', 'linear'; got '" + s + "'");
}

template <class E>
E parse_rnn_act(const std::string& s) {
  if (s == "tanh") return E::tanh;
  if (s == "relu") return E::relu;
  value_error("simple_rnn: activation must be 'tanh' or 'relu', got '" + s + "'");
}

template <class E>
E parse_loss(const std::string& s) {
  if (s == "softmax_xent") return E::softmax_xent;
  if (s == "sigmoid_xent") return E::sigmoid_xent;
  if (s == "categorical_xent") return E::categorical_xent;
  if (s == "binary_xent") return E::binary_xent;
  if (s == "mse") return E::mse;
  if (s == "mae") return E::mae;
  value_error("unknown loss kernel '" + s + "'");
}

// ------------------------------------------------------------ gemm
// a, b: float, one dtype, 2-D. Returns 'f' or 'd'.
inline char gemm_operands(const View& a, const View& b) {
  const char code = require_float(a, "a");
  require_same_dtype(b, "b", a, "a");
  require_ndim(a, 2, "a");
  require_ndim(b, 2, "b");
  return code;
}

struct GemmDims {
  int64_t m, n, k;
};

// op(a) (m, k) @ op(b) (k, n), with op = transpose when trans_*; c and out
// (m, n), bias (n,), each optional (absent View). out must be writeable and
// must not have elements that share memory.
inline GemmDims gemm_dims(const View& a, const View& b, bool trans_a, bool trans_b,
                          const View& c, const View& out, const View& bias) {
  GemmDims d;
  d.m = trans_a ? a.shape[1] : a.shape[0];
  d.k = trans_a ? a.shape[0] : a.shape[1];
  const int64_t kb = trans_b ? b.shape[1] : b.shape[0];
  d.n = trans_b ? b.shape[0] : b.shape[1];
  if (d.k != kb)
    value_error("gemm: inner dimensions differ: op(a) is " + pair_str(d.m, d.k) + " from a " +
                shape_str(a) + (trans_a ? " (transposed)" : "") + ", op(b) is " +
                pair_str(kb, d.n) + " from b " + shape_str(b) + (trans_b ? " (transposed)" : ""));
  if (bias.present()) {
    require_same_dtype(bias, "bias", a, "a");
    if (!bias.has_shape({d.n})) require_shape(bias, {d.n}, "bias");
  }
  if (c.present()) {
    require_same_dtype(c, "c", a, "a");
    if (!c.has_shape({d.m, d.n})) require_shape(c, {d.m, d.n}, "c");
  }
  if (out.present()) {
    require_same_dtype(out, "out", a, "a");
    if (!out.has_shape({d.m, d.n})) require_shape(out, {d.m, d.n}, "out");
    require_writeable(out, "out");
    require_no_self_overlap(out, "out");
  }
  checked_mul(d.m, d.n, "gemm output");
  return d;
}

// group_rows of a grouped product: 0 (none) or a positive number of rows.
inline void gemm_group_rows(int64_t group_rows) {
  if (group_rows < 0)
    value_error("gemm: group_rows must be 0 (one product) or a positive number of rows, got " +
                std::to_string(group_rows));
}

// out= is written in place unless it overlaps an input the kernel still reads;
// then both modules compute into a scratch array and copy it into out.
inline bool out_overlaps_inputs(const View& out, const View& a, const View& b, const View& bias) {
  return may_overlap(out, a) || may_overlap(out, b) || may_overlap(out, bias);
}

// ------------------------------------------------------------ element-wise ops
// `out` of an op whose result is shaped like `ref` (its input `in`, as the
// kernel reads it): same dtype and shape, writeable, C-contiguous, and either
// `in` itself or apart from it.
inline void out_like(const View& out, const char* name, const View& ref, const View& in,
                     const char* in_name) {
  require_same_dtype(out, name, ref, "the input");
  require_shape(out, shape_of(ref), name);
  require_writeable(out, name);
  if (!out.c_contiguous()) value_error(std::string(name) + " must be C-contiguous");
  require_apart_or_same(out, name, in, in_name);
}

// dy and y of a backward pass: float, one dtype, one shape. Returns 'f' or 'd'.
inline char dy_and_y(const View& dy, const View& y) {
  const char code = require_float(dy, "dy");
  require_same_dtype(y, "y", dy, "dy");
  require_shape(y, shape_of(dy), "y");
  return code;
}

inline void dropout_rate(double rate) {
  if (!(rate >= 0.0 && rate < 1.0))
    value_error("dropout rate must be in [0, 1), got " + std::to_string(rate));
}

// ------------------------------------------------------------ batch and layer normalization
// x (..., C): float, at least 1-D; the normalized (batch norm: channel) axis is the
// last. Returns 'f' or 'd'. `op` names the op in messages.
inline char norm_input(const View& x, const char* name, const char* op = "batch_norm") {
  const char code = require_float(x, name);
  if (x.ndim < 1)
    value_error(std::string(op) + ": " + name +
                " must have at least one dimension (the normalized axis last), got a scalar");
  return code;
}
// An array of n values that goes with x (per channel: gamma, beta, mean, var; per row
// of a layer norm: mean, inv): x's dtype, shape (n,). Absent is fine unless required.
inline void norm_vector(const View& a, const char* name, const View& x, int64_t n,
                        const char* what, bool required, const char* op = "batch_norm") {
  if (!a.present()) {
    if (required) value_error(std::string(op) + ": " + name + " is required");
    return;
  }
  require_same_dtype(a, name, x, "x");
  if (!a.has_shape({n}))
    value_error(std::string(op) + ": " + name + " must have shape (" + std::to_string(n) +
                ",) (one value per " + what + " of x " + shape_str(x) + "), got " + shape_str(a));
}
// Per channel of x (its last axis).
inline void batchnorm_channels(const View& a, const char* name, const View& x, bool required) {
  norm_vector(a, name, x, x.shape[x.ndim - 1], "channel", required);
}
inline char batchnorm_input(const View& x, const char* name) { return norm_input(x, name); }
inline void norm_epsilon(double eps, const char* op = "batch_norm") {
  if (!(eps > 0.0) || eps == std::numeric_limits<double>::infinity())
    value_error(std::string(op) + ": epsilon must be a positive number, got " +
                std::to_string(eps));
}
inline void batchnorm_epsilon(double eps) { norm_epsilon(eps); }
// dy of a backward pass: x's dtype and shape.
inline void batchnorm_dy(const View& dy, const View& x) {
  require_float(dy, "dy");
  require_same_dtype(dy, "dy", x, "x");
  require_shape(dy, shape_of(x), "dy");
}

// Softmax axis in [-ndim, ndim) -> [0, ndim).
inline int softmax_axis(const View& x, int64_t axis, const char* op) {
  if (x.ndim == 0)
    value_error(std::string(op) + ": x must have at least one dimension, got a scalar");
  if (axis < -x.ndim || axis >= x.ndim)
    value_error(std::string(op) + ": axis " + std::to_string(axis) +
                " is out of range for an array of " + std::to_string(x.ndim) + " dimensions");
  return int(axis < 0 ? axis + x.ndim : axis);
}

// ------------------------------------------------------------ embedding
// ids: integer token ids of any shape; embeddings (V, D) float. Returns 'f' or 'd'.
inline char embedding_args(const View& ids, const View& table) {
  const char code = require_float(table, "embeddings");
  if (table.ndim != 2)
    value_error("embeddings must be 2-D (input_dim, output_dim), got shape " + shape_str(table));
  if (ids.kind != 'i' && ids.kind != 'u')
    type_error("ids must be an integer array (token ids), got dtype " + dtype_str(ids) +
               "; integral floats are converted by fastdl.ops.embedding");
  return code;
}

// Every id in [0, V): lo and hi are the smallest and largest id. IndexError
// naming the offending id and the table size otherwise (the kernels never see it).
inline void embedding_id_range(int64_t lo, int64_t hi, int64_t V) {
  if (hi >= V)
    throw py::index_error("embedding: token id " + std::to_string(hi) +
                          " (the largest id) is out of range for a table of " +
                          std::to_string(V) + " rows (input_dim=" + std::to_string(V) +
                          "); ids must be in [0, " + std::to_string(V) + ")");
  if (lo < 0)
    throw py::index_error("embedding: token id " + std::to_string(lo) +
                          " is negative; ids must be in [0, " + std::to_string(V) +
                          ") for a table of " + std::to_string(V) + " rows");
}

// input_dim of a backward call: a positive number of table rows.
inline void embedding_input_dim(int64_t V) {
  if (V <= 0) value_error("embedding_backward: input_dim must be positive, got " + std::to_string(V));
}

// out of the backward pass: the table gradient (V, D), dy's dtype, C-contiguous,
// writeable, not overlapping dy.
inline void embedding_out(const View& out, const View& dy, int64_t V) {
  require_same_dtype(out, "out", dy, "dy");
  require_shape(out, {V, dy.shape[dy.ndim - 1]}, "out");
  require_writeable(out, "out");
  if (!out.c_contiguous()) value_error("out must be C-contiguous");
  require_apart_or_same(out, "out", dy, "dy");
}

// dy of the backward pass: float, shape ids.shape + (D,).
inline char embedding_dy(const View& dy, const View& ids) {
  const char code = require_float(dy, "dy");
  bool ok = dy.ndim == ids.ndim + 1 && std::equal(ids.shape, ids.shape + ids.ndim, dy.shape);
  if (!ok)
    value_error("dy has shape " + shape_str(dy) + " but ids have shape " + shape_str(ids) +
                "; dy must be ids.shape + (output_dim,)");
  if (ids.kind != 'i' && ids.kind != 'u')
    type_error("ids must be an integer array (token ids), got dtype " + dtype_str(ids));
  return code;
}

// ------------------------------------------------------------ losses
// logits (N, C) float. Returns 'f' or 'd'.
inline char sparse_logits(const View& logits) {
  const char code = require_float(logits, "logits");
  require_ndim(logits, 2, "logits");
  return code;
}

// Integer class indices; (N, 1) is taken as (N,).
inline void labels_dtype(const View& labels) {
  if (labels.kind != 'i' && labels.kind != 'u')
    type_error("labels must be an integer array (class indices), got dtype " + dtype_str(labels) +
               "; for one-hot or probability targets use categorical cross-entropy");
}
inline bool labels_are_column(const View& labels) {
  return labels.ndim == 2 && labels.shape[1] == 1;
}
// The labels after a (N, 1) column was flattened.
inline void labels_shape(const View& labels, int64_t rows) {
  if (labels.ndim != 1 || labels.shape[0] != rows)
    value_error("labels must have shape (" + std::to_string(rows) +
                ",) to match logits rows, got " + shape_str(labels));
}
[[noreturn]] inline void label_out_of_range(int64_t i, int64_t value, int64_t cols) {
  value_error("labels[" + std::to_string(i) + "] = " + std::to_string(value) +
              " is out of range for " + std::to_string(cols) + " classes (expected 0.." +
              std::to_string(cols - 1) + ")");
}
// ValueError naming the first label outside [0, cols).
template <class I>
void labels_in_range(const I* p, int64_t n, int64_t cols) {
  for (int64_t i = 0; i < n; ++i)
    if (int64_t(p[i]) < 0 || int64_t(p[i]) >= cols) label_out_of_range(i, int64_t(p[i]), cols);
}

// y_pred, y_true: float, one dtype, one shape. Returns 'f' or 'd'.
inline char loss_operands(const View& pred, const View& target) {
  const char code = require_float(pred, "y_pred");
  require_same_dtype(target, "y_true", pred, "y_pred");
  if (target.ndim != pred.ndim || !std::equal(pred.shape, pred.shape + pred.ndim, target.shape))
    value_error("y_true has shape " + shape_str(target) + " but y_pred has shape " +
                shape_str(pred) + "; they must match");
  return code;
}

// ------------------------------------------------------------ optimizers
// Parameters and slots are updated in place: param's dtype and shape,
// writeable, C-contiguous.
inline void update_state(const View& a, const char* name, const View& param,
                         const char* param_name = "param") {
  require_same_dtype(a, name, param, param_name);
  require_shape(a, shape_of(param), name);
  require_writeable(a, name);
  if (!a.c_contiguous())
    value_error(std::string(name) + " must be C-contiguous (it is updated in place)");
}
// param and grad (any layout). Returns 'f' or 'd'.
// (The names are the arguments' in error messages: "params[2]" for a list's third.)
inline char param_and_grad(const View& p, const View& g, const char* p_name = "param",
                           const char* g_name = "grad") {
  const char code = require_float(p, p_name);
  update_state(p, p_name, p, p_name);
  require_same_dtype(g, g_name, p, p_name);
  require_shape(g, shape_of(p), g_name);
  return code;
}
// A momentum slot is needed only when momentum != 0. Returns whether it is used.
inline bool momentum_slot(py::handle slot, double momentum, const char* missing) {
  if (momentum == 0.0) return false;
  if (slot.is_none()) value_error(missing);
  return true;
}
constexpr const char* kSgdSlotMissing = "momentum > 0 needs a momentum slot m";
constexpr const char* kRmspropSlotMissing = "momentum > 0 needs a momentum slot";

// ------------------------------------------------------------ convolution and pooling
using Pair = std::array<int64_t, 2>;
using Pads = std::array<int64_t, 4>;  // top, bottom, left, right

inline void require_positive(const Pair& p, const char* op, const char* name) {
  if (p[0] < 1 || p[1] < 1)
    value_error(std::string(op) + ": " + name + " must be positive, got " + pair_str(p[0], p[1]));
}

// a + b of sizes, ValueError when it overflows int64.
inline int64_t checked_add(int64_t a, int64_t b, const char* op) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    value_error(std::string(op) + ": window, stride or padding too large "
                "(the geometry overflows 64-bit arithmetic)");
  return r;
}

// Fills the padding and output size of g (whose N,H,W,C,KH,KW,SH,SW,DH,DW are
// set); ValueError when the (dilated) window does not fit in the padded input,
// or when the numbers would overflow the int64 arithmetic of the kernels.
inline void resolve_geometry(Conv2dGeom& g, bool same, const Pads& pads, const char* op,
                             const char* window, const View& x, bool pool) {
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
        value_error(std::string(op) + ": padding must be non-negative, got (" +
                    pair_str(pads[0], pads[1]) + ", " + pair_str(pads[2], pads[3]) + ")");
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
    value_error(s.str());
  }
  if (pool && (g.PT >= g.KH || g.PB >= g.KH || g.PL >= g.KW || g.PR >= g.KW)) {
    std::ostringstream s;
    s << op << ": padding ((" << g.PT << ", " << g.PB << "), (" << g.PL << ", " << g.PR
      << ")) must be smaller than pool_size " << pair_str(g.KH, g.KW)
      << " so that every window sees part of x";
    value_error(s.str());
  }
  g.OH = conv_out_size(g.H, g.KH, g.SH, g.DH, g.PT, g.PB);
  g.OW = conv_out_size(g.W, g.KW, g.SW, g.DW, g.PL, g.PR);
}

inline void require_image(const View& x, const char* op) {
  if (x.ndim != 4)
    value_error(std::string(op) + ": x must be 4-D (N, H, W, C), got shape " + shape_str(x));
}

// x (N,H,W,C) and w (KH,KW,C,F): float, one dtype. Returns the geometry; the
// dtype code goes to *code.
inline Conv2dGeom conv_geometry(const char* op, const View& x, const View& w, const Pair& strides,
                                const Pair& dilation, bool same, const Pads& pads, char* code) {
  *code = require_float(x, "x");
  require_same_dtype(w, "w", x, "x");
  require_image(x, op);
  if (w.ndim != 4)
    value_error(std::string(op) + ": w must be 4-D (KH, KW, C_in, C_out), got shape " +
                shape_str(w));
  if (w.shape[2] != x.shape[3])
    value_error(std::string(op) + ": x has " + std::to_string(x.shape[3]) + " channels (shape " +
                shape_str(x) + ") but w expects " + std::to_string(w.shape[2]) + " (shape " +
                shape_str(w) + ")");
  if (w.shape[0] < 1 || w.shape[1] < 1 || w.shape[2] < 1)
    value_error(std::string(op) + ": w must have a non-empty window and channels, got shape " +
                shape_str(w));
  require_positive(strides, op, "strides");
  require_positive(dilation, op, "dilation_rate");
  Conv2dGeom g{};
  g.N = x.shape[0]; g.H = x.shape[1]; g.W = x.shape[2]; g.C = x.shape[3];
  g.KH = w.shape[0]; g.KW = w.shape[1]; g.F = w.shape[3];
  g.SH = strides[0]; g.SW = strides[1]; g.DH = dilation[0]; g.DW = dilation[1];
  resolve_geometry(g, same, pads, op, "kernel", x, false);
  checked_numel({g.N, g.OH, g.OW, g.F}, op);
  checked_numel({g.N, g.H, g.W, g.C}, op);
  checked_numel({g.KH, g.KW, g.C, g.F}, op);
  checked_numel({g.OH, g.OW, g.KH, g.KW, g.C}, op);  // one image's im2col rows
  return g;
}

inline void conv_bias(const View& b, const Conv2dGeom& g, const View& x, const View& w) {
  require_same_dtype(b, "b", x, "x");
  if (!b.has_shape({g.F}))
    value_error("conv2d: b must have shape (" + std::to_string(g.F) + ",) to match w " +
                shape_str(w) + ", got " + shape_str(b));
}

inline void conv_dy(const char* op, const View& dy, const Conv2dGeom& g, const View& x,
                    const View& w) {
  require_same_dtype(dy, "dy", x, "x");
  if (!dy.has_shape({g.N, g.OH, g.OW, g.F}))
    value_error(std::string(op) + ": dy must have the output shape " +
                shape_str({g.N, g.OH, g.OW, g.F}) + " for x " + shape_str(x) + " and w " +
                shape_str(w) + ", got " + shape_str(dy));
}

// Depthwise convolution: x (N,H,W,C) and w (KH,KW,C,M), float, one dtype.
// Returns the geometry with F = C*M output channels; the dtype code goes to *code.
inline Conv2dGeom depthwise_geometry(const char* op, const View& x, const View& w,
                                     const Pair& strides, const Pair& dilation, bool same,
                                     const Pads& pads, char* code) {
  *code = require_float(x, "x");
  require_same_dtype(w, "w", x, "x");
  require_image(x, op);
  if (w.ndim != 4)
    value_error(std::string(op) + ": w must be 4-D (KH, KW, C, depth_multiplier), got shape " +
                shape_str(w));
  if (w.shape[2] != x.shape[3])
    value_error(std::string(op) + ": x has " + std::to_string(x.shape[3]) + " channels (shape " +
                shape_str(x) + ") but w expects " + std::to_string(w.shape[2]) + " (shape " +
                shape_str(w) + ")");
  if (w.shape[0] < 1 || w.shape[1] < 1 || w.shape[2] < 1 || w.shape[3] < 1)
    value_error(std::string(op) + ": w must have a non-empty window, channels and "
                "depth_multiplier, got shape " + shape_str(w));
  require_positive(strides, op, "strides");
  require_positive(dilation, op, "dilation_rate");
  Conv2dGeom g{};
  g.N = x.shape[0]; g.H = x.shape[1]; g.W = x.shape[2]; g.C = x.shape[3];
  g.KH = w.shape[0]; g.KW = w.shape[1]; g.F = checked_mul(w.shape[2], w.shape[3], op);
  g.SH = strides[0]; g.SW = strides[1]; g.DH = dilation[0]; g.DW = dilation[1];
  resolve_geometry(g, same, pads, op, "kernel", x, false);
  checked_numel({g.N, g.OH, g.OW, g.F}, op);
  checked_numel({g.N, g.H, g.W, g.C}, op);
  checked_numel({g.KH, g.KW, g.F}, op);
  return g;
}

inline void depthwise_bias(const char* op, const View& b, const Conv2dGeom& g, const View& x,
                           const View& w) {
  require_same_dtype(b, "b", x, "x");
  if (!b.has_shape({g.F}))
    value_error(std::string(op) + ": b must have shape (" + std::to_string(g.F) +
                ",) (channels x depth_multiplier of w " + shape_str(w) + "), got " +
                shape_str(b));
}

// x (N,H,W,C) float. Returns the geometry; the dtype code goes to *code.
inline Conv2dGeom pool_geometry(const char* op, const View& x, const Pair& pool,
                                const Pair& strides, bool same, const Pads& pads, char* code) {
  *code = require_float(x, "x");
  require_image(x, op);
  require_positive(pool, op, "pool_size");
  require_positive(strides, op, "strides");
  Conv2dGeom g{};
  g.N = x.shape[0]; g.H = x.shape[1]; g.W = x.shape[2]; g.C = x.shape[3];
  g.KH = pool[0]; g.KW = pool[1]; g.F = g.C;
  g.SH = strides[0]; g.SW = strides[1]; g.DH = 1; g.DW = 1;
  resolve_geometry(g, same, pads, op, "pool window", x, true);
  checked_numel({g.N, g.OH, g.OW, g.C}, op);
  checked_numel({g.N, g.H, g.W, g.C}, op);
  return g;
}

inline void pool_dy(const char* op, const View& dy, const Conv2dGeom& g, const View& x) {
  require_same_dtype(dy, "dy", x, "x");
  if (!dy.has_shape({g.N, g.OH, g.OW, g.C}))
    value_error(std::string(op) + ": dy must have the output shape " +
                shape_str({g.N, g.OH, g.OW, g.C}) + " for x " + shape_str(x) + ", got " +
                shape_str(dy));
}

// Max pooling's argmax codes (cpu/pool/max_pool2d.h): windows of at most
// max_taps taps (asked for by the forward pass, or given to the backward).
inline void pool_argmax_window(const char* op, const Conv2dGeom& g, int64_t max_taps) {
  if (g.KH * g.KW > max_taps)
    value_error(std::string(op) + ": argmax codes need a pool window of at most " +
                std::to_string(max_taps) + " taps, got " + pair_str(g.KH, g.KW));
}

// argmax: the uint8 codes of max_pool2d(..., return_argmax=True), shaped like y.
inline void pool_argmax(const char* op, const View& argmax, const Conv2dGeom& g,
                        const View& x, int64_t max_taps) {
  pool_argmax_window(op, g, max_taps);
  if (argmax.kind != 'u' || argmax.itemsize != 1)
    type_error(std::string(op) + ": argmax must be uint8 (from max_pool2d(..., "
               "return_argmax=True)), got " + dtype_str(argmax));
  if (!argmax.has_shape({g.N, g.OH, g.OW, g.C}))
    value_error(std::string(op) + ": argmax must have the output shape " +
                shape_str({g.N, g.OH, g.OW, g.C}) + " for x " + shape_str(x) + ", got " +
                shape_str(argmax));
}

// conv2d + ReLU + max pooling in one op: the pooling of the convolution g's
// output (N, OH, OW, F) by windows `pool` that tile it from the top-left
// corner (strides = pool, no padding; what is left over is dropped), each of
// at most max_taps taps (the argmax codes). Returns the pooling's geometry.
inline Conv2dGeom conv_pool_geometry(const char* op, const Conv2dGeom& g, const Pair& pool,
                                     int64_t max_taps) {
  require_positive(pool, op, "pool_size");
  Conv2dGeom p{};
  p.N = g.N; p.H = g.OH; p.W = g.OW; p.C = g.F; p.F = g.F;
  p.KH = pool[0]; p.KW = pool[1]; p.SH = pool[0]; p.SW = pool[1]; p.DH = 1; p.DW = 1;
  if (p.KH > p.H || p.KW > p.W)
    value_error(std::string(op) + ": the pool window " + pair_str(p.KH, p.KW) +
                " is larger than the convolution's output " + pair_str(p.H, p.W));
  pool_argmax_window(op, p, max_taps);
  p.OH = p.H / p.KH;
  p.OW = p.W / p.KW;
  return p;
}

// The backward pass of conv2d + ReLU + max pooling: dy and the argmax codes
// both have the pooled output's shape (pg from conv_pool_geometry).
inline void conv_pool_grads(const char* op, const View& dy, const View& argmax,
                            const Conv2dGeom& pg, const View& x, const View& w) {
  require_same_dtype(dy, "dy", x, "x");
  const std::string want = shape_str({pg.N, pg.OH, pg.OW, pg.C});
  const std::string of = " for x " + shape_str(x) + ", w " + shape_str(w) + " and pool_size " +
                         pair_str(pg.KH, pg.KW) + ", got ";
  if (!dy.has_shape({pg.N, pg.OH, pg.OW, pg.C}))
    value_error(std::string(op) + ": dy must have the pooled output's shape " + want + of +
                shape_str(dy));
  if (argmax.kind != 'u' || argmax.itemsize != 1)
    type_error(std::string(op) + ": argmax must be uint8 (from conv2d_relu_max_pool2d), got " +
               dtype_str(argmax));
  if (!argmax.has_shape({pg.N, pg.OH, pg.OW, pg.C}))
    value_error(std::string(op) + ": argmax must have the pooled output's shape " + want + of +
                shape_str(argmax));
}

// Global average pooling: x (N,H,W,C) float with H, W >= 1. Returns 'f' or 'd'.
inline char gap_input(const char* op, const View& x) {
  const char code = require_float(x, "x");
  require_image(x, op);
  if (x.shape[1] < 1 || x.shape[2] < 1)
    value_error(std::string(op) + ": x must have at least one pixel, got shape " + shape_str(x));
  checked_numel(x, op);
  return code;
}

inline void gap_dy(const char* op, const View& dy, const View& x) {
  require_same_dtype(dy, "dy", x, "x");
  if (!dy.has_shape({x.shape[0], x.shape[3]}))
    value_error(std::string(op) + ": dy must have shape " + pair_str(x.shape[0], x.shape[3]) +
                " for x " + shape_str(x) + ", got " + shape_str(dy));
}

// ------------------------------------------------------------ recurrent
// Shapes (Keras layouts; G = 1, 4, 3 gate blocks for SimpleRNN, LSTM, GRU):
//   x (N,T,I), h0 / c0 (N,U), kernel (I,G*U), recurrent_kernel (U,G*U),
//   bias (G*U,) or, for the GRU, (2,3U); hs (N,T,U).
// U is read from recurrent_kernel, N, T and I from x.
struct RnnDims {
  int64_t N, T, I, U;
  char code;  // 'f' or 'd'
};

// x float; kernel and recurrent_kernel of x's dtype and of these shapes.
inline RnnDims rnn_dims(const char* op, const View& x, const View& kernel, const View& rec,
                        int gates) {
  RnnDims d{};
  d.code = require_float(x, "x");
  require_same_dtype(kernel, "kernel", x, "x");
  require_same_dtype(rec, "recurrent_kernel", x, "x");
  if (x.ndim != 3)
    value_error(std::string(op) + ": x must be 3-D (batch, timesteps, features), got " +
                shape_str(x));
  d.N = x.shape[0]; d.T = x.shape[1]; d.I = x.shape[2];
  if (rec.ndim != 2 || rec.shape[1] != checked_mul(gates, rec.shape[0], op))
    value_error(std::string(op) + ": recurrent_kernel must have shape (units, " +
                (gates == 1 ? std::string("units") : std::to_string(gates) + "*units") +
                "), got " + shape_str(rec));
  d.U = rec.shape[0];
  const int64_t GU = gates * d.U;
  if (d.U == 0) value_error(std::string(op) + ": units must be positive, got 0");
  if (d.T == 0)
    value_error(std::string(op) + ": x must have at least one timestep, got shape " +
                shape_str(x));
  if (d.I == 0)
    value_error(std::string(op) + ": x must have at least one feature, got shape " + shape_str(x));
  if (!kernel.has_shape({d.I, GU}))
    value_error(std::string(op) + ": kernel must have shape " + shape_str({d.I, GU}) + " for x " +
                shape_str(x) + " and recurrent_kernel " + shape_str(rec) + ", got " +
                shape_str(kernel));
  checked_numel({d.N, d.T, checked_add(GU, checked_add(d.I, d.U, op), op)}, op);
  checked_numel({d.N, d.T, 5, d.U}, op);  // the LSTM's cache, the largest scratch
  return d;
}

// A state (h0, c0, dc_T): (N, U) of x's dtype. Absent (None) means zeros to the
// forward ops; the caller makes them.
inline void rnn_state(const char* op, const View& a, const char* name, const RnnDims& d,
                      const View& x) {
  require_same_dtype(a, name, x, "x");
  if (!a.has_shape({d.N, d.U}))
    value_error(std::string(op) + ": " + name + " must have shape " + pair_str(d.N, d.U) +
                " (batch, units), got " + shape_str(a));
}

inline void rnn_bias(const char* op, const View& b, const RnnDims& d, int gates, bool gru,
                     const View& x) {
  require_same_dtype(b, "bias", x, "x");
  const int64_t GU = gates * d.U;
  if (!(gru ? b.has_shape({2, GU}) : b.has_shape({GU})))
    value_error(std::string(op) + ": bias must have shape " +
                (gru ? shape_str({2, GU}) : shape_str({GU})) + ", got " + shape_str(b));
}

// A saved sequence (hs (N,T,U), cache (N,T,cols)) of x's dtype.
inline void rnn_seq(const char* op, const View& a, const char* name, const RnnDims& d,
                    int64_t cols, const View& x) {
  require_same_dtype(a, name, x, "x");
  if (!a.has_shape({d.N, d.T, cols}))
    value_error(std::string(op) + ": " + name + " must have shape " +
                shape_str({d.N, d.T, cols}) + ", got " + shape_str(a));
}

// dhs is (N,T,U) (every step) or (N,U) (last step only); returns which.
inline bool rnn_dhs(const char* op, const View& dhs, const RnnDims& d, const View& x) {
  require_same_dtype(dhs, "dhs", x, "x");
  if (dhs.has_shape({d.N, d.T, d.U})) return true;
  if (dhs.has_shape({d.N, d.U})) return false;
  value_error(std::string(op) + ": dhs must have shape " + shape_str({d.N, d.T, d.U}) +
              " (every step) or " + pair_str(d.N, d.U) + " (last step), got " + shape_str(dhs));
}

}  // namespace fastdl::checks
