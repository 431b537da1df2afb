// ops.embedding / ops.embedding_backward: validation (bindings_common/checks.h),
// ids as int64 with their range checked, then cpu/nn/embedding.cpp.
#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "cpu/nn/embedding.h"

namespace fastdl::bind {
namespace {

using Ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// The ids as C-contiguous int64, every one checked to lie in [0, V).
Ids checked_ids(const py::array& ids, int64_t V) {
  Ids c = Ids::ensure(ids);
  const int64_t* p = c.data();
  const int64_t n = c.size();
  int64_t lo = 0, hi = 0;
  if (n) {
    lo = hi = p[0];
    for (int64_t i = 1; i < n; ++i) {
      lo = p[i] < lo ? p[i] : lo;
      hi = p[i] > hi ? p[i] : hi;
    }
  }
  checks::embedding_id_range(lo, hi, V);
  return c;
}

template <typename T>
py::array embedding_t(const py::array& ids, const py::array& table) {
  const int64_t V = table.shape(0), D = table.shape(1);
  Ids idc = checked_ids(ids, V);
  auto tc = contiguous<T>(table);
  std::vector<int64_t> shape = shape_vec(ids);
  shape.push_back(D);
  py::array_t<T> y = empty<T>(shape);
  const int64_t n = idc.size();
  const int64_t* pi = idc.data();
  const T* pt = tc.data();
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::embedding_forward<T>(py_, pt, pi, n, V, D, ctx);
  }
  return y;
}

py::array embedding(py::handle ids_h, py::handle table_h) {
  py::array ids = require_array(ids_h, "ids");
  py::array table = require_array(table_h, "embeddings");
  const char k = checks::embedding_args(view_of(ids), view_of(table));
  return k == 'f' ? embedding_t<float>(ids, table) : embedding_t<double>(ids, table);
}

template <typename T>
py::array embedding_backward_t(const py::array& dy, const py::array& ids, int64_t V,
                               const py::object& out_obj) {
  const int64_t D = dy.shape(dy.ndim() - 1);
  Ids idc = checked_ids(ids, V);
  auto dyc = contiguous<T>(dy);
  py::array dt;
  if (out_obj.is_none()) {
    dt = empty<T>({V, D});
  } else {
    dt = require_array(out_obj, "out");
    checks::embedding_out(view_of(dt), view_of(dyc), V);
  }
  const int64_t n = idc.size();
  const int64_t* pi = idc.data();
  const T* pdy = dyc.data();
  T* pdt = static_cast<T*>(dt.mutable_data());
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::embedding_backward<T>(pdt, pdy, pi, n, V, D, ctx);
  }
  return dt;
}

py::array embedding_backward(py::handle dy_h, py::handle ids_h, int64_t input_dim,
                             py::object out) {
  py::array dy = require_array(dy_h, "dy");
  py::array ids = require_array(ids_h, "ids");
  checks::embedding_input_dim(input_dim);
  const char k = checks::embedding_dy(view_of(dy), view_of(ids));
  return k == 'f' ? embedding_backward_t<float>(dy, ids, input_dim, out)
                  : embedding_backward_t<double>(dy, ids, input_dim, out);
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding", &embedding, py::arg("ids"), py::arg("embeddings"),
        "y = embeddings[ids] (ids.shape + (D,)); ids outside [0, V) raise IndexError");
  m.def("embedding_backward", &embedding_backward, py::arg("dy"), py::arg("ids"),
        py::arg("input_dim"), py::arg("out") = py::none(),
        "dembeddings (input_dim, D): dy rows summed into the rows their ids name");
}

}  // namespace fastdl::bind
