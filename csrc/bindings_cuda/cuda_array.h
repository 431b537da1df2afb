// Shared by the CUDA binding files: device arrays read through
// __cuda_array_interface__ (v3) and seen as the views the shared argument checks
// take (bindings_common/checks.h), arrays allocated by calling back into CuPy,
// CuPy's current stream, and the module's one switch (TF32).
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings_common/checks.h"

namespace fastdl::bind_cuda {
namespace py = pybind11;
using checks::View;

// A device array as its __cuda_array_interface__ describes it. `obj` keeps the
// owner alive for as long as the pointer is used.
struct DevArray {
  py::object obj;
  void* ptr = nullptr;
  char kind = 0;          // 'f' float, 'i' signed int, 'u' unsigned, 'b' bool, ...
  int itemsize = 0;
  bool readonly = false;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;   // in elements
  std::vector<int64_t> bstrides;  // in bytes

  int ndim() const { return int(shape.size()); }
  bool present() const { return bool(obj); }
  // What the shared checks see; valid while this DevArray lives unchanged.
  View view() const {
    View v;
    v.obj = obj;
    v.data = ptr;
    v.shape = shape.data();
    v.strides = bstrides.data();
    v.ndim = ndim();
    v.kind = kind;
    v.itemsize = itemsize;
    v.writeable = !readonly;
    return v;
  }
  int64_t numel() const;
  bool c_contiguous() const;
  // 'f' for float32, 'd' for float64, 0 otherwise.
  char float_code() const { return kind == 'f' ? (itemsize == 4 ? 'f' : itemsize == 8 ? 'd' : 0) : 0; }
  template <typename T> T* data() const { return static_cast<T*>(ptr); }
};

// TypeError unless h exposes __cuda_array_interface__ (a CuPy array, say).
DevArray device_array(py::handle h, const char* name);
// As above, or an empty DevArray for None.
DevArray device_array_or_none(py::handle h, const char* name);
// The same data C-contiguous (cupy.ascontiguousarray when it is not already).
DevArray contiguous(const DevArray& a, const char* name);
// device_array + contiguous.
DevArray contiguous_array(py::handle h, const char* name);

// New uninitialised / zero-filled C-contiguous CuPy arrays of dtype code 'f' or 'd'.
DevArray empty(const std::vector<int64_t>& shape, char code);
DevArray zeros(const std::vector<int64_t>& shape, char code);
// Split-K's workspace (cuda/gemm/gemm.h) of elems elements, or none (a null pointer, no
// call into CuPy) when elems is 0, as it is for most products.
DevArray workspace(int64_t elems, char code);
// dst[...] = src on CuPy's current stream (cupy.copyto).
void copy_into(const DevArray& dst, const DevArray& src);

// cupy.cuda.get_current_stream().ptr
cudaStream_t current_stream();

// ------------------------------------------------------------ validation
// The checks are shared with the CPU module: call them on DevArray::view().
using checks::checked_mul;
using checks::shape_str;

// RuntimeError naming the op unless err == cudaSuccess.
void check_cuda(cudaError_t err, const char* op);

// ------------------------------------------------------------ module state
bool tf32_enabled();
void set_tf32_enabled(bool on);

// Python object for a dtype code: "float32" or "float64".
const char* dtype_name(char code);

}  // namespace fastdl::bind_cuda
