// ops.simple_rnn / lstm / gru and their backward passes: validation, then the
// CPU kernels in csrc/cpu/{simple_rnn,lstm,gru}.cpp.
//
// Shapes (Keras layouts; G = 1, 4, 3 gate blocks for SimpleRNN, LSTM, GRU):
//   x (N,T,I), h0 / c0 (N,U), kernel (I,G*U), recurrent_kernel (U,G*U),
//   bias (G*U,) or, for the GRU, (2,3U); hs (N,T,U).
// U is read from recurrent_kernel, N, T and I from x.
#include <string>

#include "bindings/common.h"
#include "cpu/rnn/gru.h"
#include "cpu/rnn/lstm.h"
#include "cpu/rnn/simple_rnn.h"

namespace fastdl::bind {
namespace {

using cpu::RnnActivation;

struct Dims {
  int64_t N, L, I, U;
};

cpu::RnnActivation parse_rnn_activation(const std::string& s) {
  if (s == "tanh") return RnnActivation::tanh;
  if (s == "relu") return RnnActivation::relu;
  throw py::value_error("simple_rnn: activation must be 'tanh' or 'relu', got '" + s + "'");
}

// A NumPy array with x's dtype (TypeError otherwise).
py::array arg(const py::handle& h, const char* name, const py::array& x) {
  py::array a = require_array(h, name);
  require_same_dtype(a, name, x, "x");
  return a;
}

// Optional array argument: None stays None.
py::object opt_arg(const py::object& h, const char* name, const py::array& x) {
  if (h.is_none()) return h;
  return arg(h, name, x);
}

std::string dims_str(std::initializer_list<int64_t> d) {
  std::string s = "(";
  int i = 0;
  for (int64_t v : d) s += (i++ ? ", " : "") + std::to_string(v);
  return s + (d.size() == 1 ? ",)" : ")");
}

// Checks x, the states, kernel and recurrent_kernel of an op whose weights have
// `gates` blocks of U columns; returns N, T, I, U.
Dims check_weights(const char* op, const py::array& x, const py::array& kernel,
                   const py::array& rec, int gates) {
  if (x.ndim() != 3)
    throw py::value_error(std::string(op) + ": x must be 3-D (batch, timesteps, features), got " +
                          shape_str(x));
  Dims d{x.shape(0), x.shape(1), x.shape(2), 0};
  if (rec.ndim() != 2 || rec.shape(1) != checked_mul(gates, rec.shape(0), op))
    throw py::value_error(std::string(op) + ": recurrent_kernel must have shape (units, " +
                          (gates == 1 ? std::string("units") : std::to_string(gates) + "*units") +
                          "), got " + shape_str(rec));
  d.U = rec.shape(0);
  const int64_t GU = gates * d.U;
  if (d.U == 0) throw py::value_error(std::string(op) + ": units must be positive, got 0");
  if (d.L == 0)
    throw py::value_error(std::string(op) + ": x must have at least one timestep, got shape " +
                          shape_str(x));
  if (d.I == 0)
    throw py::value_error(std::string(op) + ": x must have at least one feature, got shape " +
                          shape_str(x));
  if (kernel.ndim() != 2 || kernel.shape(0) != d.I || kernel.shape(1) != GU)
    throw py::value_error(std::string(op) + ": kernel must have shape " + dims_str({d.I, GU}) +
                          " for x " + shape_str(x) + " and recurrent_kernel " + shape_str(rec) +
                          ", got " + shape_str(kernel));
  checked_numel({d.N, d.L, GU + d.I + d.U}, op);
  return d;
}

void check_state(const char* op, const py::array& a, const char* name, const Dims& d) {
  if (a.ndim() != 2 || a.shape(0) != d.N || a.shape(1) != d.U)
    throw py::value_error(std::string(op) + ": " + name + " must have shape " +
                          dims_str({d.N, d.U}) + " (batch, units), got " + shape_str(a));
}

void check_seq(const char* op, const py::array& a, const char* name, const Dims& d, int64_t cols) {
  if (a.ndim() != 3 || a.shape(0) != d.N || a.shape(1) != d.L || a.shape(2) != cols)
    throw py::value_error(std::string(op) + ": " + name + " must have shape " +
                          dims_str({d.N, d.L, cols}) + ", got " + shape_str(a));
}

void check_bias(const char* op, const py::object& bo, const Dims& d, int gates, bool gru) {
  if (bo.is_none()) return;
  py::array b = py::reinterpret_borrow<py::array>(bo);
  const int64_t GU = gates * d.U;
  bool ok = gru ? (b.ndim() == 2 && b.shape(0) == 2 && b.shape(1) == GU)
                : (b.ndim() == 1 && b.shape(0) == GU);
  if (!ok)
    throw py::value_error(std::string(op) + ": bias must have shape " +
                          (gru ? dims_str({2, GU}) : dims_str({GU})) + ", got " + shape_str(b));
}

// dhs is (N,T,U) (every step) or (N,U) (last step only); returns which.
bool check_dhs(const char* op, const py::array& dhs, const Dims& d) {
  if (dhs.ndim() == 3) {
    check_seq(op, dhs, "dhs", d, d.U);
    return true;
  }
  if (dhs.ndim() == 2 && dhs.shape(0) == d.N && dhs.shape(1) == d.U) return false;
  throw py::value_error(std::string(op) + ": dhs must have shape " + dims_str({d.N, d.L, d.U}) +
                        " (every step) or " + dims_str({d.N, d.U}) + " (last step), got " +
                        shape_str(dhs));
}

// x and the arguments every recurrent op takes, their dtypes checked (all as x's).
struct RnnArgs {
  py::array x, h0, k, r;  // x, h0, kernel, recurrent_kernel
  char kind;              // 'f' or 'd'
};

RnnArgs rnn_args(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle r_h) {
  RnnArgs a;
  a.x = require_array(x_h, "x");
  a.kind = float_kind(a.x, "x");
  a.h0 = arg(h0_h, "h0", a.x);
  a.k = arg(k_h, "kernel", a.x);
  a.r = arg(r_h, "recurrent_kernel", a.x);
  return a;
}

// The shapes of x, kernel, recurrent_kernel (check_weights) and h0; N, T, I, U.
Dims check_rnn_args(const char* op, const RnnArgs& a, int gates) {
  Dims d = check_weights(op, a.x, a.k, a.r, gates);
  check_state(op, a.h0, "h0", d);
  return d;
}

// A backward op's saved forward outputs, hs (N,T,U) and cache (N,T,cache_cols)
// unless it is null, then dhs; returns whether dhs holds every step.
bool check_saved(const char* op, const py::array& dhs, const py::array& hs,
                 const py::array* cache, int64_t cache_cols, const Dims& d) {
  check_seq(op, hs, "hs", d, d.U);
  if (cache) check_seq(op, *cache, "cache", d, cache_cols);
  return check_dhs(op, dhs, d);
}

template <typename T>
const T* ptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}
template <typename T>
T* mptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
// C-contiguous copy when needed.
template <typename T>
py::array cont(const py::array& a) {
  return contiguous<T>(a);
}
// Same for an optional argument; None stays None.
template <typename T>
py::object cont(const py::object& a) {
  if (a.is_none()) return a;
  return contiguous<T>(py::reinterpret_borrow<py::array>(a));
}
// An optional array's data, or null for None. Called with the GIL released,
// so it reads the array struct directly instead of making a new reference.
template <typename T>
const T* ptr_or_null(const py::object& a) {
  return a.is_none() ? nullptr : reinterpret_cast<const T*>(py::detail::array_proxy(a.ptr())->data);
}
// The same for an output made by the binding (writeable by construction).
template <typename T>
T* mptr_or_null(const py::object& a) {
  return a.is_none() ? nullptr : reinterpret_cast<T*>(py::detail::array_proxy(a.ptr())->data);
}

// ------------------------------------------------------------ SimpleRNN

template <typename T>
py::array simple_rnn_typed(py::array x, py::array h0, py::array k, py::array r, py::object b,
                           const Dims& d, RnnActivation act) {
  x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r), b = cont<T>(b);
  py::array hs = empty<T>({d.N, d.L, d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::simple_rnn_forward<T>(mptr<T>(hs), ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r),
                               ptr_or_null<T>(b), d.N, d.L, d.I, d.U, act, ctx);
  }
  return hs;
}

py::array simple_rnn_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle r_h,
                           py::object b_h, const std::string& activation) {
  const char* op = "simple_rnn";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::object b = opt_arg(b_h, "bias", a.x);
  RnnActivation act = parse_rnn_activation(activation);
  Dims d = check_rnn_args(op, a, 1);
  check_bias(op, b, d, 1, false);
  if (a.kind == 'f') return simple_rnn_typed<float>(a.x, a.h0, a.k, a.r, b, d, act);
  return simple_rnn_typed<double>(a.x, a.h0, a.k, a.r, b, d, act);
}

template <typename T>
py::tuple simple_rnn_backward_typed(py::array dhs, bool all_steps, py::array x, py::array h0,
                                    py::array k, py::array r, py::array hs, const Dims& d,
                                    RnnActivation act, bool need_dx) {
  dhs = cont<T>(dhs), x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r),
  hs = cont<T>(hs);
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.L, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, d.U}), dr = empty<T>({d.U, d.U}), db = empty<T>({d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::simple_rnn_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dk), mptr<T>(dr), mptr<T>(db),
                                ptr<T>(dhs), all_steps, ptr<T>(x), ptr<T>(h0), ptr<T>(k),
                                ptr<T>(r), ptr<T>(hs), d.N, d.L, d.I, d.U, act, ctx);
  }
  return py::make_tuple(dx, dh0, dk, dr, db);
}

py::tuple simple_rnn_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h,
                                    py::handle k_h, py::handle r_h, py::handle hs_h,
                                    const std::string& activation, bool need_dx) {
  const char* op = "simple_rnn_backward";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::array dhs = arg(dhs_h, "dhs", a.x), hs = arg(hs_h, "hs", a.x);
  RnnActivation act = parse_rnn_activation(activation);
  Dims d = check_rnn_args(op, a, 1);
  bool all_steps = check_saved(op, dhs, hs, nullptr, 0, d);
  if (a.kind == 'f')
    return simple_rnn_backward_typed<float>(dhs, all_steps, a.x, a.h0, a.k, a.r, hs, d, act,
                                            need_dx);
  return simple_rnn_backward_typed<double>(dhs, all_steps, a.x, a.h0, a.k, a.r, hs, d, act, need_dx);
}

// ------------------------------------------------------------ LSTM

template <typename T>
py::tuple lstm_typed(py::array x, py::array h0, py::array c0, py::array k, py::array r,
                     py::object b, const Dims& d, bool return_cache) {
  x = cont<T>(x), h0 = cont<T>(h0), c0 = cont<T>(c0), k = cont<T>(k), r = cont<T>(r),
  b = cont<T>(b);
  const int64_t cache_n = checked_numel({d.N, d.L, 5, d.U}, "lstm cache");
  py::array hs = empty<T>({d.N, d.L, d.U}), cT = empty<T>({d.N, d.U});
  py::array cache;
  if (return_cache) cache = empty<T>({d.N, d.L, 5 * d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    T* pc = return_cache ? mptr<T>(cache) : ctx.arena->alloc<T>(cache_n);
    cpu::lstm_forward<T>(mptr<T>(hs), mptr<T>(cT), pc, ptr<T>(x), ptr<T>(h0), ptr<T>(c0),
                         ptr<T>(k), ptr<T>(r), ptr_or_null<T>(b), d.N, d.L, d.I, d.U, ctx);
  }
  if (return_cache) return py::make_tuple(hs, cT, cache);
  return py::make_tuple(hs, cT);
}

py::tuple lstm_entry(py::handle x_h, py::handle h0_h, py::handle c0_h, py::handle k_h,
                     py::handle r_h, py::object b_h, bool return_cache) {
  const char* op = "lstm";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::array c0 = arg(c0_h, "c0", a.x);
  py::object b = opt_arg(b_h, "bias", a.x);
  Dims d = check_rnn_args(op, a, 4);
  check_state(op, c0, "c0", d);
  check_bias(op, b, d, 4, false);
  if (a.kind == 'f') return lstm_typed<float>(a.x, a.h0, c0, a.k, a.r, b, d, return_cache);
  return lstm_typed<double>(a.x, a.h0, c0, a.k, a.r, b, d, return_cache);
}

template <typename T>
py::tuple lstm_backward_typed(py::array dhs, bool all_steps, py::object dcT, py::array x,
                              py::array h0, py::array c0, py::array k, py::array r, py::array hs,
                              py::array cache, const Dims& d, bool need_dx) {
  dhs = cont<T>(dhs), dcT = cont<T>(dcT), x = cont<T>(x), h0 = cont<T>(h0), c0 = cont<T>(c0);
  k = cont<T>(k), r = cont<T>(r), hs = cont<T>(hs), cache = cont<T>(cache);
  const int64_t G = 4 * d.U;
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.L, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U}), dc0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, G}), dr = empty<T>({d.U, G}), db = empty<T>({G});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::lstm_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dc0), mptr<T>(dk), mptr<T>(dr),
                          mptr<T>(db), ptr<T>(dhs), all_steps, ptr_or_null<T>(dcT), ptr<T>(x),
                          ptr<T>(h0), ptr<T>(c0), ptr<T>(k), ptr<T>(r), ptr<T>(hs),
                          ptr<T>(cache), d.N, d.L, d.I, d.U, ctx);
  }
  return py::make_tuple(dx, dh0, dc0, dk, dr, db);
}

py::tuple lstm_backward_entry(py::handle dhs_h, py::object dcT_h, py::handle x_h, py::handle h0_h,
                              py::handle c0_h, py::handle k_h, py::handle r_h, py::handle hs_h,
                              py::handle cache_h, bool need_dx) {
  const char* op = "lstm_backward";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::array dhs = arg(dhs_h, "dhs", a.x);
  py::object dcT = opt_arg(dcT_h, "dc_T", a.x);
  py::array c0 = arg(c0_h, "c0", a.x), hs = arg(hs_h, "hs", a.x);
  py::array cache = arg(cache_h, "cache", a.x);
  Dims d = check_rnn_args(op, a, 4);
  check_state(op, c0, "c0", d);
  if (!dcT.is_none()) check_state(op, py::reinterpret_borrow<py::array>(dcT), "dc_T", d);
  bool all_steps = check_saved(op, dhs, hs, &cache, 5 * d.U, d);
  if (a.kind == 'f')
    return lstm_backward_typed<float>(dhs, all_steps, dcT, a.x, a.h0, c0, a.k, a.r, hs, cache, d,
                                      need_dx);
  return lstm_backward_typed<double>(dhs, all_steps, dcT, a.x, a.h0, c0, a.k, a.r, hs, cache, d,
                                     need_dx);
}

// ------------------------------------------------------------ GRU

template <typename T>
py::object gru_typed(py::array x, py::array h0, py::array k, py::array r, py::object b,
                     const Dims& d, bool return_cache) {
  x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r), b = cont<T>(b);
  const int64_t cache_n = checked_numel({d.N, d.L, 4, d.U}, "gru cache");
  py::array hs = empty<T>({d.N, d.L, d.U});
  py::array cache;
  if (return_cache) cache = empty<T>({d.N, d.L, 4 * d.U});
  const T* pb = ptr_or_null<T>(b);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    T* pc = return_cache ? mptr<T>(cache) : ctx.arena->alloc<T>(cache_n);
    cpu::gru_forward<T>(mptr<T>(hs), pc, ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r), pb,
                        pb ? pb + 3 * d.U : nullptr, d.N, d.L, d.I, d.U, ctx);
  }
  if (return_cache) return py::make_tuple(hs, cache);
  return hs;
}

py::object gru_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle r_h,
                     py::object b_h, bool return_cache) {
  const char* op = "gru";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::object b = opt_arg(b_h, "bias", a.x);
  Dims d = check_rnn_args(op, a, 3);
  check_bias(op, b, d, 3, true);
  if (a.kind == 'f') return gru_typed<float>(a.x, a.h0, a.k, a.r, b, d, return_cache);
  return gru_typed<double>(a.x, a.h0, a.k, a.r, b, d, return_cache);
}

template <typename T>
py::tuple gru_backward_typed(py::array dhs, bool all_steps, py::array x, py::array h0,
                             py::array k, py::array r, py::array hs, py::array cache,
                             const Dims& d, bool need_dx) {
  dhs = cont<T>(dhs), x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r);
  hs = cont<T>(hs), cache = cont<T>(cache);
  const int64_t G = 3 * d.U;
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.L, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, G}), dr = empty<T>({d.U, G}), db = empty<T>({2, G});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::gru_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dk), mptr<T>(dr), mptr<T>(db),
                         ptr<T>(dhs), all_steps, ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r),
                         ptr<T>(hs), ptr<T>(cache), d.N, d.L, d.I, d.U, ctx);
  }
  return py::make_tuple(dx, dh0, dk, dr, db);
}

py::tuple gru_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h, py::handle k_h,
                             py::handle r_h, py::object b_h, py::handle hs_h,
                             py::handle cache_h, bool need_dx) {
  const char* op = "gru_backward";
  RnnArgs a = rnn_args(x_h, h0_h, k_h, r_h);
  py::array dhs = arg(dhs_h, "dhs", a.x);
  py::object b = opt_arg(b_h, "bias", a.x);
  py::array hs = arg(hs_h, "hs", a.x), cache = arg(cache_h, "cache", a.x);
  Dims d = check_rnn_args(op, a, 3);
  check_bias(op, b, d, 3, true);
  bool all_steps = check_saved(op, dhs, hs, &cache, 4 * d.U, d);
  if (a.kind == 'f')
    return gru_backward_typed<float>(dhs, all_steps, a.x, a.h0, a.k, a.r, hs, cache, d, need_dx);
  return gru_backward_typed<double>(dhs, all_steps, a.x, a.h0, a.k, a.r, hs, cache, d, need_dx);
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("simple_rnn", &simple_rnn_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("activation") = "tanh",
        "SimpleRNN over a whole sequence: hs (N,T,U)");
  m.def("simple_rnn_backward", &simple_rnn_backward_entry, py::arg("dhs"), py::arg("x"),
        py::arg("h0"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("hs"),
        py::arg("activation") = "tanh", py::arg("need_dx") = true,
        "(dx, dh0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("lstm", &lstm_entry, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("return_cache") = false,
        "LSTM over a whole sequence: (hs, c_T) or (hs, c_T, cache)");
  m.def("lstm_backward", &lstm_backward_entry, py::arg("dhs"), py::arg("dc_T"), py::arg("x"),
        py::arg("h0"), py::arg("c0"), py::arg("kernel"), py::arg("recurrent_kernel"),
        py::arg("hs"), py::arg("cache"), py::arg("need_dx") = true,
        "(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("gru", &gru_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("return_cache") = false,
        "GRU (reset_after=True) over a whole sequence: hs or (hs, cache)");
  m.def("gru_backward", &gru_backward_entry, py::arg("dhs"), py::arg("x"), py::arg("h0"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("hs"),
        py::arg("cache"), py::arg("need_dx") = true,
        "(dx, dh0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
}

}  // namespace fastdl::bind
