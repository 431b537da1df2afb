// _cuda batch and layer normalization, with the names, arguments and results of
// the CPU ops (csrc/bindings/bind_norm.cpp); the same checks (bindings_common/checks.h).
#include <string>
#include <vector>

#include "bindings_cuda/cuda_array.h"
#include "cuda/nn/batchnorm.h"
#include "cuda/nn/layernorm.h"

namespace fastdl::bind_cuda {
namespace {

// The shared checks of x and its per-channel arguments; returns 'f' or 'd'.
char check_forward(const DevArray& x, const DevArray& gamma, const DevArray& beta,
                   const DevArray& mean, const DevArray& var, bool need_stats, double eps) {
  const View xv = x.view();
  const char k = checks::batchnorm_input(xv, "x");
  checks::batchnorm_channels(gamma.view(), "gamma", xv, false);
  checks::batchnorm_channels(beta.view(), "beta", xv, false);
  checks::batchnorm_channels(mean.view(), "mean", xv, need_stats);
  checks::batchnorm_channels(var.view(), "var", xv, need_stats);
  checks::batchnorm_epsilon(eps);
  return k;
}

DevArray opt_contiguous(const DevArray& a, const char* name) {
  return a.present() ? contiguous(a, name) : a;
}
template <typename T>
const T* cptr(const DevArray& a) { return a.present() ? a.data<const T>() : nullptr; }

void rows_channels(const DevArray& x, int64_t* M, int64_t* C) {
  *C = x.shape.back();
  *M = *C ? x.numel() / *C : 0;
}

DevArray output_for(const DevArray& x, py::handle out_h, const DevArray& in,
                    const char* in_name) {
  if (out_h.is_none()) return empty(x.shape, x.float_code());
  DevArray out = device_array(out_h, "out");
  checks::out_like(out.view(), "out", x.view(), in.view(), in_name);
  return out;
}

py::object batch_norm(py::handle x_h, py::handle gamma_h, py::handle beta_h, double eps,
                      py::handle out_h) {
  DevArray x = device_array(x_h, "x");
  DevArray gamma = device_array_or_none(gamma_h, "gamma");
  DevArray beta = device_array_or_none(beta_h, "beta");
  const char code = check_forward(x, gamma, beta, DevArray{}, DevArray{}, false, eps);
  x = contiguous(x, "x");
  gamma = opt_contiguous(gamma, "gamma");
  beta = opt_contiguous(beta, "beta");
  int64_t M, C;
  rows_channels(x, &M, &C);
  DevArray y = output_for(x, out_h, x, "x");
  DevArray mean = empty({C}, code), var = empty({C}, code), coef = empty({2, C}, code);
  DevArray partial = empty({cuda::batchnorm_partials(M), 2, C}, 'd');
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::batchnorm_forward<float>(y.data<float>(), mean.data<float>(),
                                               var.data<float>(), x.data<const float>(),
                                               cptr<float>(gamma), cptr<float>(beta),
                                               partial.data<double>(), coef.data<float>(), M, C,
                                               eps, s)
              : cuda::batchnorm_forward<double>(y.data<double>(), mean.data<double>(),
                                                var.data<double>(), x.data<const double>(),
                                                cptr<double>(gamma), cptr<double>(beta),
                                                partial.data<double>(), coef.data<double>(), M,
                                                C, eps, s);
  }
  check_cuda(err, "batch_norm");
  return py::make_tuple(y.obj, mean.obj, var.obj);
}

py::object batch_norm_inference(py::handle x_h, py::handle mean_h, py::handle var_h,
                                py::handle gamma_h, py::handle beta_h, double eps,
                                py::handle out_h) {
  DevArray x = device_array(x_h, "x");
  DevArray mean = device_array_or_none(mean_h, "mean");
  DevArray var = device_array_or_none(var_h, "var");
  DevArray gamma = device_array_or_none(gamma_h, "gamma");
  DevArray beta = device_array_or_none(beta_h, "beta");
  const char code = check_forward(x, gamma, beta, mean, var, true, eps);
  x = contiguous(x, "x");
  mean = contiguous(mean, "mean");
  var = contiguous(var, "var");
  gamma = opt_contiguous(gamma, "gamma");
  beta = opt_contiguous(beta, "beta");
  int64_t M, C;
  rows_channels(x, &M, &C);
  DevArray y = output_for(x, out_h, x, "x");
  DevArray coef = empty({2, C}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::batchnorm_inference<float>(y.data<float>(), x.data<const float>(),
                                                 mean.data<const float>(), var.data<const float>(),
                                                 cptr<float>(gamma), cptr<float>(beta),
                                                 coef.data<float>(), M, C, eps, s)
              : cuda::batchnorm_inference<double>(
                    y.data<double>(), x.data<const double>(), mean.data<const double>(),
                    var.data<const double>(), cptr<double>(gamma), cptr<double>(beta),
                    coef.data<double>(), M, C, eps, s);
  }
  check_cuda(err, "batch_norm_inference");
  return y.obj;
}

py::object batch_norm_backward(py::handle dy_h, py::handle x_h, py::handle mean_h,
                               py::handle var_h, py::handle gamma_h, double eps,
                               bool batch_stats, bool need_dx, py::handle out_h) {
  DevArray x = device_array(x_h, "x");
  DevArray dy = device_array(dy_h, "dy");
  DevArray mean = device_array_or_none(mean_h, "mean");
  DevArray var = device_array_or_none(var_h, "var");
  DevArray gamma = device_array_or_none(gamma_h, "gamma");
  const char code = check_forward(x, gamma, DevArray{}, mean, var, true, eps);
  checks::batchnorm_dy(dy.view(), x.view());
  x = contiguous(x, "x");
  dy = contiguous(dy, "dy");
  mean = contiguous(mean, "mean");
  var = contiguous(var, "var");
  gamma = opt_contiguous(gamma, "gamma");
  int64_t M, C;
  rows_channels(x, &M, &C);
  DevArray dx;
  if (need_dx) {
    dx = output_for(x, out_h, dy, "dy");
    checks::require_apart_or_same(dx.view(), "out", x.view(), "x");
  }
  DevArray dgamma = empty({C}, code), dbeta = empty({C}, code), coef = empty({3, C}, code);
  DevArray partial = empty({cuda::batchnorm_partials(M), 2, C}, 'd');
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::batchnorm_backward<float>(
                    need_dx ? dx.data<float>() : nullptr, dgamma.data<float>(),
                    dbeta.data<float>(), dy.data<const float>(), x.data<const float>(),
                    mean.data<const float>(), var.data<const float>(), cptr<float>(gamma),
                    partial.data<double>(), coef.data<float>(), M, C, eps, batch_stats, s)
              : cuda::batchnorm_backward<double>(
                    need_dx ? dx.data<double>() : nullptr, dgamma.data<double>(),
                    dbeta.data<double>(), dy.data<const double>(), x.data<const double>(),
                    mean.data<const double>(), var.data<const double>(), cptr<double>(gamma),
                    partial.data<double>(), coef.data<double>(), M, C, eps, batch_stats, s);
  }
  check_cuda(err, "batch_norm_backward");
  return py::make_tuple(need_dx ? dx.obj : py::object(py::none()), dgamma.obj, dbeta.obj);
}

// ------------------------------------------------------------ layer norm (last axis)
constexpr const char* kLn = "layer_norm";

char check_layer_norm(const DevArray& x, const DevArray& gamma, const DevArray& beta) {
  const View xv = x.view();
  const char k = checks::norm_input(xv, "x", kLn);
  const int64_t D = x.shape.back();
  checks::norm_vector(gamma.view(), "gamma", xv, D, "element of the last axis", false, kLn);
  checks::norm_vector(beta.view(), "beta", xv, D, "element of the last axis", false, kLn);
  return k;
}

py::object layer_norm(py::handle x_h, py::handle gamma_h, py::handle beta_h, double eps, bool rms,
                      py::handle out_h) {
  DevArray x = device_array(x_h, "x");
  DevArray gamma = device_array_or_none(gamma_h, "gamma");
  DevArray beta = device_array_or_none(beta_h, "beta");
  const char code = check_layer_norm(x, gamma, beta);
  checks::norm_epsilon(eps, kLn);
  x = contiguous(x, "x");
  gamma = opt_contiguous(gamma, "gamma");
  beta = opt_contiguous(beta, "beta");
  int64_t N, D;
  rows_channels(x, &N, &D);
  DevArray y = output_for(x, out_h, x, "x");
  DevArray mean = empty({N}, code), inv = empty({N}, code);
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::layernorm_forward<float>(y.data<float>(), mean.data<float>(),
                                               inv.data<float>(), x.data<const float>(),
                                               cptr<float>(gamma), cptr<float>(beta), N, D, eps,
                                               rms, s)
              : cuda::layernorm_forward<double>(y.data<double>(), mean.data<double>(),
                                                inv.data<double>(), x.data<const double>(),
                                                cptr<double>(gamma), cptr<double>(beta), N, D,
                                                eps, rms, s);
  }
  check_cuda(err, "layer_norm");
  return py::make_tuple(y.obj, mean.obj, inv.obj);
}

py::object layer_norm_backward(py::handle dy_h, py::handle x_h, py::handle mean_h,
                               py::handle inv_h, py::handle gamma_h, bool rms, bool need_dx,
                               py::handle out_h) {
  DevArray x = device_array(x_h, "x");
  DevArray dy = device_array(dy_h, "dy");
  DevArray mean = device_array_or_none(mean_h, "mean");
  DevArray inv = device_array_or_none(inv_h, "inv");
  DevArray gamma = device_array_or_none(gamma_h, "gamma");
  const char code = check_layer_norm(x, gamma, DevArray{});
  const int64_t D = x.shape.back();
  const int64_t N = D ? x.numel() / D : 0;
  checks::norm_vector(mean.view(), "mean", x.view(), N, "row", true, kLn);
  checks::norm_vector(inv.view(), "inv", x.view(), N, "row", true, kLn);
  checks::batchnorm_dy(dy.view(), x.view());
  x = contiguous(x, "x");
  dy = contiguous(dy, "dy");
  mean = contiguous(mean, "mean");
  inv = contiguous(inv, "inv");
  gamma = opt_contiguous(gamma, "gamma");
  DevArray dx;
  if (need_dx) {
    dx = output_for(x, out_h, dy, "dy");
    checks::require_apart_or_same(dx.view(), "out", x.view(), "x");
  }
  DevArray dgamma = empty({D}, code), dbeta = empty({D}, code);
  DevArray partial = empty({cuda::layernorm_partials(N), 2, D}, 'd');
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::layernorm_backward<float>(
                    need_dx ? dx.data<float>() : nullptr, dgamma.data<float>(),
                    dbeta.data<float>(), dy.data<const float>(), x.data<const float>(),
                    mean.data<const float>(), inv.data<const float>(), cptr<float>(gamma),
                    partial.data<double>(), N, D, rms, s)
              : cuda::layernorm_backward<double>(
                    need_dx ? dx.data<double>() : nullptr, dgamma.data<double>(),
                    dbeta.data<double>(), dy.data<const double>(), x.data<const double>(),
                    mean.data<const double>(), inv.data<const double>(), cptr<double>(gamma),
                    partial.data<double>(), N, D, rms, s);
  }
  check_cuda(err, "layer_norm_backward");
  return py::make_tuple(need_dx ? dx.obj : py::object(py::none()), dgamma.obj, dbeta.obj);
}

}  // namespace

void bind_cuda_norm(py::module_& m) {
  py::object none = py::none();
  m.def("batch_norm", &batch_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("epsilon"), py::arg("out") = none,
        "(y, mean, var): batch statistics over every axis but the last (biased variance)");
  m.def("batch_norm_inference", &batch_norm_inference, py::arg("x"), py::arg("mean"),
        py::arg("var"), py::arg("gamma"), py::arg("beta"), py::arg("epsilon"),
        py::arg("out") = none, "y with the given statistics");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("mean"), py::arg("var"), py::arg("gamma"), py::arg("epsilon"),
        py::arg("batch_stats") = true, py::arg("need_dx") = true, py::arg("out") = none,
        "(dx or None, dgamma, dbeta); out: where dx goes (may be dy)");
  m.def("layer_norm", &layer_norm, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("epsilon"), py::arg("rms") = false, py::arg("out") = none,
        "(y, mean, inv): each row (last axis) normalized by its own statistics");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("dy"), py::arg("x"),
        py::arg("mean"), py::arg("inv"), py::arg("gamma"), py::arg("rms") = false,
        py::arg("need_dx") = true, py::arg("out") = none, "(dx or None, dgamma, dbeta)");
}

}  // namespace fastdl::bind_cuda
