// Shared by every binding file of the CPU module: NumPy arrays as the views
// the shared argument checks take, and the per-call CPU context.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings_common/checks.h"
#include "cpu/runtime/context.h"

namespace fastdl::bind {
namespace py = pybind11;

// ------------------------------------------------------------ runtime state
// The only mutable state of the module: the chosen ISA and the thread count,
// and per Python thread the size below which GEMMs run on one thread.
cpu::Isa current_isa();
int current_threads();
// Context for one kernel call on this Python thread; its arena is reset.
cpu::Context make_context();

// ------------------------------------------------------------ arrays -> views
// The checks themselves are shared with the CUDA module (bindings_common/checks.h);
// this module's part is turning a Python object into a View.
using checks::View;

// TypeError unless h is a NumPy ndarray (naming a GPU array as such).
py::array require_array(const py::handle& h, const char* name);

// The View of a NumPy array (no copy, no new reference).
inline View view_of(const py::array& a) {
  const auto* p = py::detail::array_proxy(a.ptr());
  static_assert(sizeof(*p->dimensions) == sizeof(int64_t), "64-bit platforms only");
  View v;
  v.obj = a;
  v.data = p->data;
  v.shape = reinterpret_cast<const int64_t*>(p->dimensions);
  v.strides = reinterpret_cast<const int64_t*>(p->strides);
  v.ndim = p->nd;
  // The dtype's kind and size straight from its struct (a.itemsize() would make a new
  // reference to the dtype): this runs for every array of every call.
  v.kind = py::detail::array_descriptor_proxy(p->descr)->kind;
  v.itemsize = py::detail::npy_api::get().PyArray_RUNTIME_VERSION_ < 0x12
                   ? int(py::detail::array_descriptor1_proxy(p->descr)->elsize)
                   : int(py::detail::array_descriptor2_proxy(p->descr)->elsize);
  v.writeable = (p->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) != 0;
  return v;
}
// require_array + view_of; the View borrows h, which the caller holds.
inline View arg_view(const py::handle& h, const char* name) {
  return view_of(require_array(h, name));
}
// As arg_view, or an absent View for None.
inline View opt_view(const py::handle& h, const char* name) {
  return h.is_none() ? View{} : arg_view(h, name);
}
inline py::array as_array(const View& v) { return py::reinterpret_borrow<py::array>(v.obj); }

std::vector<int64_t> shape_vec(const py::array& a);

// C-contiguous array with a's data (no copy when it already is).
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
  return py::array_t<T, py::array::c_style>::ensure(a);
}

// New uninitialised C-contiguous array.
template <typename T>
py::array_t<T> empty(const std::vector<int64_t>& shape) {
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  return py::array_t<T>(s);
}

}  // namespace fastdl::bind
