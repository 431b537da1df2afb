// ops.gemm / ops.matmul / ops.linear: validation, strides, then the GEMM driver.
#include <string>

#include "bindings/common.h"
#include "cpu/gemm.h"

namespace fastdl::bind {
namespace {

using cpu::Activation;

Activation parse_activation(const std::string& s) {
  if (s == "linear" || s == "identity" || s.empty()) return Activation::identity;
  if (s == "relu") return Activation::relu;
  throw py::value_error("activation must be 'linear' or 'relu', got '" + s + "'");
}

bool may_overlap(const py::array& x, const py::array& y) {
  // Conservative bounds check, as numpy.may_share_memory does.
  auto bounds = [](const py::array& a, const char*& lo, const char*& hi) {
    lo = hi = static_cast<const char*>(a.data());
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
      if (a.shape(i) == 0) { hi = lo; return; }
      py::ssize_t ext = (a.shape(i) - 1) * a.strides(i);
      if (ext > 0) hi += ext; else lo += ext;
    }
    hi += a.itemsize();
  };
  const char *xl, *xh, *yl, *yh;
  bounds(x, xl, xh);
  bounds(y, yl, yh);
  if (xl == xh || yl == yh) return false;
  return xl < yh && yl < xh;
}

template <typename T>
py::array gemm_typed(py::array a, py::array b, py::object c_obj, double alpha, double beta,
                     bool trans_a, bool trans_b, py::object out_obj, py::object bias_obj,
                     Activation act) {
  // op(a) is (m,k), op(b) is (k,n).
  auto sa = elem_strides(a), sb = elem_strides(b);
  int64_t m = trans_a ? a.shape(1) : a.shape(0);
  int64_t ka = trans_a ? a.shape(0) : a.shape(1);
  int64_t kb = trans_b ? b.shape(1) : b.shape(0);
  int64_t n = trans_b ? b.shape(0) : b.shape(1);
  if (ka != kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(m) + ", " +
                          std::to_string(ka) + ") from a " + shape_str(a) + ", op(b) is (" +
                          std::to_string(kb) + ", " + std::to_string(n) + ") from b " +
                          shape_str(b));
  int64_t rs_a = trans_a ? sa[1] : sa[0], cs_a = trans_a ? sa[0] : sa[1];
  int64_t rs_b = trans_b ? sb[1] : sb[0], cs_b = trans_b ? sb[0] : sb[1];

  const T* bias = nullptr;
  py::array bias_arr;
  if (!bias_obj.is_none()) {
    bias_arr = require_array(bias_obj, "bias");
    require_same_dtype(bias_arr, "bias", a, "a");
    require_shape(bias_arr, {n}, "bias");
    bias_arr = contiguous<T>(bias_arr);
    bias = static_cast<const T*>(bias_arr.data());
  }

  bool use_c = beta != 0.0;
  py::array c;
  if (!c_obj.is_none()) {
    c = require_array(c_obj, "c");
    require_same_dtype(c, "c", a, "a");
    require_shape(c, {m, n}, "c");
  } else {
    use_c = false;  // no c: beta has nothing to scale
  }

  py::array out;
  const bool have_out = !out_obj.is_none();
  if (have_out) {
    out = require_array(out_obj, "out");
    require_same_dtype(out, "out", a, "a");
    require_shape(out, {m, n}, "out");
    require_writeable(out, "out");
  }
  // The kernel reads beta*C from the buffer it writes, so C goes there first.
  bool out_aliases_input = have_out && (may_overlap(out, a) || may_overlap(out, b) ||
                                   (bias && may_overlap(out, bias_arr)));
  py::array target;  // what the kernel writes
  if (have_out && !out_aliases_input) {
    target = out;
  } else {
    target = empty<T>({m, n});
  }
  if (use_c && !target.is(c)) {
    py::module_::import("numpy").attr("copyto")(target, c);
  }
  auto st = elem_strides(target);
  T* pc = static_cast<T*>(target.mutable_data());
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  cpu::GemmEpilogue<T> ep{bias, act};
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::gemm<T>(pc, st[0], st[1], pa, rs_a, cs_a, pb, rs_b, cs_b, m, n, ka, T(alpha),
                 use_c ? T(beta) : T(0), ep, ctx);
  }
  if (have_out && out_aliases_input) {
    py::module_::import("numpy").attr("copyto")(out, target);
    return out;
  }
  return have_out ? out : target;
}

py::array gemm_entry(py::handle a_h, py::handle b_h, py::object c, double alpha, double beta,
                     bool trans_a, bool trans_b, py::object out, py::object bias,
                     const std::string& activation) {
  py::array a = require_array(a_h, "a");
  py::array b = require_array(b_h, "b");
  char kind = float_kind(a, "a");
  require_same_dtype(b, "b", a, "a");
  require_ndim(a, 2, "a");
  require_ndim(b, 2, "b");
  Activation act = parse_activation(activation);
  if (kind == 'f') return gemm_typed<float>(a, b, c, alpha, beta, trans_a, trans_b, out, bias, act);
  return gemm_typed<double>(a, b, c, alpha, beta, trans_a, trans_b, out, bias, act);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_entry, py::arg("a"), py::arg("b"), py::arg("c") = py::none(),
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("out") = py::none(), py::arg("bias") = py::none(),
        py::arg("activation") = "linear",
        "act(alpha * op(a) @ op(b) + beta * c + bias); returns out (or a new array)");
}

}  // namespace fastdl::bind
