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

Act parse_act(const std::string& s) {
  if (s == "relu") return Act::relu;
  if (s == "sigmoid") return Act::sigmoid;
  if (s == "tanh") return Act::tanh;
  if (s == "linear") return Act::linear;
  throw py::value_error("activation must be one of 'relu', 'sigmoid', 'tanh', 'linear'; got '" +
                        s + "'");
}

// The array an op writes: `out` when given (same shape and dtype as ref,
// C-contiguous, writeable), else a new one shaped like ref.
DevArray output_like(const DevArray& ref, py::handle out_h, const char* name) {
  if (out_h.is_none()) return empty(ref.shape, ref.float_code());
  DevArray out = device_array(out_h, name);
  require_same_dtype(out, name, ref, "the input");
  require_shape(out, ref.shape, name);
  require_writeable(out, name);
  if (!out.c_contiguous()) throw py::value_error(std::string(name) + " must be C-contiguous");
  return out;
}

// ------------------------------------------------------------ activations
py::object activation_fwd(py::handle x_h, Act act, py::handle out_h, const char* op) {
  DevArray x = contiguous_array(x_h, "x");
  char code = float_code(x, "x");
  DevArray y = output_like(x, out_h, "out");
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
  DevArray dy = contiguous_array(dy_h, "dy");
  DevArray y = contiguous_array(y_h, "y");
  char code = float_code(dy, "dy");
  require_same_dtype(y, "y", dy, "dy");
  require_shape(y, dy.shape, "y");
  Act act = parse_act(name);
  DevArray dx = output_like(dy, out_h, "out");
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
  int nd = x.ndim();
  if (nd == 0) throw py::value_error(std::string(op) + ": x must have at least 1 dimension");
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd)
    throw py::value_error(std::string(op) + ": axis " + std::to_string(axis) +
                          " is out of range for x of shape " + shape_str(x));
  AxisView v;
  for (int i = 0; i < a; ++i) v.outer *= x.shape[i];
  v.len = x.shape[a];
  for (int i = a + 1; i < nd; ++i) v.inner *= x.shape[i];
  return v;
}

py::object softmax_fwd(py::handle x_h, int axis, bool log, py::handle out_h) {
  const char* op = log ? "log_softmax" : "softmax";
  DevArray x = contiguous_array(x_h, "x");
  char code = float_code(x, "x");
  AxisView v = split_axis(x, axis, op);
  DevArray y = output_like(x, out_h, "out");
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
  DevArray dy = contiguous_array(dy_h, "dy");
  DevArray y = contiguous_array(y_h, "y");
  char code = float_code(dy, "dy");
  require_same_dtype(y, "y", dy, "dy");
  require_shape(y, dy.shape, "y");
  AxisView v = split_axis(dy, axis, op);
  DevArray dx = output_like(dy, out_h, "out");
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
  if (lab.kind != 'i' && lab.kind != 'u')
    throw py::type_error("labels must be an integer array (class indices), got dtype " +
                         py::str(lab.obj.attr("dtype")).cast<std::string>() +
                         "; for one-hot or probability targets use categorical cross-entropy");
  py::object obj = lab.obj;
  if (lab.ndim() == 2 && lab.shape[1] == 1) obj = obj.attr("reshape")(-1);
  if (!((lab.kind == 'i' && (lab.itemsize == 4 || lab.itemsize == 8))))
    obj = obj.attr("astype")("int64");
  lab = contiguous_array(obj, "labels");
  if (lab.ndim() != 1 || lab.shape[0] != rows)
    throw py::value_error("labels must have shape (" + std::to_string(rows) +
                          ",) to match logits rows, got " + shape_str(lab));
  return lab;
}

// The CPU's message for the first out-of-range label (only built on that error).
[[noreturn]] void bad_label(const DevArray& lab, int64_t cols) {
  py::array_t<int64_t> h = py::array_t<int64_t>::ensure(
      cupy_module().attr("asnumpy")(lab.obj).attr("astype")("int64"));
  auto r = h.unchecked<1>();
  for (py::ssize_t i = 0; i < r.shape(0); ++i)
    if (r(i) < 0 || r(i) >= cols)
      throw py::value_error("labels[" + std::to_string(i) + "] = " + std::to_string(r(i)) +
                            " is out of range for " + std::to_string(cols) +
                            " classes (expected 0.." + std::to_string(cols - 1) + ")");
  throw py::value_error("labels are out of range for " + std::to_string(cols) + " classes");
}

// (mean_loss, dlogits or None, n_correct), as the CPU's sparse_softmax_cross_entropy.
py::tuple sparse_xent(py::handle logits_h, py::handle labels_h, py::handle out_h,
                      bool want_grad) {
  DevArray logits = contiguous_array(logits_h, "logits");
  char code = float_code(logits, "logits");
  require_ndim(logits, 2, "logits");
  const int64_t N = logits.shape[0], C = logits.shape[1];
  DevArray lab = labels_of(labels_h, N);
  DevArray d;
  if (want_grad) d = output_like(logits, out_h, "out");
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

cuda::LossKind parse_loss(const std::string& s) {
  using K = cuda::LossKind;
  if (s == "softmax_xent") return K::softmax_xent;
  if (s == "sigmoid_xent") return K::sigmoid_xent;
  if (s == "categorical_xent") return K::categorical_xent;
  if (s == "binary_xent") return K::binary_xent;
  if (s == "mse") return K::mse;
  if (s == "mae") return K::mae;
  throw py::value_error("unknown loss kernel '" + s + "'");
}

// (mean_loss, dy_pred or None), as the CPU's loss(kind, ...).
py::tuple loss_entry(const std::string& name, py::handle pred_h, py::handle target_h,
                     py::handle out_h, bool want_grad, double eps) {
  cuda::LossKind kind = parse_loss(name);
  DevArray pred = contiguous_array(pred_h, "y_pred");
  DevArray target = contiguous_array(target_h, "y_true");
  char code = float_code(pred, "y_pred");
  require_same_dtype(target, "y_true", pred, "y_pred");
  if (target.shape != pred.shape)
    throw py::value_error("y_true has shape " + shape_str(target) + " but y_pred has shape " +
                          shape_str(pred) + "; they must match");
  const int64_t n = pred.numel();
  const bool rowwise =
      kind == cuda::LossKind::softmax_xent || kind == cuda::LossKind::categorical_xent;
  const int64_t cols = pred.ndim() ? pred.shape.back() : 1;
  const int64_t rows = cols ? n / cols : 0;
  const int64_t count = rowwise ? rows : n;
  DevArray d;
  if (want_grad) d = output_like(pred, out_h, "out");
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
  py::int_ v = py::reinterpret_borrow<py::object>(seed).attr("__index__")();
  py::int_ masked = v.attr("__and__")(py::int_(py::reinterpret_steal<py::object>(
      PyLong_FromUnsignedLongLong(0xFFFFFFFFFFFFFFFFull))));
  return masked.cast<uint64_t>();
}

py::object dropout_entry(py::handle x_h, double rate, py::handle seed_h, py::handle out_h,
                         bool backward) {
  const char* xname = backward ? "dy" : "x";
  DevArray x = contiguous_array(x_h, xname);
  char code = float_code(x, xname);
  if (!(rate >= 0.0 && rate < 1.0))
    throw py::value_error("dropout rate must be in [0, 1), got " + std::to_string(rate));
  uint64_t seed = seed_of(seed_h);
  DevArray y = output_like(x, out_h, "out");
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
  require_same_dtype(a, name, p, "param");
  require_shape(a, p.shape, name);
  require_writeable(a, name);
  if (!a.c_contiguous())
    throw py::value_error(std::string(name) + " must be C-contiguous (it is updated in place)");
  return a;
}

DevArray param_of(py::handle h) {
  DevArray p = device_array(h, "param");
  float_code(p, "param");
  return state_of(h, "param", p);
}

DevArray grad_of(py::handle h, const DevArray& p) {
  DevArray g = device_array(h, "grad");
  require_same_dtype(g, "grad", p, "param");
  require_shape(g, p.shape, "grad");
  return contiguous(g, "grad");
}

void sgd_entry(py::handle p_h, py::handle g_h, py::handle m_h, double lr, double momentum,
               bool nesterov, double lr_wd) {
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
  DevArray m;
  if (momentum != 0.0) {
    if (m_h.is_none()) throw py::value_error("momentum > 0 needs a momentum slot m");
    m = state_of(m_h, "m", p);
  }
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
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
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
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
  DevArray v = state_of(v_h, "v", p);
  DevArray mom;
  if (momentum != 0.0) {
    if (mom_h.is_none()) throw py::value_error("momentum > 0 needs a momentum slot");
    mom = state_of(mom_h, "momentum_slot", p);
  }
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
