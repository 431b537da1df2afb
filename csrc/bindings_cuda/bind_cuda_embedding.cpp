// _cuda embedding / embedding_backward: the CPU ops' names, arguments, checks
// (bindings_common/checks.h) and results, on CuPy arrays.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bindings_cuda/cuda_array.h"
#include "cuda/nn/nn.h"

namespace fastdl::bind_cuda {
namespace {

py::module_ cupy_mod() { return py::module_::import("cupy"); }

// The ids flattened as contiguous int64 on the device, every one checked to lie in
// [0, V) (the smallest and largest id come back to the host: one small copy).
DevArray checked_ids(const DevArray& ids, int64_t V) {
  py::object flat = ids.obj.attr("reshape")(-1);
  if (ids.numel() > 0) {
    py::object builtins = py::module_::import("builtins");
    const py::int_ cap(std::numeric_limits<int64_t>::max());
    const int64_t hi = builtins.attr("min")(py::int_(flat.attr("max")()), cap).cast<int64_t>();
    const int64_t lo = builtins.attr("min")(py::int_(flat.attr("min")()), cap).cast<int64_t>();
    checks::embedding_id_range(lo, hi, V);
  }
  if (!(ids.kind == 'i' && ids.itemsize == 8)) flat = flat.attr("astype")("int64");
  return contiguous_array(flat, "ids");
}

py::object embedding(py::handle ids_h, py::handle table_h) {
  DevArray ids = device_array(ids_h, "ids");
  DevArray table = device_array(table_h, "embeddings");
  const char code = checks::embedding_args(ids.view(), table.view());
  const int64_t V = table.shape[0], D = table.shape[1];
  DevArray idc = checked_ids(ids, V);
  table = contiguous(table, "embeddings");
  std::vector<int64_t> shape = ids.shape;
  shape.push_back(D);
  DevArray y = empty(shape, code);
  const int64_t n = idc.numel();
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f' ? cuda::embedding_forward<float>(y.data<float>(), table.data<const float>(),
                                                       idc.data<const int64_t>(), n, D, s)
                      : cuda::embedding_forward<double>(y.data<double>(),
                                                        table.data<const double>(),
                                                        idc.data<const int64_t>(), n, D, s);
  }
  check_cuda(err, "embedding");
  return y.obj;
}

py::object embedding_backward(py::handle dy_h, py::handle ids_h, int64_t V, py::handle out_h) {
  DevArray dy = device_array(dy_h, "dy");
  DevArray ids = device_array(ids_h, "ids");
  checks::embedding_input_dim(V);
  const char code = checks::embedding_dy(dy.view(), ids.view());
  const int64_t D = dy.shape[dy.ndim() - 1];
  DevArray idc = checked_ids(ids, V);
  dy = contiguous(dy, "dy");
  DevArray dt;
  if (out_h.is_none()) {
    dt = empty({V, D}, code);
  } else {
    dt = device_array(out_h, "out");
    checks::embedding_out(dt.view(), dy.view(), V);
  }
  // a stable sort keeps the tokens of one id in their order: a deterministic sum
  py::object order_obj = cupy_mod().attr("argsort")(idc.obj, py::arg("kind") = "stable");
  DevArray order = contiguous_array(order_obj.attr("astype")("int64"), "order");
  DevArray sorted = contiguous_array(idc.obj.attr("take")(order.obj), "sorted ids");
  const int64_t n = idc.numel();
  cudaStream_t s = current_stream();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = code == 'f'
              ? cuda::embedding_backward<float>(dt.data<float>(), dy.data<const float>(),
                                                sorted.data<const int64_t>(),
                                                order.data<const int64_t>(), n, V, D, s)
              : cuda::embedding_backward<double>(dt.data<double>(), dy.data<const double>(),
                                                 sorted.data<const int64_t>(),
                                                 order.data<const int64_t>(), n, V, D, s);
  }
  check_cuda(err, "embedding_backward");
  return dt.obj;
}

}  // namespace

void bind_cuda_embedding(py::module_& m) {
  m.def("embedding", &embedding, py::arg("ids"), py::arg("embeddings"));
  m.def("embedding_backward", &embedding_backward, py::arg("dy"), py::arg("ids"),
        py::arg("input_dim"), py::arg("out") = py::none());
}

}  // namespace fastdl::bind_cuda
