// Shared by every binding file: argument validation that raises Python
// exceptions naming the argument, and the per-call CPU context.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/runtime/context.h"

namespace fastdl::bind {
namespace py = pybind11;

// ------------------------------------------------------------ runtime state
// The only mutable state of the module: the chosen ISA and the thread count,
// and per Python thread the size below which GEMMs run on one thread.
cpu::Isa current_isa();
int current_threads();
double set_gemm_serial_below(double work);  // this thread's; returns the previous value
// Context for one kernel call on this Python thread; its arena is reset.
cpu::Context make_context();

// ------------------------------------------------------------ validation
std::string shape_str(const py::array& a);
std::string dtype_str(const py::handle& a);

// TypeError unless h is a NumPy ndarray.
py::array require_array(const py::handle& h, const char* name);
// TypeError unless float32 ('f') or float64 ('d'); returns the kind character.
char float_kind(const py::array& a, const char* name);
// TypeError unless a has the same dtype as ref.
void require_same_dtype(const py::array& a, const char* name, const py::array& ref,
                        const char* ref_name);
// ValueError unless a.ndim == ndim.
void require_ndim(const py::array& a, int ndim, const char* name);
// ValueError unless a.shape == shape.
void require_shape(const py::array& a, const std::vector<int64_t>& shape, const char* name);
// ValueError if a is not writeable.
void require_writeable(const py::array& a, const char* name);
// a * b, ValueError on int64 overflow.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
// Product of dims, ValueError on overflow.
int64_t checked_numel(const std::vector<int64_t>& dims, const char* what);

// Element strides of a (ValueError if a byte stride is not a whole number of elements).
std::vector<int64_t> elem_strides(const py::array& a);
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
