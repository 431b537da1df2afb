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
}  // namespace

cpu::Isa current_isa() { return cpu::Isa(g_isa.load(std::memory_order_relaxed)); }
int current_threads() { return g_threads.load(std::memory_order_relaxed); }
void set_isa(cpu::Isa isa) { g_isa.store(int(isa)); }
void set_threads(int n) { g_threads.store(n); }

cpu::Context make_context() {
  thread_local cpu::Arena arena;
  arena.reset();
  cpu::Context ctx;
  ctx.isa = current_isa();
  ctx.nthreads = current_threads();
  ctx.arena = &arena;
  return ctx;
}

py::array require_array(const py::handle& h, const char* name) {
  // Exactly numpy.ndarray: the common case, one pointer compare.
  PyTypeObject* type = Py_TYPE(h.ptr());
  if (type == reinterpret_cast<PyTypeObject*>(py::detail::npy_api::get().PyArray_Type_))
    return py::reinterpret_borrow<py::array>(h);
  // The last ndarray subclass seen whose class has no __cuda_array_interface__ (fastdl's
  // Variable, the weights of every layer): one more pointer compare, per Python thread.
  thread_local PyTypeObject* host_subclass = nullptr;
  if (type == host_subclass) return py::reinterpret_borrow<py::array>(h);
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
  if (!PyObject_HasAttrString(reinterpret_cast<PyObject*>(type), "__cuda_array_interface__")) {
    // the class itself cannot expose a device array; held, so that its address is not
    // reused by another class while it is cached
    Py_INCREF(type);
    PyTypeObject* old = host_subclass;
    host_subclass = type;
    Py_XDECREF(old);
  }
  return py::reinterpret_borrow<py::array>(h);
}

std::vector<int64_t> shape_vec(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

}  // namespace fastdl::bind
