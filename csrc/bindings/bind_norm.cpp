// ops.batch_norm / batch_norm_inference / batch_norm_backward and
// ops.layer_norm / layer_norm_backward: validation (bindings_common/checks.h),
// then the kernels in cpu/nn/{batchnorm,layernorm}.cpp. The normalized axis (batch
// norm: the channel axis) is the last: ops.py moves or merges axes first.
#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "cpu/nn/batchnorm.h"
#include "cpu/nn/layernorm.h"

namespace fastdl::bind {
namespace {

template <typename T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
const T* optr(const py::object& a) {
  return a.is_none() ? nullptr : static_cast<const T*>(py::reinterpret_borrow<py::array>(a).data());
}
template <typename T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// Rows and channels of x seen as (M, C).
void rows_channels(const py::array& x, int64_t* M, int64_t* C) {
  *C = x.shape(x.ndim() - 1);
  *M = *C ? int64_t(x.size()) / *C : 0;
}

// A per-channel argument, contiguous, or None.
template <typename T>
py::object channels_arg(py::handle h) {
  if (h.is_none()) return py::none();
  return contiguous<T>(require_array(h, "per-channel argument"));
}

// `out` when given (shaped and typed like x, apart from or equal to `in`, the
// contiguous input read at the same index), else new.
template <typename T>
py::array output_for(const py::array& x, const py::array& in, const py::object& out_obj,
                     const char* in_name = "x") {
  if (out_obj.is_none()) return empty<T>(shape_vec(x));
  py::array out = require_array(out_obj, "out");
  checks::out_like(view_of(out), "out", view_of(x), view_of(in), in_name);
  return out;
}

// The shared checks of x and its per-channel arguments; returns 'f' or 'd'.
char check_forward(const py::array& x, py::handle gamma, py::handle beta, py::handle mean,
                   py::handle var, bool need_stats, double eps) {
  const View xv = view_of(x);
  const char k = checks::batchnorm_input(xv, "x");
  checks::batchnorm_channels(opt_view(gamma, "gamma"), "gamma", xv, false);
  checks::batchnorm_channels(opt_view(beta, "beta"), "beta", xv, false);
  checks::batchnorm_channels(opt_view(mean, "mean"), "mean", xv, need_stats);
  checks::batchnorm_channels(opt_view(var, "var"), "var", xv, need_stats);
  checks::batchnorm_epsilon(eps);
  return k;
}

template <typename T>
py::tuple forward_t(const py::array& x, py::handle gamma_h, py::handle beta_h, double eps,
                    py::object out_obj) {
  auto xc = contiguous<T>(x);
  py::object g = channels_arg<T>(gamma_h), b = channels_arg<T>(beta_h);
  py::array y = output_for<T>(x, xc, out_obj);
  int64_t M, C;
  rows_channels(xc, &M, &C);
  py::array mean = empty<T>({C}), var = empty<T>({C});
  const T *px = cptr<T>(xc), *pg = optr<T>(g), *pb = optr<T>(b);
  T *py_ = mptr<T>(y), *pm = mptr<T>(mean), *pv = mptr<T>(var);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::batchnorm_forward<T>(py_, pm, pv, px, pg, pb, M, C, eps, ctx);
  }
  return py::make_tuple(y, mean, var);
}

py::tuple batch_norm(py::handle x_h, py::handle gamma, py::handle beta, double eps,
                     py::object out) {
  py::array x = require_array(x_h, "x");
  const char k = check_forward(x, gamma, beta, py::none(), py::none(), false, eps);
  return k == 'f' ? forward_t<float>(x, gamma, beta, eps, out)
                  : forward_t<double>(x, gamma, beta, eps, out);
}

template <typename T>
py::array inference_t(const py::array& x, py::handle mean_h, py::handle var_h,
                      py::handle gamma_h, py::handle beta_h, double eps, py::object out_obj) {
  auto xc = contiguous<T>(x);
  py::object m = channels_arg<T>(mean_h), v = channels_arg<T>(var_h);
  py::object g = channels_arg<T>(gamma_h), b = channels_arg<T>(beta_h);
  py::array y = output_for<T>(x, xc, out_obj);
  int64_t M, C;
  rows_channels(xc, &M, &C);
  const T *px = cptr<T>(xc), *pm = optr<T>(m), *pv = optr<T>(v), *pg = optr<T>(g),
          *pb = optr<T>(b);
  T* py_ = mptr<T>(y);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::batchnorm_inference<T>(py_, px, pm, pv, pg, pb, M, C, eps, ctx);
  }
  return y;
}

py::array batch_norm_inference(py::handle x_h, py::handle mean, py::handle var,
                               py::handle gamma, py::handle beta, double eps, py::object out) {
  py::array x = require_array(x_h, "x");
  const char k = check_forward(x, gamma, beta, mean, var, true, eps);
  return k == 'f' ? inference_t<float>(x, mean, var, gamma, beta, eps, out)
                  : inference_t<double>(x, mean, var, gamma, beta, eps, out);
}

// dx of a normalization backward pass (x's shape; out= when given, which may be dy but
// not x), or None without need_dx; *pdx its data or null.
template <typename T>
py::object input_gradient(bool need_dx, const py::array& x, const py::array& xc,
                          const py::array& dyc, py::object out_obj, T** pdx) {
  if (!need_dx) return py::none();
  py::array dx = output_for<T>(x, dyc, out_obj, "dy");
  checks::require_apart_or_same(view_of(dx), "out", view_of(xc), "x");
  *pdx = mptr<T>(dx);
  return dx;
}

template <typename T>
py::tuple backward_t(const py::array& dy, const py::array& x, py::handle mean_h,
                     py::handle var_h, py::handle gamma_h, double eps, bool batch_stats,
                     bool need_dx, py::object out_obj) {
  auto dyc = contiguous<T>(dy);
  auto xc = contiguous<T>(x);
  py::object m = channels_arg<T>(mean_h), v = channels_arg<T>(var_h), g = channels_arg<T>(gamma_h);
  int64_t M, C;
  rows_channels(xc, &M, &C);
  T* pdx = nullptr;
  py::object dx_obj = input_gradient<T>(need_dx, x, xc, dyc, out_obj, &pdx);
  py::array dgamma = empty<T>({C}), dbeta = empty<T>({C});
  const T *pdy = cptr<T>(dyc), *px = cptr<T>(xc), *pm = optr<T>(m), *pv = optr<T>(v),
          *pg = optr<T>(g);
  T *pdg = mptr<T>(dgamma), *pdb = mptr<T>(dbeta);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::batchnorm_backward<T>(pdx, pdg, pdb, pdy, px, pm, pv, pg, M, C, eps, batch_stats, ctx);
  }
  return py::make_tuple(dx_obj, dgamma, dbeta);
}

py::tuple batch_norm_backward(py::handle dy_h, py::handle x_h, py::handle mean, py::handle var,
                              py::handle gamma, double eps, bool batch_stats, bool need_dx,
                              py::object out) {
  py::array x = require_array(x_h, "x");
  py::array dy = require_array(dy_h, "dy");
  const char k = check_forward(x, gamma, py::none(), mean, var, true, eps);
  checks::batchnorm_dy(view_of(dy), view_of(x));
  return k == 'f' ? backward_t<float>(dy, x, mean, var, gamma, eps, batch_stats, need_dx, out)
                  : backward_t<double>(dy, x, mean, var, gamma, eps, batch_stats, need_dx, out);
}

// ------------------------------------------------------------ layer norm (last axis)
constexpr const char* kLn = "layer_norm";

// x, gamma, beta of a layer norm over x's last axis; returns 'f' or 'd'.
char check_layer_norm(const py::array& x, py::handle gamma, py::handle beta) {
  const View xv = view_of(x);
  const char k = checks::norm_input(xv, "x", kLn);
  const int64_t D = xv.shape[xv.ndim - 1];
  checks::norm_vector(opt_view(gamma, "gamma"), "gamma", xv, D, "element of the last axis",
                      false, kLn);
  checks::norm_vector(opt_view(beta, "beta"), "beta", xv, D, "element of the last axis", false,
                      kLn);
  return k;
}

template <typename T>
py::tuple layer_norm_t(const py::array& x, py::handle gamma_h, py::handle beta_h, double eps,
                       bool rms, py::object out_obj) {
  auto xc = contiguous<T>(x);
  py::object g = channels_arg<T>(gamma_h), b = channels_arg<T>(beta_h);
  py::array y = output_for<T>(x, xc, out_obj);
  int64_t N, D;
  rows_channels(xc, &N, &D);
  py::array mean = empty<T>({N}), inv = empty<T>({N});
  const T *px = cptr<T>(xc), *pg = optr<T>(g), *pb = optr<T>(b);
  T *py_ = mptr<T>(y), *pm = mptr<T>(mean), *pi = mptr<T>(inv);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::layernorm_forward<T>(py_, pm, pi, px, pg, pb, N, D, eps, rms, ctx);
  }
  return py::make_tuple(y, mean, inv);
}

py::tuple layer_norm(py::handle x_h, py::handle gamma, py::handle beta, double eps, bool rms,
                     py::object out) {
  py::array x = require_array(x_h, "x");
  const char k = check_layer_norm(x, gamma, beta);
  checks::norm_epsilon(eps, kLn);
  return k == 'f' ? layer_norm_t<float>(x, gamma, beta, eps, rms, out)
                  : layer_norm_t<double>(x, gamma, beta, eps, rms, out);
}

template <typename T>
py::tuple layer_norm_backward_t(const py::array& dy, const py::array& x, py::handle mean_h,
                                py::handle inv_h, py::handle gamma_h, bool rms, bool need_dx,
                                py::object out_obj) {
  auto dyc = contiguous<T>(dy);
  auto xc = contiguous<T>(x);
  py::object m = channels_arg<T>(mean_h), iv = channels_arg<T>(inv_h), g = channels_arg<T>(gamma_h);
  int64_t N, D;
  rows_channels(xc, &N, &D);
  T* pdx = nullptr;
  py::object dx_obj = input_gradient<T>(need_dx, x, xc, dyc, out_obj, &pdx);
  py::array dgamma = empty<T>({D}), dbeta = empty<T>({D});
  const T *pdy = cptr<T>(dyc), *px = cptr<T>(xc), *pm = optr<T>(m), *pi = optr<T>(iv),
          *pg = optr<T>(g);
  T *pdg = mptr<T>(dgamma), *pdb = mptr<T>(dbeta);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::layernorm_backward<T>(pdx, pdg, pdb, pdy, px, pm, pi, pg, N, D, rms, ctx);
  }
  return py::make_tuple(dx_obj, dgamma, dbeta);
}

py::tuple layer_norm_backward(py::handle dy_h, py::handle x_h, py::handle mean, py::handle inv,
                              py::handle gamma, bool rms, bool need_dx, py::object out) {
  py::array x = require_array(x_h, "x");
  py::array dy = require_array(dy_h, "dy");
  const char k = check_layer_norm(x, gamma, py::none());
  const View xv = view_of(x);
  const int64_t D = xv.shape[xv.ndim - 1];
  const int64_t N = D ? int64_t(x.size()) / D : 0;
  checks::norm_vector(opt_view(mean, "mean"), "mean", xv, N, "row", true, kLn);
  checks::norm_vector(opt_view(inv, "inv"), "inv", xv, N, "row", true, kLn);
  checks::batchnorm_dy(view_of(dy), xv);
  return k == 'f' ? layer_norm_backward_t<float>(dy, x, mean, inv, gamma, rms, need_dx, out)
                  : layer_norm_backward_t<double>(dy, x, mean, inv, gamma, rms, need_dx, out);
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("batch_norm", &batch_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("epsilon"), py::arg("out") = py::none(),
        "(y, mean, var): batch statistics over every axis but the last (biased variance)");
  m.def("batch_norm_inference", &batch_norm_inference, py::arg("x"), py::arg("mean"),
        py::arg("var"), py::arg("gamma"), py::arg("beta"), py::arg("epsilon"),
        py::arg("out") = py::none(), "y with the given statistics");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("mean"), py::arg("var"), py::arg("gamma"), py::arg("epsilon"),
        py::arg("batch_stats") = true, py::arg("need_dx") = true, py::arg("out") = py::none(),
        "(dx or None, dgamma, dbeta); out: where dx goes (may be dy)");
  m.def("layer_norm", &layer_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("epsilon"), py::arg("rms") = false, py::arg("out") = py::none(),
        "(y, mean, inv): each row (last axis) normalized by its own statistics");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("mean"), py::arg("inv"), py::arg("gamma"), py::arg("rms") = false,
        py::arg("need_dx") = true, py::arg("out") = py::none(), "(dx or None, dgamma, dbeta)");
}

}  // namespace fastdl::bind
