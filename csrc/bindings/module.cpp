// fastdl._C: the CPU kernels. Each bind_*.cpp file registers one family of ops.
#include <sched.h>

#include <string>

#include "bindings/common.h"
#include "build_config.h"
#include "cpu/runtime/capability.h"

#ifdef _OPENMP
#include <omp.h>
#endif


namespace fastdl::bind {
void set_isa(cpu::Isa isa);
void set_threads(int n);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_rnn(py::module_& m);
void bind_nn(py::module_& m);
void bind_norm(py::module_& m);
void bind_embedding(py::module_& m);
}  // namespace fastdl::bind

namespace {
using namespace fastdl;
namespace py = pybind11;

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}
}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastdl CPU kernels";
  bind::set_isa(cpu::best_isa());
  bind::set_threads(available_cores());

  m.def("set_capability", [](const std::string& name) {
    cpu::Isa isa;
    if (!cpu::parse_isa(name.c_str(), &isa))
      throw py::value_error("FASTDL_CPU_CAPABILITY: unknown level '" + name +
                            "' (expected generic, avx2 or avx512)");
    if (!cpu::isa_supported(isa))
      throw py::value_error("FASTDL_CPU_CAPABILITY=" + name +
                            ": this CPU or this build does not support it (best here: " +
                            cpu::isa_name(cpu::best_isa()) + ")");
    bind::set_isa(isa);
  }, py::arg("name"), "Force the micro-kernel level: generic, avx2 or avx512.");
  m.def("get_capability", [] { return std::string(cpu::isa_name(bind::current_isa())); });
  m.def("supported_capabilities", [] {
    py::list out;
    for (cpu::Isa isa : {cpu::Isa::generic, cpu::Isa::avx2, cpu::Isa::avx512})
      if (cpu::isa_supported(isa)) out.append(cpu::isa_name(isa));
    return out;
  });
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    bind::set_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", [] { return bind::current_threads(); });
  m.def("available_cores", &available_cores);
  m.def("build_info", [] {
    py::dict d;
    d["version"] = FASTDL_VERSION;
    d["compiler"] = FASTDL_COMPILER;
    d["simd_compiled"] = FASTDL_SIMD_COMPILED;
    std::string omp = FASTDL_OPENMP;
    d["openmp"] = omp.empty() ? py::object(py::none()) : py::object(py::str(omp));
    d["cuda_build_reason"] = FASTDL_CUDA_REASON;
    return d;
  });

  bind::bind_gemm(m);
  bind::bind_conv(m);
  bind::bind_rnn(m);
  bind::bind_nn(m);
  bind::bind_norm(m);
  bind::bind_embedding(m);
}
