// _cuda activations, softmax, loss, dropout and optimizer updates.
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "common/cuda_optimizer.h"
#include "cuda/nn.h"

namespace fastdl::bind_cuda {
namespace {

using cuda::Act;

// ------------------------------------------------------------ activations
py::object activation_fwd(py::handle x_h, Act act, const char* op) {
  DevArray x = contiguous_array(x_h, "x");
  char code = float_code(x, "x");
  DevArray y = empty(x.shape, code);
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

// y_name: "x" for relu (x > 0 iff relu(x) > 0), "y" for sigmoid and tanh.
py::object activation_bwd(py::handle dy_h, py::handle y_h, Act act, const char* y_name,
                          const char* op) {
  DevArray dy = contiguous_array(dy_h, "dy");
  DevArray y = contiguous_array(y_h, y_name);
  char code = float_code(dy, "dy");
  require_same_dtype(y, y_name, dy, "dy");
  require_shape(y, dy.shape, y_name);
  DevArray dx = empty(dy.shape, code);
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
  check_cuda(err, op);
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

py::object softmax_fwd(py::handle x_h, int axis, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  DevArray x = contiguous_array(x_h, "x");
  char code = float_code(x, "x");
  AxisView v = split_axis(x, axis, op);
  DevArray y = empty(x.shape, code);
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

py::object softmax_bwd(py::handle dy_h, py::handle y_h, int axis, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  DevArray dy = contiguous_array(dy_h, "dy");
  DevArray y = contiguous_array(y_h, "y");
  char code = float_code(dy, "dy");
  require_same_dtype(y, "y", dy, "dy");
  require_shape(y, dy.shape, "y");
  AxisView v = split_axis(dy, axis, op);
  DevArray dx = empty(dy.shape, code);
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

// Sum over every axis but the last: the bias gradient of Dense / Conv2D.
py::object bias_grad(py::handle dy_h) {
  DevArray dy = contiguous_array(dy_h, "dy");
  char code = float_code(dy, "dy");
  if (dy.ndim() < 1) throw py::value_error("bias_grad: dy must have at least 1 dimension");
  int64_t n = dy.shape.back(), m = 1;
  for (int i = 0; i + 1 < dy.ndim(); ++i) m = checked_mul(m, dy.shape[i], "bias_grad");
  DevArray out = empty({n}, code);
  DevArray partial = empty({cuda::sum_rows_partials(m), n}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::sum_rows<float>(out.data<float>(), dy.data<const float>(),
                                              partial.data<float>(), m, n, false, s)
                      : cuda::sum_rows<double>(out.data<double>(), dy.data<const double>(),
                                               partial.data<double>(), m, n, false, s);
  }
  check_cuda(err, "bias_grad");
  return out.obj;
}

// ------------------------------------------------------------ loss
py::tuple sparse_xent(py::handle logits_h, py::handle labels_h) {
  DevArray logits = contiguous_array(logits_h, "logits");
  DevArray labels = contiguous_array(labels_h, "labels");
  char code = float_code(logits, "logits");
  require_ndim(logits, 2, "logits");
  if ((labels.kind != 'i' && labels.kind != 'u') || (labels.itemsize != 4 && labels.itemsize != 8))
    throw py::type_error("labels must be int32 or int64, got " +
                         py::str(labels.obj.attr("dtype")).cast<std::string>());
  if (labels.kind == 'u' && labels.itemsize == 8)
    throw py::type_error("labels must be int32 or int64, got uint64");
  int64_t N = logits.shape[0], C = logits.shape[1];
  require_shape(labels, {N}, "labels");
  DevArray loss = empty({}, code);
  DevArray dlogits = empty({N, C}, code);
  DevArray rows = empty({N}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    bool l32 = labels.itemsize == 4;  // uint32 labels < 2^31 read the same as int32 for C < 2^31
    if (code == 'f')
      err = l32 ? cuda::sparse_softmax_cross_entropy<float, int32_t>(
                      loss.data<float>(), dlogits.data<float>(), rows.data<float>(),
                      logits.data<const float>(), labels.data<const int32_t>(), N, C, s)
                : cuda::sparse_softmax_cross_entropy<float, int64_t>(
                      loss.data<float>(), dlogits.data<float>(), rows.data<float>(),
                      logits.data<const float>(), labels.data<const int64_t>(), N, C, s);
    else
      err = l32 ? cuda::sparse_softmax_cross_entropy<double, int32_t>(
                      loss.data<double>(), dlogits.data<double>(), rows.data<double>(),
                      logits.data<const double>(), labels.data<const int32_t>(), N, C, s)
                : cuda::sparse_softmax_cross_entropy<double, int64_t>(
                      loss.data<double>(), dlogits.data<double>(), rows.data<double>(),
                      logits.data<const double>(), labels.data<const int64_t>(), N, C, s);
  }
  check_cuda(err, "sparse_softmax_cross_entropy");
  return py::make_tuple(loss.obj, dlogits.obj);
}

// ------------------------------------------------------------ dropout
py::object dropout_entry(py::handle x_h, double rate, uint64_t seed, const char* op,
                         const char* xname) {
  DevArray x = contiguous_array(x_h, xname);
  char code = float_code(x, xname);
  if (!(rate >= 0.0 && rate <= 1.0))
    throw py::value_error(std::string(op) + ": rate must be in [0, 1], got " + std::to_string(rate));
  DevArray y = empty(x.shape, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::dropout<float>(y.data<float>(), x.data<const float>(), x.numel(),
                                             rate, seed, s)
                      : cuda::dropout<double>(y.data<double>(), x.data<const double>(), x.numel(),
                                              rate, seed, s);
  }
  check_cuda(err, op);
  return y.obj;
}

// ------------------------------------------------------------ optimizers
// The parameter and its slots are updated in place, so they must be contiguous,
// writeable and of the parameter's dtype and shape; the gradient may be any layout.
DevArray slot(py::handle h, const char* name, const DevArray& p) {
  DevArray a = device_array(h, name);
  require_same_dtype(a, name, p, "param");
  require_shape(a, p.shape, name);
  require_writeable(a, name);
  if (!a.c_contiguous()) throw py::value_error(std::string(name) + " must be C-contiguous");
  return a;
}

DevArray param_of(py::handle h) {
  DevArray p = device_array(h, "param");
  float_code(p, "param");
  require_writeable(p, "param");
  if (!p.c_contiguous()) throw py::value_error("param must be C-contiguous");
  return p;
}

DevArray grad_of(py::handle h, const DevArray& p) {
  DevArray g = contiguous_array(h, "grad");
  require_same_dtype(g, "grad", p, "param");
  require_shape(g, p.shape, "grad");
  return g;
}

double decay(py::object wd) { return wd.is_none() ? 0.0 : wd.cast<double>(); }

void sgd_entry(py::handle p_h, py::handle g_h, py::object m_h, double lr, double momentum,
               bool nesterov, py::object weight_decay) {
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
  DevArray m;
  if (!m_h.is_none()) m = slot(m_h, "momentum_buffer", p);
  else if (momentum != 0.0) throw py::value_error("sgd_update: momentum != 0 needs momentum_buffer");
  double wd_lr = decay(weight_decay) * lr;
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::sgd_update<float>(p.data<float>(), m.data<float>(), g.data<const float>(),
                                        p.numel(), lr, momentum, nesterov, wd_lr, s)
              : cuda::sgd_update<double>(p.data<double>(), m.data<double>(),
                                         g.data<const double>(), p.numel(), lr, momentum,
                                         nesterov, wd_lr, s);
  }
  check_cuda(err, "sgd_update");
}

void adam_entry(py::handle p_h, py::handle g_h, py::handle m_h, py::handle v_h, double lr,
                double beta_1, double beta_2, double epsilon, long long step,
                py::object weight_decay) {
  if (step < 1) throw py::value_error("adam_update: step must be >= 1 (1 for the first update)");
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
  DevArray m = slot(m_h, "m", p), v = slot(v_h, "v", p);
  double lr_t = hd::adam_lr_t(lr, beta_1, beta_2, step);
  double wd_lr = decay(weight_decay) * lr;
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::adam_update<float>(p.data<float>(), m.data<float>(), v.data<float>(),
                                         g.data<const float>(), p.numel(), lr_t, beta_1, beta_2,
                                         epsilon, wd_lr, s)
              : cuda::adam_update<double>(p.data<double>(), m.data<double>(), v.data<double>(),
                                          g.data<const double>(), p.numel(), lr_t, beta_1, beta_2,
                                          epsilon, wd_lr, s);
  }
  check_cuda(err, "adam_update");
}

void rmsprop_entry(py::handle p_h, py::handle g_h, py::handle v_h, py::object mom_h, double lr,
                   double rho, double momentum, double epsilon, py::object weight_decay) {
  DevArray p = param_of(p_h), g = grad_of(g_h, p);
  DevArray v = slot(v_h, "velocity", p);
  DevArray mom;
  if (!mom_h.is_none()) mom = slot(mom_h, "momentum_buffer", p);
  else if (momentum > 0.0) throw py::value_error("rmsprop_update: momentum > 0 needs momentum_buffer");
  double wd_lr = decay(weight_decay) * lr;
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = p.float_code() == 'f'
              ? cuda::rmsprop_update<float>(p.data<float>(), v.data<float>(), mom.data<float>(),
                                            g.data<const float>(), p.numel(), lr, rho, momentum,
                                            epsilon, wd_lr, s)
              : cuda::rmsprop_update<double>(p.data<double>(), v.data<double>(),
                                             mom.data<double>(), g.data<const double>(), p.numel(),
                                             lr, rho, momentum, epsilon, wd_lr, s);
  }
  check_cuda(err, "rmsprop_update");
}

}  // namespace

void bind_cuda_nn(py::module_& m) {
  m.def("relu", [](py::handle x) { return activation_fwd(x, Act::relu, "relu"); }, py::arg("x"));
  m.def("sigmoid", [](py::handle x) { return activation_fwd(x, Act::sigmoid, "sigmoid"); },
        py::arg("x"));
  m.def("tanh", [](py::handle x) { return activation_fwd(x, Act::tanh, "tanh"); }, py::arg("x"));
  m.def("relu_backward",
        [](py::handle dy, py::handle x) { return activation_bwd(dy, x, Act::relu, "x", "relu_backward"); },
        py::arg("dy"), py::arg("x"), "dy * (x > 0)");
  m.def("sigmoid_backward",
        [](py::handle dy, py::handle y) {
          return activation_bwd(dy, y, Act::sigmoid, "y", "sigmoid_backward");
        },
        py::arg("dy"), py::arg("y"), "dy * y * (1 - y), y = sigmoid(x)");
  m.def("tanh_backward",
        [](py::handle dy, py::handle y) { return activation_bwd(dy, y, Act::tanh, "y", "tanh_backward"); },
        py::arg("dy"), py::arg("y"), "dy * (1 - y^2), y = tanh(x)");
  m.def("softmax", [](py::handle x, int axis) { return softmax_fwd(x, axis, false); },
        py::arg("x"), py::arg("axis") = -1);
  m.def("log_softmax", [](py::handle x, int axis) { return softmax_fwd(x, axis, true); },
        py::arg("x"), py::arg("axis") = -1);
  m.def("softmax_backward",
        [](py::handle dy, py::handle y, int axis) { return softmax_bwd(dy, y, axis, false); },
        py::arg("dy"), py::arg("y"), py::arg("axis") = -1, "y = softmax(x, axis)");
  m.def("log_softmax_backward",
        [](py::handle dy, py::handle y, int axis) { return softmax_bwd(dy, y, axis, true); },
        py::arg("dy"), py::arg("y"), py::arg("axis") = -1, "y = log_softmax(x, axis)");
  m.def("bias_grad", &bias_grad, py::arg("dy"), "Sum of dy over every axis but the last");
  m.def("sparse_softmax_cross_entropy", &sparse_xent, py::arg("logits"), py::arg("labels"),
        "(mean_loss as a 0-d array, dlogits); an out-of-range label gives NaN");
  m.def("dropout",
        [](py::handle x, double rate, uint64_t seed) {
          return dropout_entry(x, rate, seed, "dropout", "x");
        },
        py::arg("x"), py::arg("rate"), py::arg("seed"),
        "x / (1 - rate) where splitmix64(seed ^ i) >> 40 >= rate * 2^24, else 0");
  m.def("dropout_backward",
        [](py::handle dy, double rate, uint64_t seed) {
          return dropout_entry(dy, rate, seed, "dropout_backward", "dy");
        },
        py::arg("dy"), py::arg("rate"), py::arg("seed"), "The same mask applied to dy");
  m.def("sgd_update", &sgd_entry, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"),
        py::arg("learning_rate"), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
        py::arg("weight_decay") = py::none(), "Keras 3 SGD step, in place");
  m.def("adam_update", &adam_entry, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("learning_rate"), py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
        py::arg("epsilon") = 1e-7, py::arg("step") = 1, py::arg("weight_decay") = py::none(),
        "Keras 3 Adam step (AdamW with weight_decay), in place; step is 1-based");
  m.def("rmsprop_update", &rmsprop_entry, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("momentum_buffer"), py::arg("learning_rate"), py::arg("rho") = 0.9,
        py::arg("momentum") = 0.0, py::arg("epsilon") = 1e-7, py::arg("weight_decay") = py::none(),
        "Keras 3 RMSprop step (not centered), in place");
}

}  // namespace fastdl::bind_cuda
