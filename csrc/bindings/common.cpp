#include "bindings/common.h"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <thread>

#include "cpu/runtime/capability.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::bind {

namespace {
std::atomic<int> g_isa{int(cpu::Isa::generic)};
std::atomic<int> g_threads{1};
thread_local double t_gemm_serial_below = 0;
}  // namespace

cpu::Isa current_isa() { return cpu::Isa(g_isa.load(std::memory_order_relaxed)); }
int current_threads() { return g_threads.load(std::memory_order_relaxed); }
void set_isa(cpu::Isa isa) { g_isa.store(int(isa)); }
void set_threads(int n) { g_threads.store(n); }
double set_gemm_serial_below(double work) {
  const double prev = t_gemm_serial_below;
  t_gemm_serial_below = work;
  return prev;
}

cpu::Context make_context() {
  thread_local cpu::Arena arena;
  arena.reset();
  cpu::Context ctx;
  ctx.isa = current_isa();
  ctx.nthreads = current_threads();
  ctx.arena = &arena;
  ctx.gemm_serial_below = t_gemm_serial_below;
  return ctx;
}

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s << ", ";
    s << a.shape(i);
  }
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string dtype_str(const py::handle& a) {
  if (py::isinstance<py::array>(a)) return py::str(py::reinterpret_borrow<py::array>(a).dtype());
  return py::str(py::type::of(a).attr("__name__"));
}

py::array require_array(const py::handle& h, const char* name) {
  // Exactly numpy.ndarray: the common case, one pointer compare.
  if (Py_TYPE(h.ptr()) == reinterpret_cast<PyTypeObject*>(py::detail::npy_api::get().PyArray_Type_))
    return py::reinterpret_borrow<py::array>(h);
  // A device array (CuPy, or anything exposing __cuda_array_interface__) never
  // runs here, even when it is also an ndarray subclass.
  if (py::hasattr(h, "__cuda_array_interface__"))
    throw py::type_error(std::string(name) + " is a GPU array (" +
                         std::string(py::str(py::type::of(h).attr("__name__"))) +
                         ") but this call runs on the CPU: the other arrays are NumPy arrays; "
                         "move them to one device first");
  if (!py::isinstance<py::array>(h))
    throw py::type_error(std::string(name) + " must be a NumPy array, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(h);
}

char float_kind(const py::array& a, const char* name) {
  char k = a.dtype().char_();
  if (k != 'f' && k != 'd')
    throw py::type_error(std::string(name) + " must be float32 or float64, got " +
                         std::string(py::str(a.dtype())));
  return k;
}

void require_same_dtype(const py::array& a, const char* name, const py::array& ref,
                        const char* ref_name) {
  if (!a.dtype().is(ref.dtype()) && a.dtype().char_() != ref.dtype().char_())
    throw py::type_error(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) +
                         " but " + ref_name + " has dtype " + std::string(py::str(ref.dtype())) +
                         "; they must match");
}

void require_ndim(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(a));
}

void require_shape(const py::array& a, const std::vector<int64_t>& shape, const char* name) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::ostringstream s;
    s << name << " must have shape (";
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    if (shape.size() == 1) s << ",";
    s << "), got " << shape_str(a);
    throw py::value_error(s.str());
  }
}

void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + " is read-only");
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw py::value_error(std::string(what) + ": size overflows 64-bit indexing");
  return r;
}

int64_t checked_numel(const std::vector<int64_t>& dims, const char* what) {
  int64_t r = 1;
  for (int64_t d : dims) r = checked_mul(r, d, what);
  return r;
}

std::vector<int64_t> elem_strides(const py::array& a) {
  std::vector<int64_t> s(a.ndim());
  const int64_t item = a.itemsize();
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.strides(i) % item != 0)
      throw py::value_error("array strides are not a multiple of its item size");
    s[i] = a.strides(i) / item;
  }
  return s;
}

std::vector<int64_t> shape_vec(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

}  // namespace fastdl::bind
