// Shared by the CUDA binding files: device arrays read through
// __cuda_array_interface__ (v3), arrays allocated by calling back into CuPy,
// CuPy's current stream, argument validation that names the argument, and the
// module's one switch (TF32).
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastdl::bind_cuda {
namespace py = pybind11;

// A device array as its __cuda_array_interface__ describes it. `obj` keeps the
// owner alive for as long as the pointer is used.
struct DevArray {
  py::object obj;
  void* ptr = nullptr;
  char kind = 0;          // 'f' float, 'i' signed int, 'u' unsigned, 'b' bool, ...
  int itemsize = 0;
  bool readonly = false;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements

  int ndim() const { return int(shape.size()); }
  int64_t numel() const;
  bool c_contiguous() const;
  // 'f' for float32, 'd' for float64, 0 otherwise.
  char float_code() const { return kind == 'f' ? (itemsize == 4 ? 'f' : itemsize == 8 ? 'd' : 0) : 0; }
  template <typename T> T* data() const { return static_cast<T*>(ptr); }
};

std::string shape_str(const std::vector<int64_t>& s);
std::string shape_str(const DevArray& a);

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
// dst[...] = src on CuPy's current stream (cupy.copyto).
void copy_into(const DevArray& dst, const DevArray& src);

// cupy.cuda.get_current_stream().ptr
cudaStream_t current_stream();

// ------------------------------------------------------------ validation
// TypeError unless float32/float64; returns 'f' or 'd'.
char float_code(const DevArray& a, const char* name);
void require_same_dtype(const DevArray& a, const char* name, const DevArray& ref,
                        const char* ref_name);
void require_ndim(const DevArray& a, int ndim, const char* name);
void require_shape(const DevArray& a, const std::vector<int64_t>& shape, const char* name);
void require_writeable(const DevArray& a, const char* name);
int64_t checked_mul(int64_t a, int64_t b, const char* what);
// True when the byte ranges the two arrays span may overlap.
bool may_overlap(const DevArray& x, const DevArray& y);

// RuntimeError naming the op unless err == cudaSuccess.
void check_cuda(cudaError_t err, const char* op);

// ------------------------------------------------------------ module state
bool tf32_enabled();
void set_tf32_enabled(bool on);

// Python object for a dtype code: "float32" or "float64".
const char* dtype_name(char code);

}  // namespace fastdl::bind_cuda
