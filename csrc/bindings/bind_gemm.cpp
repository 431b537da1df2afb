// ops.gemm / ops.matmul / ops.linear (validation, strides, then the GEMM
// driver) and the measured FMA peak the benchmark compares against.
//
// Operands are read in place through their strides (a transposed or sliced
// view is not copied; negative strides are fine). out= is written in place
// through its strides, unless it overlaps an input: then the result goes to a
// scratch array first and is copied into out.
//
// group_rows > 0 computes each group of that many rows of op(a) and C (the last
// may be shorter) as a product of its own, the groups spread over the threads:
// every row gets the bits a separate call on its group gives it (the
// micro-kernel's short edge tiles and the direct loop for tiny products round
// differently from a larger product), without a call per group (batched
// inference). The groups run here, not in the driver, because each thread needs
// its own scratch arena (make_context's, per thread).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "cpu/runtime/capability.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/kernels/ukernel.h"
#include "cpu/runtime/peak.h"

namespace fastdl::bind {
namespace {

using cpu::Activation;

// Below this many multiply-adds the kernel runs with the GIL held: releasing
// and re-taking it would cost more than the arithmetic.
constexpr double kKeepGilWork = 1 << 14;

// True when the kernels can read a through its pointer and element strides:
// native byte order, element-aligned data, strides whole numbers of elements.
bool kernel_readable(const py::array& a) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (a.dtype().byteorder() == '>') return false;
#else
  if (a.dtype().byteorder() == '<') return false;
#endif
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) return false;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.strides(i) % a.itemsize()) return false;
  return true;
}

// A native, aligned, C-contiguous copy (for the rare arrays that are not kernel_readable).
template <typename T>
py::array native_copy(const py::array& a) {
  return py::module_::import("numpy").attr("array")(a, py::dtype::of<T>());
}

// An empty handle for an optional array (py::array's default constructor would
// allocate a NumPy array on every call).
py::array no_array() { return py::reinterpret_borrow<py::array>(py::handle()); }

// Element strides of a 2-D array (kernel_readable).
void strides2(const py::array& a, int64_t* rs, int64_t* cs) {
  *rs = a.strides(0) / a.itemsize();
  *cs = a.strides(1) / a.itemsize();
}

bool same_layout(const py::array& x, const py::array& y) {
  return x.data() == y.data() && x.strides(0) == y.strides(0) && x.strides(1) == y.strides(1);
}

// a and b are checked (gemm_operands); c, out and bias are checked here.
// C = op(A) . B (+ epilogue) as one product, or one per group of group_rows rows,
// each on one thread.
template <typename T>
void run_gemm(T* pc, int64_t rs_c, int64_t cs_c, const T* pa, int64_t rs_a, int64_t cs_a,
              const T* pb, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T ta,
              T tb, const cpu::GemmEpilogue<T>& ep, int64_t group_rows) {
  if (group_rows <= 0 || group_rows >= m) {
    cpu::Context ctx = make_context();
    cpu::gemm<T>(pc, rs_c, cs_c, pa, rs_a, cs_a, pb, rs_b, cs_b, m, n, k, ta, tb, ep, ctx);
    return;
  }
  const int64_t groups = (m + group_rows - 1) / group_rows;
  const int nt = int(std::min<int64_t>(current_threads(), groups));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t g = 0; g < groups; ++g) {
    cpu::Context ctx = make_context();   // this thread's scratch
    ctx.nthreads = 1;
    const int64_t r0 = g * group_rows, mg = std::min(group_rows, m - r0);
    cpu::gemm<T>(pc + r0 * rs_c, rs_c, cs_c, pa + r0 * rs_a, rs_a, cs_a, pb, rs_b, cs_b, mg, n,
                 k, ta, tb, ep, ctx);
  }
}

template <typename T>
py::array gemm_typed(py::array a, py::array b, const View& va, const View& vb,
                     const py::handle& c_obj, double alpha, double beta, bool trans_a,
                     bool trans_b, const py::handle& out_obj, const py::handle& bias_obj,
                     Activation act, int64_t group_rows = 0) {
  const View vc = opt_view(c_obj, "c"), vout = opt_view(out_obj, "out");
  const View vbias = opt_view(bias_obj, "bias");
  const checks::GemmDims d = checks::gemm_dims(va, vb, trans_a, trans_b, vc, vout, vbias);
  const int64_t m = d.m, n = d.n, k = d.k;
  if (!kernel_readable(a)) a = native_copy<T>(a);
  if (!kernel_readable(b)) b = native_copy<T>(b);
  int64_t sa0, sa1, sb0, sb1;
  strides2(a, &sa0, &sa1);
  strides2(b, &sb0, &sb1);
  // op(a) is (m, k), op(b) is (k, n); a transposed operand is the same memory
  // with its strides swapped.
  const int64_t rs_a = trans_a ? sa1 : sa0, cs_a = trans_a ? sa0 : sa1;
  const int64_t rs_b = trans_b ? sb1 : sb0, cs_b = trans_b ? sb0 : sb1;

  const T* bias = nullptr;
  py::array bias_arr = no_array();
  if (vbias.present()) {
    bias_arr = as_array(vbias);
    if (!kernel_readable(bias_arr) || bias_arr.strides(0) != py::ssize_t(sizeof(T)))
      bias_arr = native_copy<T>(bias_arr);
    bias = static_cast<const T*>(bias_arr.data());
  }
  const bool have_c = vc.present();
  const bool use_c = have_c && beta != 0.0;  // beta = 0 ignores c, even NaN in it
  const bool have_out = vout.present();
  py::array out = have_out ? as_array(vout) : no_array();

  // The kernel reads beta * C from the buffer it writes, so C goes there first.
  // out is written directly unless it overlaps an input the kernel still reads.
  const bool direct = have_out && kernel_readable(out) &&
                      !checks::out_overlaps_inputs(vout, view_of(a), view_of(b),
                                                   bias ? view_of(bias_arr) : View{});
  py::array target = direct ? out : py::array(empty<T>({m, n}));
  int64_t rs_c, cs_c;
  strides2(target, &rs_c, &cs_c);
  if (use_c && !same_layout(target, as_array(vc)) && m > 0 && n > 0)
    py::module_::import("numpy").attr("copyto")(target, vc.obj);  // handles overlap of c and out

  T* pc = static_cast<T*>(target.mutable_data());
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  const cpu::GemmEpilogue<T> ep{bias, act};
  const T ta = T(alpha), tb = use_c ? T(beta) : T(0);
  if (double(m) * double(n) * double(k) < kKeepGilWork) {
    run_gemm<T>(pc, rs_c, cs_c, pa, rs_a, cs_a, pb, rs_b, cs_b, m, n, k, ta, tb, ep, group_rows);
  } else {
    py::gil_scoped_release nogil;
    run_gemm<T>(pc, rs_c, cs_c, pa, rs_a, cs_a, pb, rs_b, cs_b, m, n, k, ta, tb, ep, group_rows);
  }
  if (!have_out) return target;
  if (!direct) py::module_::import("numpy").attr("copyto")(out, target);
  return out;
}

py::array gemm_entry(py::handle a_h, py::handle b_h, py::handle c, double alpha, double beta,
                     bool trans_a, bool trans_b, py::handle out, py::handle bias,
                     py::handle activation, int64_t group_rows) {
  py::array a = require_array(a_h, "a");
  py::array b = require_array(b_h, "b");
  const View va = view_of(a), vb = view_of(b);
  const char code = checks::gemm_operands(va, vb);
  Activation act = checks::parse_linear_or_relu<Activation>(activation);
  checks::gemm_group_rows(group_rows);
  if (code == 'f')
    return gemm_typed<float>(a, b, va, vb, c, alpha, beta, trans_a, trans_b, out, bias, act,
                             group_rows);
  return gemm_typed<double>(a, b, va, vb, c, alpha, beta, trans_a, trans_b, out, bias, act,
                            group_rows);
}

// The lean entry of ops.matmul: positional arguments only, no activation parsing.
py::array matmul_entry(py::handle a_h, py::handle b_h, py::handle out) {
  py::array a = require_array(a_h, "a");
  py::array b = require_array(b_h, "b");
  const View va = view_of(a), vb = view_of(b);
  const char code = checks::gemm_operands(va, vb);
  const py::handle none = py::none();
  if (code == 'f')
    return gemm_typed<float>(a, b, va, vb, none, 1.0, 0.0, false, false, out, none,
                             Activation::identity);
  return gemm_typed<double>(a, b, va, vb, none, 1.0, 0.0, false, false, out, none,
                            Activation::identity);
}

double peak_entry(int threads, const std::string& dtype) {
  if (threads < 1) throw py::value_error("threads must be >= 1, got " + std::to_string(threads));
  bool dbl;
  if (dtype == "float32") dbl = false;
  else if (dtype == "float64") dbl = true;
  else throw py::value_error("dtype must be 'float32' or 'float64', got '" + dtype + "'");
  py::gil_scoped_release nogil;
  return cpu::fma_peak_gflops(threads, cpu::best_isa(), dbl);
}

template <typename T>
py::dict kernel_info(const cpu::UkernelSet<T>& s) {
  py::dict d;
  d["name"] = s.name;
  d["mr"] = s.mr;
  d["nr"] = s.nr;
  d["mc"] = s.mc;
  d["kc"] = s.kc;
  d["nc"] = s.nc;
  return d;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_entry, py::arg("a"), py::arg("b"), py::arg("c") = py::none(),
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("out") = py::none(), py::arg("bias") = py::none(),
        py::arg("activation") = py::none(), py::arg("group_rows") = 0,
        "act(alpha * op(a) @ op(b) + beta * c + bias); returns out (or a new array). "
        "group_rows > 0: each group of that many rows as a product of its own");
  m.def("matmul", &matmul_entry, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
        "a @ b for 2-D float arrays; out= writes in place and returns out");
  m.def("fma_peak_gflops", &peak_entry, py::arg("threads") = 1, py::arg("dtype") = "float32",
        "Measured FMA throughput (GFLOP/s) of `threads` threads at the best SIMD level");
  m.def("gemm_kernel_info", [](const std::string& dtype) {
    if (dtype == "float64") return kernel_info(cpu::ukernel_set<double>(current_isa()));
    return kernel_info(cpu::ukernel_set<float>(current_isa()));
  }, py::arg("dtype") = "float32", "Micro-kernel and blocking the GEMM uses at the current level");
}

}  // namespace fastdl::bind
