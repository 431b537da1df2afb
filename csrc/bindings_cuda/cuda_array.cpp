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
  for (int64_t d : shape) n = checked_mul(n, d, "array");
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

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}
std::string shape_str(const DevArray& a) { return shape_str(a.shape); }

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
  if (ts.size() < 3 || ts[0] == '>')
    throw py::type_error(std::string(name) + ": unsupported array type '" + ts + "'");
  a.kind = ts[1];
  a.itemsize = std::stoi(ts.substr(2));
  py::tuple data = cai["data"];
  a.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
  a.readonly = data[1].cast<bool>();
  for (py::handle d : py::tuple(cai["shape"])) a.shape.push_back(d.cast<int64_t>());
  a.strides.resize(a.shape.size());
  py::object st = cai.contains("strides") ? py::object(cai["strides"]) : py::object(py::none());
  if (st.is_none()) {
    int64_t s = 1;
    for (int i = a.ndim() - 1; i >= 0; --i) { a.strides[i] = s; s *= a.shape[i]; }
  } else {
    py::tuple t = st;
    for (int i = 0; i < a.ndim(); ++i) {
      int64_t b = t[i].cast<int64_t>();
      if (b % a.itemsize != 0)
        throw py::value_error(std::string(name) + ": strides are not a multiple of the item size");
      a.strides[i] = b / a.itemsize;
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

void copy_into(const DevArray& dst, const DevArray& src) { cupy().attr("copyto")(dst.obj, src.obj); }

cudaStream_t current_stream() {
  py::object s = cupy().attr("cuda").attr("get_current_stream")();
  return reinterpret_cast<cudaStream_t>(s.attr("ptr").cast<uintptr_t>());
}

char float_code(const DevArray& a, const char* name) {
  char c = a.float_code();
  if (!c)
    throw py::type_error(std::string(name) + " must be float32 or float64, got " +
                         py::str(a.obj.attr("dtype")).cast<std::string>());
  return c;
}

void require_same_dtype(const DevArray& a, const char* name, const DevArray& ref,
                        const char* ref_name) {
  if (a.kind != ref.kind || a.itemsize != ref.itemsize)
    throw py::type_error(std::string(name) + " has dtype " +
                         py::str(a.obj.attr("dtype")).cast<std::string>() + " but " + ref_name +
                         " has dtype " + py::str(ref.obj.attr("dtype")).cast<std::string>() +
                         "; they must match");
}

void require_ndim(const DevArray& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(a));
}

void require_shape(const DevArray& a, const std::vector<int64_t>& shape, const char* name) {
  if (a.shape != shape)
    throw py::value_error(std::string(name) + " must have shape " + shape_str(shape) + ", got " +
                          shape_str(a));
}

void require_writeable(const DevArray& a, const char* name) {
  if (a.readonly) throw py::value_error(std::string(name) + " is read-only");
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw py::value_error(std::string(what) + ": size overflows 64-bit indexing");
  return r;
}

bool may_overlap(const DevArray& x, const DevArray& y) {
  if (!x.ptr || !y.ptr) return false;
  auto bounds = [](const DevArray& a, uintptr_t& lo, uintptr_t& hi) {
    lo = hi = reinterpret_cast<uintptr_t>(a.ptr);
    for (int i = 0; i < a.ndim(); ++i) {
      if (a.shape[i] == 0) { hi = lo; return; }
      int64_t ext = (a.shape[i] - 1) * a.strides[i] * a.itemsize;
      if (ext > 0) hi += uintptr_t(ext); else lo -= uintptr_t(-ext);
    }
    hi += uintptr_t(a.itemsize);
  };
  uintptr_t xl, xh, yl, yh;
  bounds(x, xl, xh);
  bounds(y, yl, yh);
  if (xl == xh || yl == yh) return false;
  return xl < yh && yl < xh;
}

void check_cuda(cudaError_t err, const char* op) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(op) + ": CUDA error: " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
}

}  // namespace fastdl::bind_cuda
