// _cuda.gemm / _cuda.linear (and the reference kernel for tests), with the CPU
// binding's checks (bindings_common/checks.h) and semantics: any strides read in
// place, beta == 0 ignores c, out= written in place (through a temporary when it
// overlaps an input), an out whose elements share memory refused.
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "cuda/gemm/gemm.h"

namespace fastdl::bind_cuda {
namespace {

using cuda::Activation;

// a and b are checked (gemm_operands); c, out and bias are checked here.
template <typename T>
py::object gemm_typed(const DevArray& a, const DevArray& b, py::handle c_obj, double alpha,
                      double beta, bool trans_a, bool trans_b, py::handle out_obj,
                      py::handle bias_obj, Activation act, bool reference) {
  const DevArray c = device_array_or_none(c_obj, "c");
  const DevArray out = device_array_or_none(out_obj, "out");
  DevArray bias = device_array_or_none(bias_obj, "bias");
  const checks::GemmDims d =
      checks::gemm_dims(a.view(), b.view(), trans_a, trans_b, c.view(), out.view(), bias.view());
  const int64_t m = d.m, n = d.n, k = d.k;
  if (bias.present()) bias = contiguous(bias, "bias");
  const int64_t rs_a = trans_a ? a.strides[1] : a.strides[0], cs_a = trans_a ? a.strides[0] : a.strides[1];
  const int64_t rs_b = trans_b ? b.strides[1] : b.strides[0], cs_b = trans_b ? b.strides[0] : b.strides[1];
  const bool use_c = c.present() && beta != 0.0;  // beta = 0 ignores c, even NaN in it
  const bool have_out = out.present();
  // out is written in place unless it overlaps an input the kernel still reads.
  const bool out_aliases_input =
      have_out && checks::out_overlaps_inputs(out.view(), a.view(), b.view(), bias.view());
  DevArray target = (have_out && !out_aliases_input) ? out : empty({m, n}, a.float_code());
  // The kernel reads beta*C from the buffer it writes, so C goes there first.
  if (use_c && !(target.ptr == c.ptr && target.strides == c.strides)) copy_into(target, c);

  // split-K's workspace, where the shape gains from it (few output tiles, long k)
  const int64_t work_elems = reference ? 0 : cuda::gemm_workspace_elems(m, n, k);
  const DevArray work = workspace(work_elems, a.float_code());
  cudaStream_t stream = current_stream();
  cuda::GemmEpilogue<T> ep{bias.data<const T>(), act};
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    if (reference)
      err = cuda::gemm_ref<T>(target.data<T>(), target.strides[0], target.strides[1],
                              a.data<const T>(), rs_a, cs_a, b.data<const T>(), rs_b, cs_b, m, n,
                              k, T(alpha), use_c ? T(beta) : T(0), ep, stream);
    else
      err = cuda::gemm<T>(target.data<T>(), target.strides[0], target.strides[1],
                          a.data<const T>(), rs_a, cs_a, b.data<const T>(), rs_b, cs_b, m, n, k,
                          T(alpha), use_c ? T(beta) : T(0), ep, tf32_enabled(), stream,
                          work.data<T>(), work_elems);
  }
  check_cuda(err, "gemm");
  if (have_out && out_aliases_input) {
    copy_into(out, target);
    return out.obj;
  }
  return have_out ? out.obj : target.obj;
}

py::object gemm_entry(py::handle a_h, py::handle b_h, py::handle c, double alpha, double beta,
                      bool trans_a, bool trans_b, py::handle out, py::handle bias,
                      py::handle activation, bool reference) {
  DevArray a = device_array(a_h, "a");
  DevArray b = device_array(b_h, "b");
  const char code = checks::gemm_operands(a.view(), b.view());
  Activation act = checks::parse_linear_or_relu<Activation>(activation);
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
