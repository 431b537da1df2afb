// ops.relu/sigmoid/tanh/softmax/log_softmax (+ backward), dropout, losses and
// optimizer updates: validation, then the kernels in cpu/{activations,softmax,
// dropout,losses,optimizers}.cpp. ops.py adds the axis handling and defaults.
#include <limits>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "cpu/nn/activations.h"
#include "cpu/nn/dropout.h"
#include "cpu/nn/losses.h"
#include "cpu/nn/optimizers.h"
#include "cpu/nn/softmax.h"

namespace fastdl::bind {
namespace {

Act parse_act(const std::string& s) { return checks::parse_elementwise_act<Act>(s); }

// The array an op writes: `out` when given (checks::out_like against ref and
// the buffer `in` the kernel reads), else a new one shaped like ref.
template <typename T>
py::array output_like(const py::array& ref, const py::array& in, const py::object& out_obj,
                      const char* name) {
  if (out_obj.is_none()) return empty<T>(shape_vec(ref));
  py::array out = require_array(out_obj, name);
  checks::out_like(view_of(out), name, view_of(ref), view_of(in), "the input");
  return out;
}

// dy and y of a backward pass: float arrays of one dtype and one shape.
// Returns the dtype kind ('f' or 'd').
char require_dy_y(py::handle dy_h, py::handle y_h, py::array* dy, py::array* y) {
  *dy = require_array(dy_h, "dy");
  *y = require_array(y_h, "y");
  return checks::dy_and_y(view_of(*dy), view_of(*y));
}

template <typename T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// y = kernel(x) for an op whose output is shaped like its input: x made
// contiguous, y from output_like, then kernel(y, x, ctx) without the GIL.
template <typename T, typename Kernel>
py::array map_unary(const py::array& x, const py::object& out_obj, Kernel&& kernel) {
  auto xc = contiguous<T>(x);
  py::array y = output_like<T>(x, xc, out_obj, "out");
  const T* px = cptr<T>(xc);
  T* py_ = mptr<T>(y);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    kernel(py_, px, ctx);
  }
  return y;
}

// dx = kernel(dy, y) for a backward pass through an op of that kind:
// kernel(dx, dy, y, ctx) without the GIL.
template <typename T, typename Kernel>
py::array map_backward(const py::array& dy, const py::array& y, const py::object& out_obj,
                       Kernel&& kernel) {
  auto dyc = contiguous<T>(dy);
  auto yc = contiguous<T>(y);
  py::array dx = output_like<T>(dy, dyc, out_obj, "out");
  checks::require_apart_or_same(view_of(dx), "out", view_of(yc), "y");
  const T *pdy = cptr<T>(dyc), *pyv = cptr<T>(yc);
  T* pdx = mptr<T>(dx);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    kernel(pdx, pdy, pyv, ctx);
  }
  return dx;
}

// Rows and columns of an array seen as a matrix over its last axis.
int64_t last_axis(const py::array& a) { return a.ndim() ? a.shape(a.ndim() - 1) : 1; }
int64_t rows_over_last_axis(const py::array& a) {
  const int64_t cols = last_axis(a);
  return cols ? int64_t(a.size()) / cols : 0;
}

// ------------------------------------------------------------ activations
template <typename T>
py::array activation_t(py::array x, Act act, py::object out_obj) {
  const int64_t n = x.size();
  return map_unary<T>(x, out_obj, [&](T* y, const T* px, const cpu::Context& ctx) {
    cpu::activation_forward<T>(y, px, n, act, ctx);
  });
}

py::array activation(py::handle x_h, const std::string& name, py::object out) {
  py::array x = require_array(x_h, "x");
  char k = checks::require_float(view_of(x), "x");
  Act act = parse_act(name);
  return k == 'f' ? activation_t<float>(x, act, out) : activation_t<double>(x, act, out);
}

template <typename T>
py::array activation_backward_t(py::array dy, py::array y, Act act, py::object out_obj) {
  const int64_t n = dy.size();
  return map_backward<T>(dy, y, out_obj,
                         [&](T* pdx, const T* pdy, const T* pyv, const cpu::Context& ctx) {
                           cpu::activation_backward<T>(pdx, pdy, pyv, n, act, ctx);
                         });
}

py::array activation_backward(py::handle dy_h, py::handle y_h, const std::string& name,
                              py::object out) {
  py::array dy, y;
  char k = require_dy_y(dy_h, y_h, &dy, &y);
  Act act = parse_act(name);
  return k == 'f' ? activation_backward_t<float>(dy, y, act, out)
                  : activation_backward_t<double>(dy, y, act, out);
}

// ------------------------------------------------------------ softmax (last axis)
template <typename T>
py::array softmax_t(py::array x, bool log, py::object out_obj) {
  const int64_t rows = rows_over_last_axis(x), cols = last_axis(x);
  return map_unary<T>(x, out_obj, [&](T* y, const T* px, const cpu::Context& ctx) {
    cpu::softmax_forward<T>(y, px, rows, cols, log, ctx);
  });
}

py::array softmax(py::handle x_h, bool log, py::object out) {
  py::array x = require_array(x_h, "x");
  char k = checks::require_float(view_of(x), "x");
  return k == 'f' ? softmax_t<float>(x, log, out) : softmax_t<double>(x, log, out);
}

template <typename T>
py::array softmax_backward_t(py::array dy, py::array y, bool log, py::object out_obj) {
  const int64_t rows = rows_over_last_axis(dy), cols = last_axis(dy);
  return map_backward<T>(dy, y, out_obj,
                         [&](T* pdx, const T* pdy, const T* pyv, const cpu::Context& ctx) {
                           cpu::softmax_backward<T>(pdx, pdy, pyv, rows, cols, log, ctx);
                         });
}

py::array softmax_backward(py::handle dy_h, py::handle y_h, bool log, py::object out) {
  py::array dy, y;
  char k = require_dy_y(dy_h, y_h, &dy, &y);
  return k == 'f' ? softmax_backward_t<float>(dy, y, log, out)
                  : softmax_backward_t<double>(dy, y, log, out);
}

// ------------------------------------------------------------ dropout
template <typename T>
py::array dropout_t(py::array x, double rate, uint64_t seed, bool backward, py::object out_obj) {
  const int64_t n = x.size();
  return map_unary<T>(x, out_obj, [&](T* y, const T* px, const cpu::Context& ctx) {
    if (backward) cpu::dropout_backward<T>(y, px, n, rate, seed, ctx);
    else cpu::dropout_forward<T>(y, px, n, rate, seed, ctx);
  });
}

py::array dropout(py::handle x_h, double rate, uint64_t seed, bool backward, py::object out) {
  py::array x = require_array(x_h, backward ? "dy" : "x");
  char k = checks::require_float(view_of(x), backward ? "dy" : "x");
  checks::dropout_rate(rate);
  return k == 'f' ? dropout_t<float>(x, rate, seed, backward, out)
                  : dropout_t<double>(x, rate, seed, backward, out);
}

// ------------------------------------------------------------ losses
py::array int64_labels(py::handle labels_h, int64_t rows, int64_t cols) {
  py::array labels = require_array(labels_h, "labels");
  checks::labels_dtype(view_of(labels));
  if (checks::labels_are_column(view_of(labels))) labels = labels.attr("reshape")(-1);
  checks::labels_shape(view_of(labels), rows);
  auto lab = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(labels);
  checks::labels_in_range(lab.data(), rows, cols);
  return lab;
}

template <typename T>
py::tuple sparse_xent_t(py::array logits, py::array lab, py::object out_obj, bool want_grad) {
  auto zc = contiguous<T>(logits);
  int64_t rows = logits.shape(0), cols = logits.shape(1);
  py::array d;
  T* pd = nullptr;
  if (want_grad) { d = output_like<T>(logits, zc, out_obj, "out"); pd = mptr<T>(d); }
  const T* pz = cptr<T>(zc);
  const int64_t* pl = static_cast<const int64_t*>(lab.data());
  double sum;
  int64_t correct = 0;
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    double scale = rows ? 1.0 / double(rows) : 0.0;
    sum = cpu::sparse_softmax_xent<T>(pd, &correct, pz, pl, rows, cols, scale, ctx);
  }
  double mean = rows ? sum / double(rows) : std::numeric_limits<double>::quiet_NaN();
  return py::make_tuple(mean, want_grad ? py::object(d) : py::object(py::none()), correct);
}

py::tuple sparse_xent(py::handle logits_h, py::handle labels_h, py::object out, bool want_grad) {
  py::array logits = require_array(logits_h, "logits");
  char k = checks::sparse_logits(view_of(logits));
  py::array lab = int64_labels(labels_h, logits.shape(0), logits.shape(1));
  return k == 'f' ? sparse_xent_t<float>(logits, lab, out, want_grad)
                  : sparse_xent_t<double>(logits, lab, out, want_grad);
}

enum class LossKind { softmax_xent, sigmoid_xent, categorical_xent, binary_xent, mse, mae };

template <typename T>
py::tuple loss_t(LossKind kind, py::array pred, py::array target, py::object out_obj,
                 bool want_grad, double eps) {
  auto pc = contiguous<T>(pred);
  auto tc = contiguous<T>(target);
  py::array d;
  T* pd = nullptr;
  if (want_grad) {
    d = output_like<T>(pred, pc, out_obj, "out");
    checks::require_apart_or_same(view_of(d), "out", view_of(tc), "y_true");
    pd = mptr<T>(d);
  }
  const T *pp = cptr<T>(pc), *pt = cptr<T>(tc);
  const int64_t n = pc.size();
  const bool rowwise = kind == LossKind::softmax_xent || kind == LossKind::categorical_xent;
  const int64_t cols = last_axis(pred), rows = rows_over_last_axis(pred);
  const int64_t count = rowwise ? rows : n;  // the mean is over samples (rows) or elements
  double sum = 0;
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    double scale = count ? 1.0 / double(count) : 0.0;
    switch (kind) {
      case LossKind::softmax_xent:
        sum = cpu::softmax_xent<T>(pd, pp, pt, rows, cols, scale, ctx); break;
      case LossKind::categorical_xent:
        sum = cpu::categorical_xent<T>(pd, pp, pt, rows, cols, eps, scale, ctx); break;
      case LossKind::sigmoid_xent: sum = cpu::sigmoid_xent<T>(pd, pp, pt, n, scale); break;
      case LossKind::binary_xent: sum = cpu::binary_xent<T>(pd, pp, pt, n, eps, scale); break;
      case LossKind::mse: sum = cpu::squared_error<T>(pd, pp, pt, n, scale); break;
      case LossKind::mae: sum = cpu::absolute_error<T>(pd, pp, pt, n, scale); break;
    }
  }
  double mean = count ? sum / double(count) : std::numeric_limits<double>::quiet_NaN();
  return py::make_tuple(mean, want_grad ? py::object(d) : py::object(py::none()));
}

py::tuple loss(const std::string& name, py::handle pred_h, py::handle target_h, py::object out,
               bool want_grad, double eps) {
  LossKind kind = checks::parse_loss<LossKind>(name);
  py::array pred = require_array(pred_h, "y_pred");
  py::array target = require_array(target_h, "y_true");
  char k = checks::loss_operands(view_of(pred), view_of(target));
  return k == 'f' ? loss_t<float>(kind, pred, target, out, want_grad, eps)
                  : loss_t<double>(kind, pred, target, out, want_grad, eps);
}

// ------------------------------------------------------------ optimizers
// param (updated in place) and its grad; returns grad, sets *p and the dtype kind.
py::array check_param_grad(py::handle p_h, py::handle g_h, py::array* p, char* kind) {
  *p = require_array(p_h, "param");
  py::array g = require_array(g_h, "grad");
  *kind = checks::param_and_grad(view_of(*p), view_of(g));
  return g;
}

// A slot of the optimizer (m, v, ...), updated in place like param.
py::array state_array(py::handle h, const char* name, const py::array& p) {
  py::array a = require_array(h, name);
  checks::update_state(view_of(a), name, view_of(p));
  return a;
}

// A momentum slot: needed only when momentum != 0 (else an unused empty array).
py::array momentum_state(const py::object& obj, const char* name, const py::array& p,
                         double momentum, const char* missing) {
  if (!checks::momentum_slot(obj, momentum, missing)) return py::array();
  return state_array(obj, name, p);
}

void sgd_update(py::handle p_h, py::handle g_h, py::object m_obj, double lr, double momentum,
                bool nesterov, double lr_wd) {
  char k;
  py::array p;
  py::array g = check_param_grad(p_h, g_h, &p, &k);
  py::array m = momentum_state(m_obj, "m", p, momentum, checks::kSgdSlotMissing);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    T* pp = mptr<T>(p);
    T* pm = m ? mptr<T>(m) : nullptr;
    const T* pg = cptr<T>(gc);
    int64_t n = p.size();
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::sgd_update<T>(pp, pm, pg, n, lr, momentum, nesterov, lr_wd, ctx);
  };
  if (k == 'f') run(float{}); else run(double{});
}

void adam_update(py::handle p_h, py::handle g_h, py::handle m_h, py::handle v_h, double alpha,
                 double b1, double b2, double eps, double lr_wd) {
  char k;
  py::array p;
  py::array g = check_param_grad(p_h, g_h, &p, &k);
  py::array m = state_array(m_h, "m", p), v = state_array(v_h, "v", p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    T *pp = mptr<T>(p), *pm = mptr<T>(m), *pv = mptr<T>(v);
    const T* pg = cptr<T>(gc);
    int64_t n = p.size();
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::adam_update<T>(pp, pm, pv, pg, n, alpha, b1, b2, eps, lr_wd, ctx);
  };
  if (k == 'f') run(float{}); else run(double{});
}

// Adam on several parameters in one call (one parallel region for all of them).
// lr_wds: one lr*weight_decay per parameter.
void adam_update_multi(const py::list& params, const py::list& grads, const py::list& ms,
                       const py::list& vs, double alpha, double b1, double b2, double eps,
                       const std::vector<double>& lr_wds) {
  const size_t count = params.size();
  if (grads.size() != count || ms.size() != count || vs.size() != count ||
      lr_wds.size() != count)
    throw py::value_error("adam_update_multi: params, grads, m, v and lr_wd must have the same "
                          "length, got " + std::to_string(count) + ", " +
                          std::to_string(grads.size()) + ", " + std::to_string(ms.size()) + ", " +
                          std::to_string(vs.size()) + " and " + std::to_string(lr_wds.size()));
  std::vector<py::array> keep;   // the arrays (and contiguous copies of grads) in use
  keep.reserve(4 * count);
  char kind = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    const std::string pn = "params" + at, gn = "grads" + at, mn = "m" + at, vn = "v" + at;
    py::array p = require_array(params[i], pn.c_str());
    py::array g = require_array(grads[i], gn.c_str());
    const char k = checks::param_and_grad(view_of(p), view_of(g), pn.c_str(), gn.c_str());
    if (i > 0 && k != kind)
      throw py::type_error("adam_update_multi: " + pn + " has another dtype than params[0]; "
                           "all parameters of one call must share a dtype");
    kind = k;
    py::array m = require_array(ms[i], mn.c_str()), v = require_array(vs[i], vn.c_str());
    checks::update_state(view_of(m), mn.c_str(), view_of(p), pn.c_str());
    checks::update_state(view_of(v), vn.c_str(), view_of(p), pn.c_str());
    keep.insert(keep.end(), {p, g, m, v});
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    std::vector<cpu::AdamTensor<T>> ts(count);
    for (size_t i = 0; i < count; ++i) {
      py::array& g = keep[4 * i + 1];
      g = contiguous<T>(g);
      ts[i] = {mptr<T>(keep[4 * i]), mptr<T>(keep[4 * i + 2]), mptr<T>(keep[4 * i + 3]),
               cptr<T>(g), int64_t(keep[4 * i].size()), lr_wds[i]};
    }
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::adam_update_multi<T>(ts.data(), int64_t(count), alpha, b1, b2, eps, ctx);
  };
  if (kind == 'd') run(double{}); else if (count) run(float{});
}

void rmsprop_update(py::handle p_h, py::handle g_h, py::handle v_h, py::object mom_obj, double lr,
                    double rho, double momentum, double eps, double lr_wd) {
  char k;
  py::array p;
  py::array g = check_param_grad(p_h, g_h, &p, &k);
  py::array v = state_array(v_h, "v", p);
  py::array mom = momentum_state(mom_obj, "momentum_slot", p, momentum,
                                 checks::kRmspropSlotMissing);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    T *pp = mptr<T>(p), *pv = mptr<T>(v);
    T* pmo = mom ? mptr<T>(mom) : nullptr;
    const T* pg = cptr<T>(gc);
    int64_t n = p.size();
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::rmsprop_update<T>(pp, pv, pmo, pg, n, lr, rho, momentum, eps, lr_wd, ctx);
  };
  if (k == 'f') run(float{}); else run(double{});
}

}  // namespace

void bind_nn(py::module_& m) {
  m.def("activation", &activation, py::arg("x"), py::arg("activation"), py::arg("out") = py::none());
  m.def("activation_backward", &activation_backward, py::arg("dy"), py::arg("y"),
        py::arg("activation"), py::arg("out") = py::none());
  m.def("softmax", &softmax, py::arg("x"), py::arg("log") = false, py::arg("out") = py::none());
  m.def("softmax_backward", &softmax_backward, py::arg("dy"), py::arg("y"),
        py::arg("log") = false, py::arg("out") = py::none());
  m.def("dropout", &dropout, py::arg("x"), py::arg("rate"), py::arg("seed"),
        py::arg("backward") = false, py::arg("out") = py::none());
  m.def("sparse_softmax_cross_entropy", &sparse_xent, py::arg("logits"), py::arg("labels"),
        py::arg("out") = py::none(), py::arg("want_grad") = true,
        "(mean_loss, dlogits or None, n_correct)");
  m.def("loss", &loss, py::arg("kind"), py::arg("y_pred"), py::arg("y_true"),
        py::arg("out") = py::none(), py::arg("want_grad") = true, py::arg("eps") = 1e-7,
        "(mean_loss, dy_pred or None)");
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("lr_wd"));
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("alpha"), py::arg("beta_1"), py::arg("beta_2"),
        py::arg("epsilon"), py::arg("lr_wd"));
  m.def("adam_update_multi", &adam_update_multi, py::arg("params"), py::arg("grads"),
        py::arg("m"), py::arg("v"), py::arg("alpha"), py::arg("beta_1"), py::arg("beta_2"),
        py::arg("epsilon"), py::arg("lr_wd"));
  m.def("rmsprop_update", &rmsprop_update, py::arg("param"), py::arg("grad"), py::arg("v"),
        py::arg("momentum_slot"), py::arg("lr"), py::arg("rho"), py::arg("momentum"),
        py::arg("epsilon"), py::arg("lr_wd"));
}

}  // namespace fastdl::bind
