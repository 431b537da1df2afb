// _cuda activations, softmax, losses, dropout and optimizer updates, with the
// names, argument orders and results of the CPU ops (python/fastdl/ops.py calls
// both the same way).
#include <pybind11/numpy.h>

#include <limits>
#include <string>
#include <vector>

#include "bindings_cuda/cuda_array.h"
#include "cuda/nn/nn.h"

namespace fastdl::bind_cuda {
namespace {

using cuda::Act;

Act parse_act(const std::string& s) { return checks::parse_elementwise_act<Act>(s); }

// The array an op writes: `out` when given (checks::out_like against ref and
// the buffer `in` the kernel reads), else a new one shaped like ref.
DevArray output_like(const DevArray& ref, const DevArray& in, py::handle out_h,
                     const char* name) {
  if (out_h.is_none()) return empty(ref.shape, ref.float_code());
  DevArray out = device_array(out_h, name);
  checks::out_like(out.view(), name, ref.view(), in.view(), "the input");
  return out;
}

// ------------------------------------------------------------ activations
py::object activation_fwd(py::handle x_h, Act act, py::handle out_h, const char* op) {
  DevArray x = device_array(x_h, "x");
  const char code = checks::require_float(x.view(), "x");
  x = contiguous(x, "x");
  DevArray y = output_like(x, x, out_h, "out");
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::activation_forward<float>(y.data<float>(), x.data<const float>(),
                                                        x.numel(), act, s)
                      : cuda::activation_forward<double>(y.data<double>(), x.data<const double>(),
                                                         x.numel(), act, s);
  }
  check_cuda(err, op);
  return y.obj;
}

// dx from dy and the forward output y (relu: y > 0, sigmoid: y(1-y), tanh: 1-y^2).
py::object activation_bwd(py::handle dy_h, py::handle y_h, const std::string& name,
                          py::handle out_h) {
  DevArray dy = device_array(dy_h, "dy");
  DevArray y = device_array(y_h, "y");
  const char code = checks::dy_and_y(dy.view(), y.view());
  Act act = parse_act(name);
  dy = contiguous(dy, "dy");
  y = contiguous(y, "y");
  DevArray dx = output_like(dy, dy, out_h, "out");
  checks::require_apart_or_same(dx.view(), "out", y.view(), "y");
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::activation_backward<float>(dx.data<float>(), dy.data<const float>(),
                                                 y.data<const float>(), dy.numel(), act, s)
              : cuda::activation_backward<double>(dx.data<double>(), dy.data<const double>(),
                                                  y.data<const double>(), dy.numel(), act, s);
  }
  check_cuda(err, "activation_backward");
  return dx.obj;
}

// ------------------------------------------------------------ softmax
struct AxisView { int64_t outer = 1, len = 1, inner = 1; };

AxisView split_axis(const DevArray& x, int axis, const char* op) {
  const int nd = x.ndim();
  const int a = checks::softmax_axis(x.view(), axis, op);
  AxisView v;
  for (int i = 0; i < a; ++i) v.outer *= x.shape[i];
  v.len = x.shape[a];
  for (int i = a + 1; i < nd; ++i) v.inner *= x.shape[i];
  return v;
}

py::object softmax_fwd(py::handle x_h, int axis, bool log, py::handle out_h) {
  const char* op = log ? "log_softmax" : "softmax";
  DevArray x = device_array(x_h, "x");
  const char code = checks::require_float(x.view(), "x");
  AxisView v = split_axis(x, axis, op);
  x = contiguous(x, "x");
  DevArray y = output_like(x, x, out_h, "out");
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::softmax<float>(y.data<float>(), x.data<const float>(), v.outer,
                                             v.len, v.inner, log, s)
                      : cuda::softmax<double>(y.data<double>(), x.data<const double>(), v.outer,
                                              v.len, v.inner, log, s);
  }
  check_cuda(err, op);
  return y.obj;
}

py::object softmax_bwd(py::handle dy_h, py::handle y_h, int axis, bool log,
                       py::handle out_h) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  DevArray dy = device_array(dy_h, "dy");
  DevArray y = device_array(y_h, "y");
  const char code = checks::dy_and_y(dy.view(), y.view());
  AxisView v = split_axis(dy, axis, op);
  dy = contiguous(dy, "dy");
  y = contiguous(y, "y");
  DevArray dx = output_like(dy, dy, out_h, "out");
  checks::require_apart_or_same(dx.view(), "out", y.view(), "y");
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::softmax_backward<float>(dx.data<float>(), dy.data<const float>(),
                                              y.data<const float>(), v.outer, v.len, v.inner, log, s)
              : cuda::softmax_backward<double>(dx.data<double>(), dy.data<const double>(),
                                               y.data<const double>(), v.outer, v.len, v.inner,
                                               log, s);
  }
  check_cuda(err, op);
  return dx.obj;
}

// ------------------------------------------------------------ losses
py::module_ cupy_module() { return py::module_::import("cupy"); }

// A few doubles of a device array, on the host (cupy.asnumpy waits for the stream).
std::vector<double> to_host(const DevArray& a) {
  py::array_t<double> h = cupy_module().attr("asnumpy")(a.obj);
  auto r = h.unchecked<1>();
  std::vector<double> v(size_t(r.shape(0)));
  for (py::ssize_t i = 0; i < r.shape(0); ++i) v[size_t(i)] = r(i);
  return v;
}

// labels as the CPU takes them: any integer dtype, (N,) or (N, 1).
DevArray labels_of(py::handle labels_h, int64_t rows) {
  DevArray lab = device_array(labels_h, "labels");
  checks::labels_dtype(lab.view());
  py::object obj = lab.obj;
  if (checks::labels_are_column(lab.view())) obj = obj.attr("reshape")(-1);
  if (!((lab.kind == 'i' && (lab.itemsize == 4 || lab.itemsize == 8))))
    obj = obj.attr("astype")("int64");
  lab = device_array(obj, "labels");
  checks::labels_shape(lab.view(), rows);
  return contiguous(lab, "labels");
}

// The first out-of-range label, named as on the CPU (only run on that error).
[[noreturn]] void bad_label(const DevArray& lab, int64_t cols) {
  py::array_t<int64_t> h = py::array_t<int64_t>::ensure(
      cupy_module().attr("asnumpy")(lab.obj).attr("astype")("int64"));
  checks::labels_in_range(h.data(), int64_t(h.size()), cols);
  throw py::value_error("labels are out of range for " + std::to_string(cols) + " classes");
}

// (mean_loss, dlogits or None, n_correct), as the CPU's sparse_softmax_cross_entropy.
py::tuple sparse_xent(py::handle logits_h, py::handle labels_h, py::handle out_h,
                      bool want_grad) {
  DevArray logits = device_array(logits_h, "logits");
  const char code = checks::sparse_logits(logits.view());
  logits = contiguous(logits, "logits");
  const int64_t N = logits.shape[0], C = logits.shape[1];
  DevArray lab = labels_of(labels_h, N);
  DevArray d;
  if (want_grad) d = output_like(logits, logits, out_h, "out");
  DevArray stats = empty({3}, 'd'), rows = empty({3 * N}, 'd');
  const double scale = N ? 1.0 / double(N) : 0.0;
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    const bool l32 = lab.itemsize == 4;
    if (code == 'f')
      err = l32 ? cuda::sparse_softmax_xent<float, int32_t>(
                      d.data<float>(), stats.data<double>(), rows.data<double>(),
                      logits.data<const float>(), lab.data<const int32_t>(), N, C, scale, s)
                : cuda::sparse_softmax_xent<float, int64_t>(
                      d.data<float>(), stats.data<double>(), rows.data<double>(),
                      logits.data<const float>(), lab.data<const int64_t>(), N, C, scale, s);
    else
      err = l32 ? cuda::sparse_softmax_xent<double, int32_t>(
                      d.data<double>(), stats.data<double>(), rows.data<double>(),
                      logits.data<const double>(), lab.data<const int32_t>(), N, C, scale, s)
                : cuda::sparse_softmax_xent<double, int64_t>(
                      d.data<double>(), stats.data<double>(), rows.data<double>(),
                      logits.data<const double>(), lab.data<const int64_t>(), N, C, scale, s);
  }
  check_cuda(err, "sparse_softmax_cross_entropy");
  std::vector<double> st = to_host(stats);
  if (st[2] > 0) bad_label(lab, C);
  double mean = N ? st[0] / double(N) : std::numeric_limits<double>::quiet_NaN();
  return py::make_tuple(mean, want_grad ? d.obj : py::object(py::none()), int64_t(st[1]));
}

// (mean_loss, dy_pred or None), as the CPU's loss(kind, ...).
py::tuple loss_entry(const std::string& name, py::handle pred_h, py::handle target_h,
                     py::handle out_h, bool want_grad, double eps) {
  cuda::LossKind kind = checks::parse_loss<cuda::LossKind>(name);
  DevArray pred = device_array(pred_h, "y_pred");
  DevArray target = device_array(target_h, "y_true");
  const char code = checks::loss_operands(pred.view(), target.view());
  pred = contiguous(pred, "y_pred");
  target = contiguous(target, "y_true");
  const int64_t n = pred.numel();
  const bool rowwise =
      kind == cuda::LossKind::softmax_xent || kind == cuda::LossKind::categorical_xent;
  const int64_t cols = pred.ndim() ? pred.shape.back() : 1;
  const int64_t rows = cols ? n / cols : 0;
  const int64_t count = rowwise ? rows : n;
  DevArray d;
  if (want_grad) {
    d = output_like(pred, pred, out_h, "out");
    checks::require_apart_or_same(d.view(), "out", target.view(), "y_true");
  }
  DevArray sum = empty({1}, 'd'), terms = empty({rowwise ? rows : n}, 'd');
  const double scale = count ? 1.0 / double(count) : 0.0;
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::loss<float>(kind, d.data<float>(), sum.data<double>(), terms.data<double>(),
                                  pred.data<const float>(), target.data<const float>(), rows, cols,
                                  eps, scale, s)
              : cuda::loss<double>(kind, d.data<double>(), sum.data<double>(),
                                   terms.data<double>(), pred.data<const double>(),
                                   target.data<const double>(), rows, cols, eps, scale, s);
  }
  check_cuda(err, "loss");
  double total = to_host(sum)[0];
  double mean = count ? total / double(count) : std::numeric_limits<double>::quiet_NaN();
  return py::make_tuple(mean, want_grad ? d.obj : py::object(py::none()));
}

// ------------------------------------------------------------ dropout
// seed: any Python int, taken modulo 2^64 like the CPU op.
uint64_t seed_of(py::handle seed) {
  PyObject* index = PyNumber_Index(seed.ptr());  // TypeError for anything but an int
  if (!index) throw py::error_already_set();
  py::int_ v = py::reinterpret_steal<py::int_>(index);
  py::int_ masked = v.attr("__and__")(py::int_(py::reinterpret_steal<py::object>(
      PyLong_FromUnsignedLongLong(0xFFFFFFFFFFFFFFFFull))));
  return masked.cast<uint64_t>();
}

py::object dropout_entry(py::handle x_h, double rate, py::handle seed_h, py::handle out_h,
                         bool backward) {
  const char* xname = backward ? "dy" : "x";
  DevArray x = device_array(x_h, xname);
  const char code = checks::require_float(x.view(), xname);
  checks::dropout_rate(rate);
  uint64_t seed = seed_of(seed_h);
  x = contiguous(x, xname);
  DevArray y = output_like(x, x, out_h, "out");
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::dropout<float>(y.data<float>(), x.data<const float>(), x.numel(),
                                             rate, seed, s)
                      : cuda::dropout<double>(y.data<double>(), x.data<const double>(), x.numel(),
                                              rate, seed, s);
  }
  check_cuda(err, backward ? "dropout_backward" : "dropout");
  return y.obj;
}

// ------------------------------------------------------------ optimizers
// Parameters and slots are updated in place, so they must be contiguous and
// writeable, of the parameter's dtype and shape; the gradient may be any layout.
DevArray state_of(py::handle h, const char* name, const DevArray& p) {
  DevArray a = device_array(h, name);
  checks::update_state(a.view(), name, p.view());
  return a;
}

// param (updated in place) and its gradient (any layout; made contiguous).
DevArray param_and_grad(py::handle p_h, py::handle g_h, DevArray* g) {
  DevArray p = device_array(p_h, "param");
  *g = device_array(g_h, "grad");
  checks::param_and_grad(p.view(), g->view());
  *g = contiguous(*g, "grad");
  return p;
}

void sgd_entry(py::handle p_h, py::handle g_h, py::handle m_h, double lr, double momentum,
               bool nesterov, double lr_wd) {
  DevArray g;
  DevArray p = param_and_grad(p_h, g_h, &g);
  DevArray m;
  if (checks::momentum_slot(m_h, momentum, checks::kSgdSlotMissing)) m = state_of(m_h, "m", p);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::sgd_update<float>(p.data<float>(), m.data<float>(), g.data<const float>(),
                                        p.numel(), lr, momentum, nesterov, lr_wd, s)
              : cuda::sgd_update<double>(p.data<double>(), m.data<double>(),
                                         g.data<const double>(), p.numel(), lr, momentum,
                                         nesterov, lr_wd, s);
  }
  check_cuda(err, "sgd_update");
}

void adam_entry(py::handle p_h, py::handle g_h, py::handle m_h, py::handle v_h, double alpha,
                double beta_1, double beta_2, double epsilon, double lr_wd) {
  DevArray g;
  DevArray p = param_and_grad(p_h, g_h, &g);
  DevArray m = state_of(m_h, "m", p), v = state_of(v_h, "v", p);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::adam_update<float>(p.data<float>(), m.data<float>(), v.data<float>(),
                                         g.data<const float>(), p.numel(), alpha, beta_1, beta_2,
                                         epsilon, lr_wd, s)
              : cuda::adam_update<double>(p.data<double>(), m.data<double>(), v.data<double>(),
                                          g.data<const double>(), p.numel(), alpha, beta_1,
                                          beta_2, epsilon, lr_wd, s);
  }
  check_cuda(err, "adam_update");
}

void rmsprop_entry(py::handle p_h, py::handle g_h, py::handle v_h, py::handle mom_h, double lr,
                   double rho, double momentum, double epsilon, double lr_wd) {
  DevArray g;
  DevArray p = param_and_grad(p_h, g_h, &g);
  DevArray v = state_of(v_h, "v", p);
  DevArray mom;
  if (checks::momentum_slot(mom_h, momentum, checks::kRmspropSlotMissing))
    mom = state_of(mom_h, "momentum_slot", p);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::rmsprop_update<float>(p.data<float>(), v.data<float>(), mom.data<float>(),
                                            g.data<const float>(), p.numel(), lr, rho, momentum,
                                            epsilon, lr_wd, s)
              : cuda::rmsprop_update<double>(p.data<double>(), v.data<double>(),
                                             mom.data<double>(), g.data<const double>(), p.numel(),
                                             lr, rho, momentum, epsilon, lr_wd, s);
  }
  check_cuda(err, "rmsprop_update");
}

}  // namespace

// Names, argument orders and results as ops.py calls them (the same as the CPU ops).
void bind_cuda_nn(py::module_& m) {
  auto none = py::none();
  m.def("relu", [](py::handle x, py::handle out) { return activation_fwd(x, Act::relu, out, "relu"); },
        py::arg("x"), py::kw_only(), py::arg("out") = none);
  m.def("sigmoid",
        [](py::handle x, py::handle out) { return activation_fwd(x, Act::sigmoid, out, "sigmoid"); },
        py::arg("x"), py::kw_only(), py::arg("out") = none);
  m.def("tanh", [](py::handle x, py::handle out) { return activation_fwd(x, Act::tanh, out, "tanh"); },
        py::arg("x"), py::kw_only(), py::arg("out") = none);
  m.def("activation_backward", &activation_bwd, py::arg("dy"), py::arg("y"), py::arg("activation"),
        py::kw_only(), py::arg("out") = none, "dL/dx from dy and the forward output y");
  m.def("softmax",
        [](py::handle x, int axis, py::handle out) { return softmax_fwd(x, axis, false, out); },
        py::arg("x"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = none);
  m.def("log_softmax",
        [](py::handle x, int axis, py::handle out) { return softmax_fwd(x, axis, true, out); },
        py::arg("x"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = none);
  m.def("softmax_backward",
        [](py::handle dy, py::handle y, int axis, py::handle out) {
          return softmax_bwd(dy, y, axis, false, out);
        },
        py::arg("dy"), py::arg("y"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = none);
  m.def("log_softmax_backward",
        [](py::handle dy, py::handle y, int axis, py::handle out) {
          return softmax_bwd(dy, y, axis, true, out);
        },
        py::arg("dy"), py::arg("y"), py::arg("axis") = -1, py::kw_only(), py::arg("out") = none);
  m.def("dropout",
        [](py::handle x, double rate, py::handle seed, py::handle out) {
          return dropout_entry(x, rate, seed, out, false);
        },
        py::arg("x"), py::arg("rate"), py::arg("seed"), py::kw_only(), py::arg("out") = none,
        "x / (1 - rate) where the CPU's counter hash of (seed, i) keeps it, else 0");
  m.def("dropout_backward",
        [](py::handle dy, double rate, py::handle seed, py::handle out) {
          return dropout_entry(dy, rate, seed, out, true);
        },
        py::arg("dy"), py::arg("rate"), py::arg("seed"), py::kw_only(), py::arg("out") = none,
        "The same mask applied to dy");
  m.def("sparse_softmax_cross_entropy",
        [](py::handle logits, py::handle labels, py::handle out) {
          py::tuple r = sparse_xent(logits, labels, out, true);
          return py::make_tuple(r[0], r[1]);
        },
        py::arg("logits"), py::arg("labels"), py::kw_only(), py::arg("out") = none,
        "(mean_loss, dlogits)");
  m.def("sparse_xent", &sparse_xent, py::arg("logits"), py::arg("labels"),
        py::arg("out") = none, py::arg("want_grad") = true,
        "(mean_loss, dlogits or None, n_correct)");
  m.def("loss", &loss_entry, py::arg("kind"), py::arg("y_pred"), py::arg("y_true"),
        py::arg("out") = none, py::arg("want_grad") = true, py::arg("eps") = 1e-7,
        "(mean_loss, dy_pred or None)");
  m.def("sgd_update", &sgd_entry, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("lr"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("lr_wd"));
  m.def("adam_update", &adam_entry, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("alpha"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"),
        py::arg("lr_wd"));
  m.def("rmsprop_update", &rmsprop_entry, py::arg("param"), py::arg("grad"), py::arg("v"),
        py::arg("momentum_slot"), py::arg("lr"), py::arg("rho"), py::arg("momentum"),
        py::arg("epsilon"), py::arg("lr_wd"));
}

}  // namespace fastdl::bind_cuda
