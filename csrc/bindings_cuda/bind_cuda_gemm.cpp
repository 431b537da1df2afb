// _cuda.gemm / _cuda.linear (and the reference kernel for tests), with the CPU
// binding's semantics: any strides read in place, beta == 0 ignores c, out=
// written in place (through a temporary when it overlaps an input).
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "cuda/gemm/gemm.h"

namespace fastdl::bind_cuda {
namespace {

using cuda::Activation;

Activation parse_activation(py::handle h) {
  if (h.is_none()) return Activation::identity;
  if (!py::isinstance<py::str>(h))
    throw py::type_error("activation must be a string ('linear' or 'relu'), got " +
                         py::repr(h).cast<std::string>());
  const std::string s = h.cast<std::string>();
  if (s == "linear" || s == "identity" || s.empty()) return Activation::identity;
  if (s == "relu") return Activation::relu;
  throw py::value_error("activation must be 'linear' or 'relu', got '" + s + "'");
}

template <typename T>
py::object gemm_typed(const DevArray& a, const DevArray& b, py::object c_obj, double alpha,
                      double beta, bool trans_a, bool trans_b, py::object out_obj,
                      py::object bias_obj, Activation act, bool reference) {
  int64_t m = trans_a ? a.shape[1] : a.shape[0];
  int64_t ka = trans_a ? a.shape[0] : a.shape[1];
  int64_t kb = trans_b ? b.shape[1] : b.shape[0];
  int64_t n = trans_b ? b.shape[0] : b.shape[1];
  if (ka != kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(m) + ", " +
                          std::to_string(ka) + ") from a " + shape_str(a) + ", op(b) is (" +
                          std::to_string(kb) + ", " + std::to_string(n) + ") from b " +
                          shape_str(b));
  checked_mul(m, n, "gemm output");
  int64_t rs_a = trans_a ? a.strides[1] : a.strides[0], cs_a = trans_a ? a.strides[0] : a.strides[1];
  int64_t rs_b = trans_b ? b.strides[1] : b.strides[0], cs_b = trans_b ? b.strides[0] : b.strides[1];

  DevArray bias;
  if (!bias_obj.is_none()) {
    bias = contiguous_array(bias_obj, "bias");
    require_same_dtype(bias, "bias", a, "a");
    require_shape(bias, {n}, "bias");
  }
  bool use_c = beta != 0.0;
  DevArray c;
  if (!c_obj.is_none()) {
    c = device_array(c_obj, "c");
    require_same_dtype(c, "c", a, "a");
    require_shape(c, {m, n}, "c");
  } else {
    use_c = false;
  }
  DevArray out;
  const bool have_out = !out_obj.is_none();
  if (have_out) {
    out = device_array(out_obj, "out");
    require_same_dtype(out, "out", a, "a");
    require_shape(out, {m, n}, "out");
    require_writeable(out, "out");
  }
  const bool out_aliases_input =
      have_out && (may_overlap(out, a) || may_overlap(out, b) || (bias.ptr && may_overlap(out, bias)));
  DevArray target = (have_out && !out_aliases_input) ? out : empty({m, n}, a.float_code());
  // The kernel reads beta*C from the buffer it writes, so C goes there first.
  if (use_c && !(target.ptr == c.ptr && target.strides == c.strides)) copy_into(target, c);

  cudaStream_t stream = current_stream();
  cuda::GemmEpilogue<T> ep{bias.data<const T>(), act};
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    if (reference)
      err = cuda::gemm_ref<T>(target.data<T>(), target.strides[0], target.strides[1],
                              a.data<const T>(), rs_a, cs_a, b.data<const T>(), rs_b, cs_b, m, n,
                              ka, T(alpha), use_c ? T(beta) : T(0), ep, stream);
    else
      err = cuda::gemm<T>(target.data<T>(), target.strides[0], target.strides[1],
                          a.data<const T>(), rs_a, cs_a, b.data<const T>(), rs_b, cs_b, m, n, ka,
                          T(alpha), use_c ? T(beta) : T(0), ep, tf32_enabled(), stream);
  }
  check_cuda(err, "gemm");
  if (have_out && out_aliases_input) {
    copy_into(out, target);
    return out.obj;
  }
  return have_out ? out.obj : target.obj;
}

py::object gemm_entry(py::handle a_h, py::handle b_h, py::object c, double alpha, double beta,
                      bool trans_a, bool trans_b, py::object out, py::object bias,
                      py::handle activation, bool reference) {
  DevArray a = device_array(a_h, "a");
  DevArray b = device_array(b_h, "b");
  char code = float_code(a, "a");
  require_same_dtype(b, "b", a, "a");
  require_ndim(a, 2, "a");
  require_ndim(b, 2, "b");
  Activation act = parse_activation(activation);
  if (code == 'f')
    return gemm_typed<float>(a, b, c, alpha, beta, trans_a, trans_b, out, bias, act, reference);
  return gemm_typed<double>(a, b, c, alpha, beta, trans_a, trans_b, out, bias, act, reference);
}

}  // namespace

void bind_cuda_gemm(py::module_& m) {
  m.def("gemm",
        [](py::handle a, py::handle b, py::object c, double alpha, double beta, bool trans_a,
           bool trans_b, py::object out) {
          return gemm_entry(a, b, c, alpha, beta, trans_a, trans_b, out, py::none(), py::none(),
                            false);
        },
        py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("out") = py::none(),
        "alpha * op(a) @ op(b) + beta * c on CuPy arrays; returns out (or a new array)");
  m.def("linear",
        [](py::handle x, py::handle kernel, py::object bias, py::handle activation,
           py::object out) {
          return gemm_entry(x, kernel, py::none(), 1.0, 0.0, false, false, out, bias, activation,
                            false);
        },
        py::arg("x"), py::arg("kernel"), py::arg("bias") = py::none(),
        py::arg("activation") = "linear", py::arg("out") = py::none(),
        "act(x @ kernel + bias) in one pass (Dense's forward)");
  m.def("matmul",
        [](py::handle a, py::handle b, py::object out) {
          return gemm_entry(a, b, py::none(), 1.0, 0.0, false, false, out, py::none(), py::none(),
                            false);
        },
        py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
        "2-D a @ b; returns out (or a new array)");
  m.def("gemm_reference",
        [](py::handle a, py::handle b, py::object c, double alpha, double beta, bool trans_a,
           bool trans_b, py::object bias, py::handle activation) {
          return gemm_entry(a, b, c, alpha, beta, trans_a, trans_b, py::none(), bias, activation,
                            true);
        },
        py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("bias") = py::none(), py::arg("activation") = "linear",
        "The naive one-thread-per-output kernel with the same contract (a test oracle).");
}

}  // namespace fastdl::bind_cuda
