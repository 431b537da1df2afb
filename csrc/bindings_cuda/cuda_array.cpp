#include "bindings_cuda/cuda_array.h"

#include <atomic>
#include <sstream>
#include <stdexcept>

namespace fastdl::bind_cuda {

namespace {
std::atomic<bool> g_tf32{false};

py::module_ cupy() { return py::module_::import("cupy"); }

std::string type_name(py::handle h) {
  py::handle t = py::type::of(h);
  std::string mod = py::str(t.attr("__module__"));
  std::string name = py::str(t.attr("__name__"));
  return mod == "builtins" ? name : mod + "." + name;
}
}  // namespace

bool tf32_enabled() { return g_tf32.load(std::memory_order_relaxed); }
void set_tf32_enabled(bool on) { g_tf32.store(on); }

const char* dtype_name(char code) { return code == 'd' ? "float64" : "float32"; }

int64_t DevArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n = checks::checked_mul(n, d, "array");
  return n;
}

bool DevArray::c_contiguous() const {
  int64_t expect = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

DevArray device_array(py::handle h, const char* name) {
  if (h.is_none() || !py::hasattr(h, "__cuda_array_interface__"))
    throw py::type_error(std::string(name) +
                         " must be a CuPy array (an object with __cuda_array_interface__), got " +
                         type_name(h));
  py::dict cai = h.attr("__cuda_array_interface__");
  DevArray a;
  a.obj = py::reinterpret_borrow<py::object>(h);
  if (cai.contains("mask") && !cai["mask"].is_none())
    throw py::type_error(std::string(name) + ": masked device arrays are not supported");
  std::string ts = py::str(cai["typestr"]);
  if (ts.size() < 2 || ts[0] == '>')
    throw py::type_error(std::string(name) + ": unsupported array type '" + ts + "'");
  a.kind = ts[1];
  // '|O' (object) has no size: itemsize 0, refused by the dtype checks that follow.
  a.itemsize = ts.size() > 2 ? std::atoi(ts.c_str() + 2) : 0;
  if (a.itemsize < 0) a.itemsize = 0;
  py::tuple data = cai["data"];
  a.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
  a.readonly = data[1].cast<bool>();
  for (py::handle d : py::tuple(cai["shape"])) a.shape.push_back(d.cast<int64_t>());
  a.strides.resize(a.shape.size());
  a.bstrides.resize(a.shape.size());
  py::object st = cai.contains("strides") ? py::object(cai["strides"]) : py::object(py::none());
  if (st.is_none()) {
    int64_t s = 1;
    for (int i = a.ndim() - 1; i >= 0; --i) {
      a.strides[i] = s;
      a.bstrides[i] = s * a.itemsize;  // no overflow: the exporter allocated this much
      s *= a.shape[i];
    }
  } else {
    py::tuple t = st;
    for (int i = 0; i < a.ndim(); ++i) {
      int64_t b = t[i].cast<int64_t>();
      if (a.itemsize > 0 && b % a.itemsize != 0)
        throw py::value_error(std::string(name) + ": strides are not a multiple of the item size");
      a.strides[i] = a.itemsize > 0 ? b / a.itemsize : 0;
      a.bstrides[i] = b;
    }
  }
  return a;
}

DevArray device_array_or_none(py::handle h, const char* name) {
  if (h.is_none()) return DevArray{};
  return device_array(h, name);
}

DevArray contiguous(const DevArray& a, const char* name) {
  if (a.c_contiguous()) return a;
  py::object c = cupy().attr("ascontiguousarray")(a.obj);
  return device_array(c, name);
}

DevArray contiguous_array(py::handle h, const char* name) {
  return contiguous(device_array(h, name), name);
}

DevArray empty(const std::vector<int64_t>& shape, char code) {
  py::tuple s(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) s[i] = py::int_(shape[i]);
  return device_array(cupy().attr("empty")(s, dtype_name(code)), "result");
}

DevArray zeros(const std::vector<int64_t>& shape, char code) {
  py::tuple s(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) s[i] = py::int_(shape[i]);
  return device_array(cupy().attr("zeros")(s, dtype_name(code)), "result");
}

DevArray workspace(int64_t elems, char code) {
  return elems > 0 ? empty({elems}, code) : DevArray();
}

void copy_into(const DevArray& dst, const DevArray& src) { cupy().attr("copyto")(dst.obj, src.obj); }

cudaStream_t current_stream() {
  py::object s = cupy().attr("cuda").attr("get_current_stream")();
  return reinterpret_cast<cudaStream_t>(s.attr("ptr").cast<uintptr_t>());
}

void check_cuda(cudaError_t err, const char* op) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(op) + ": CUDA error: " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
}

}  // namespace fastdl::bind_cuda
