// fastdl._cuda: the CUDA kernels on CuPy arrays. Each bind_cuda_*.cpp file
// registers one family of ops under the same names and argument order as the
// CPU module. The CUDA runtime is linked statically, so this imports on a
// machine without a driver or a GPU; device_count() then says 0.
#include <cuda_runtime.h>

#include <string>

#include "bindings_cuda/cuda_array.h"

namespace fastdl::bind_cuda {
void bind_cuda_gemm(py::module_& m);
void bind_cuda_nn(py::module_& m);
void bind_cuda_conv(py::module_& m);
void bind_cuda_rnn(py::module_& m);
void bind_cuda_norm(py::module_& m);
void bind_cuda_embedding(py::module_& m);
}  // namespace fastdl::bind_cuda

namespace {
namespace py = pybind11;
using namespace fastdl::bind_cuda;

// (device count, error name or "") without raising: no driver, no device or a
// broken install all read as 0 devices with the runtime's reason.
std::pair<int, std::string> probe_devices() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it, so later calls do not see it
    return {0, std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err)};
  }
  return {n, ""};
}
}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastdl CUDA kernels (CuPy arrays in and out, on CuPy's current stream)";

  m.def("device_count", [] { return probe_devices().first; },
        "Number of usable CUDA devices; 0 (never an exception) without a driver or GPU.");
  m.def("device_status", [] {
    auto [n, why] = probe_devices();
    py::dict d;
    d["device_count"] = n;
    d["error"] = why.empty() ? py::object(py::none()) : py::object(py::str(why));
    return d;
  }, "Device count and, when it is 0 because the runtime failed, the runtime's reason.");
  m.def("build_info", [] {
    py::dict d;
    d["architectures"] = FASTDL_CUDA_ARCHS;
    d["nvcc"] = FASTDL_NVCC_VERSION;
    d["cudart"] = CUDART_VERSION;
    d["cudart_static"] = true;
    return d;
  });
  m.def("set_tf32", [](bool on) { set_tf32_enabled(on); }, py::arg("flag"),
        "Let float32 GEMMs (and conv/RNN through them) use TF32 tensor cores on sm_80+.");
  m.def("get_tf32", [] { return tf32_enabled(); });

  bind_cuda_gemm(m);
  bind_cuda_nn(m);
  bind_cuda_conv(m);
  bind_cuda_rnn(m);
  bind_cuda_norm(m);
  bind_cuda_embedding(m);
}
