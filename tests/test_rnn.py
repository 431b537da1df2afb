"""Recurrent kernels: ops.simple_rnn / lstm / gru and their backward passes.

Forward and backward against the step-by-step NumPy references in ref_rnn.py;
backward also against float64 central finite differences of a random linear
loss, for the input, the initial state(s) and every weight.
"""
import json
import os

import numpy as np
import pytest

import fastdl
from conftest import run_python
from helpers import numeric_gradient
from fastdl import ops

import ref_rnn as ref

CELLS = ["simple_rnn", "lstm", "gru"]
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def make(cell, N, T, I, U, dtype=np.float64, seed=0, scale=0.5):
    """Seeded inputs and Keras-layout weights as a dict of arrays."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def r(*shape, s=scale):
        return (rng.standard_normal(shape) * s).astype(dtype)

    p = {"x": r(N, T, I, s=1.0), "h0": r(N, U), "kernel": r(I, G * U),
         "recurrent_kernel": r(U, G * U), "bias": r(2, G * U, s=0.3) if cell == "gru" else r(G * U, s=0.3)}
    if cell == "lstm":
        p["c0"] = r(N, U)
    return p


def forward(cell, p, **kw):
    """hs (and c_T for the LSTM) through fastdl."""
    if cell == "simple_rnn":
        return ops.simple_rnn(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"], **kw)
    if cell == "lstm":
        return ops.lstm(p["x"], p["h0"], p["c0"], p["kernel"], p["recurrent_kernel"], p["bias"], **kw)
    return ops.gru(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"], **kw)


def forward_ref(cell, p, activation="tanh"):
    if cell == "simple_rnn":
        return ref.simple_rnn(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"], activation)
    if cell == "lstm":
        return ref.lstm(p["x"], p["h0"], p["c0"], p["kernel"], p["recurrent_kernel"], p["bias"])
    return ref.gru(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"])


def grads(cell, p, dhs, dc_T=None, activation="tanh", **kw):
    """fastdl's gradients as a dict keyed like p (kw: need_dx)."""
    if cell == "simple_rnn":
        hs = ops.simple_rnn(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"],
                            activation=activation)
        g = ops.simple_rnn_backward(dhs, p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], hs,
                                    activation=activation, **kw)
        names = ["x", "h0", "kernel", "recurrent_kernel", "bias"]
    elif cell == "lstm":
        hs, _, cache = ops.lstm(p["x"], p["h0"], p["c0"], p["kernel"], p["recurrent_kernel"],
                                p["bias"], return_cache=True)
        g = ops.lstm_backward(dhs, dc_T, p["x"], p["h0"], p["c0"], p["kernel"],
                              p["recurrent_kernel"], hs, cache, **kw)
        names = ["x", "h0", "c0", "kernel", "recurrent_kernel", "bias"]
    else:
        hs, cache = ops.gru(p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"],
                            return_cache=True)
        g = ops.gru_backward(dhs, p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"],
                             hs, cache, **kw)
        names = ["x", "h0", "kernel", "recurrent_kernel", "bias"]
    assert len(g) == len(names)
    return dict(zip(names, g))


def grads_ref(cell, p, dhs, dc_T=None, activation="tanh"):
    if cell == "simple_rnn":
        g = ref.simple_rnn_backward(dhs, p["x"], p["h0"], p["kernel"], p["recurrent_kernel"],
                                    p["bias"], activation)
        return dict(zip(["x", "h0", "kernel", "recurrent_kernel", "bias"], g))
    if cell == "lstm":
        g = ref.lstm_backward(dhs, dc_T, p["x"], p["h0"], p["c0"], p["kernel"],
                              p["recurrent_kernel"], p["bias"])
        return dict(zip(["x", "h0", "c0", "kernel", "recurrent_kernel", "bias"], g))
    g = ref.gru_backward(dhs, p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], p["bias"])
    return dict(zip(["x", "h0", "kernel", "recurrent_kernel", "bias"], g))


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    n = fastdl.get_num_threads()
    yield
    fastdl.set_num_threads(n)


# ----------------------------------------------------------------- forward
SHAPES = [(1, 1, 1, 1), (2, 3, 4, 5), (1, 7, 3, 2), (5, 1, 3, 7), (3, 4, 13, 11), (9, 6, 5, 17)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(cell, dtype, tol, shape):
    p = make(cell, *shape, dtype=dtype, seed=sum(shape))
    out = forward(cell, p)
    want = forward_ref(cell, {k: v.astype(np.float64) for k, v in p.items()})
    if cell == "lstm":
        (hs, cT), (rh, rc) = out, want
        assert cT.dtype == dtype and cT.shape == rc.shape
        np.testing.assert_allclose(cT, rc, rtol=tol, atol=tol)
    else:
        hs, rh = out, want
    assert hs.dtype == dtype and hs.shape == shape[:2] + (shape[3],)
    np.testing.assert_allclose(hs, rh, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_simple_rnn_relu(dtype, tol):
    p = make("simple_rnn", 4, 6, 5, 7, dtype=dtype, seed=3)
    hs = forward("simple_rnn", p, activation="relu")
    want = forward_ref("simple_rnn", {k: v.astype(np.float64) for k, v in p.items()}, "relu")
    assert (hs == 0).any() and (hs > 0).any()  # both sides of the kink are exercised
    np.testing.assert_allclose(hs, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", CELLS)
def test_saturated_gates_stay_finite(cell):
    # Huge pre-activations: sigmoid and tanh saturate to exactly their limits, no NaN/inf.
    p = make(cell, 3, 4, 5, 6, dtype=np.float32, seed=4, scale=40.0)
    p["x"] *= 40
    out = forward(cell, p)
    want = forward_ref(cell, {k: v.astype(np.float64) for k, v in p.items()})
    hs, rh = (out[0], want[0]) if cell == "lstm" else (out, want)
    assert np.isfinite(hs).all()
    np.testing.assert_allclose(hs, rh, rtol=1e-4, atol=1e-4)


def test_sigmoid_tanh_accuracy_in_float32():
    # The float32 gates use a vectorisable exp: check tanh and sigmoid over a wide
    # range through a one-unit SimpleRNN (tanh) and LSTM gates (sigmoid).
    z = np.concatenate([np.linspace(-20, 20, 4001), np.geomspace(1e-6, 0.5, 200)])
    z = np.concatenate([z, -z]).astype(np.float32)
    n = z.size
    one = np.ones((1, 1), np.float32)
    x = z.reshape(n, 1, 1)
    hs = ops.simple_rnn(x, np.zeros((n, 1), np.float32), one, np.zeros((1, 1), np.float32),
                        np.zeros(1, np.float32))[:, 0, 0]
    want = np.tanh(z.astype(np.float64))
    np.testing.assert_allclose(hs, want, rtol=4e-7, atol=1e-7)
    # LSTM with only the input gate open (pre-activation z) and c~ = tanh(large) = 1:
    # c_T = sigmoid(z) when c0 = 0.
    k = np.array([[1, 0, 0, 0]], np.float32)
    b = np.array([0, 0, 30, 0], np.float32)
    _, cT = ops.lstm(x, np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32), k,
                     np.zeros((1, 4), np.float32), b)
    sig = 1 / (1 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(cT[:, 0], sig, rtol=4e-7, atol=1e-30)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_return_cache_gives_the_same_outputs(cell):
    p = make(cell, 3, 5, 4, 6, dtype=np.float32, seed=5)
    plain = forward(cell, p)
    cached = forward(cell, p, return_cache=True)
    if cell == "lstm":
        hs, cT, cache = cached
        np.testing.assert_array_equal(cT, plain[1])
        np.testing.assert_array_equal(hs, plain[0])
        assert cache.shape == (3, 5, 5 * 6)
    else:
        hs, cache = cached
        np.testing.assert_array_equal(hs, plain)
        assert cache.shape == (3, 5, 4 * 6)


# ----------------------------------------------------------------- backward
def _numeric_grads(cell, p, dhs, dc_T, activation, eps=1e-6):
    """Central differences of loss = sum(dhs * hs) (+ sum(dc_T * c_T)) for every entry."""
    def loss():
        out = forward(cell, p, activation=activation) if cell == "simple_rnn" else forward(cell, p)
        hs = out[0] if cell == "lstm" else out
        l = float(np.sum(dhs * (hs if dhs.ndim == 3 else hs[:, -1])))
        if cell == "lstm" and dc_T is not None:
            l += float(np.sum(dc_T * out[1]))
        return l

    return {name: numeric_gradient(loss, a, eps) for name, a in p.items()}


@pytest.mark.parametrize("cell,activation", [("simple_rnn", "tanh"), ("simple_rnn", "relu"),
                                             ("lstm", "tanh"), ("gru", "tanh")])
@pytest.mark.parametrize("all_steps", [True, False], ids=["dhs_all", "dhs_last"])
@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (1, 1, 2, 3)])
def test_gradients_match_finite_differences(cell, activation, all_steps, shape):
    N, T, I, U = shape
    p = make(cell, *shape, seed=7 + T)
    rng = np.random.default_rng(11)
    dhs = rng.standard_normal((N, T, U) if all_steps else (N, U))
    dc_T = rng.standard_normal((N, U)) if cell == "lstm" else None
    got = grads(cell, p, dhs, dc_T, activation)
    num = _numeric_grads(cell, p, dhs, dc_T, activation)
    want = grads_ref(cell, p, dhs, dc_T, activation)
    assert set(got) == set(num)
    for name in got:
        assert got[name].shape == p[name].shape and got[name].dtype == np.float64, name
        np.testing.assert_allclose(got[name], num[name], rtol=1e-6, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("all_steps", [True, False], ids=["dhs_all", "dhs_last"])
@pytest.mark.parametrize("shape", [(11, 6, 7, 13), (9, 3, 5, 97)])
def test_gradients_match_reference_larger(cell, all_steps, shape, threads):
    # Big enough that two threads split the batch (at least 4 rows each). With
    # U = 97 the packed weights end in a partial column panel, and the LSTM's
    # backward step (depth 4U = 388) runs in two depth blocks.
    N, T, I, U = shape
    p = make(cell, N, T, I, U, seed=13)
    rng = np.random.default_rng(2)
    dhs = rng.standard_normal((N, T, U) if all_steps else (N, U))
    dc_T = rng.standard_normal((N, U)) if cell == "lstm" else None
    want = grads_ref(cell, p, dhs, dc_T)
    for nt in (1, 2):
        fastdl.set_num_threads(nt)
        got = grads(cell, p, dhs, dc_T)
        for name in got:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}, {nt} threads")
    # float32 follows float64 closely.
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    got32 = grads(cell, p32, dhs.astype(np.float32),
                  None if dc_T is None else dc_T.astype(np.float32))
    for name in got32:
        assert got32[name].dtype == np.float32
        np.testing.assert_allclose(got32[name], want[name], rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("all_steps", [True, False], ids=["dhs_all", "dhs_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_need_dx_false_skips_dx_only(cell, all_steps, dtype, threads):
    # need_dx=False (a first layer) returns dx as None and every other gradient
    # bit for bit as with need_dx=True, on one thread and on two.
    N, T, I, U = 10, 5, 6, 9
    p = {k: v.astype(dtype) for k, v in make(cell, N, T, I, U, seed=21).items()}
    rng = np.random.default_rng(4)
    dhs = rng.standard_normal((N, T, U) if all_steps else (N, U)).astype(dtype)
    for nt in (1, 2):
        fastdl.set_num_threads(nt)
        full = grads(cell, p, dhs)
        part = grads(cell, p, dhs, need_dx=False)
        assert part["x"] is None and full["x"] is not None
        for name in full:
            if name != "x":
                np.testing.assert_array_equal(part[name], full[name], err_msg=f"{name}, {nt} threads")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape, scale", [((3, 2, 3, 300), 0.1), ((3, 2, 290, 150), 0.05),
                                          ((2, 3, 27, 40), 0.3), ((70, 3, 27, 40), 0.3)],
                         ids=["wide", "stacked_depth_blocks", "step_left_in_place",
                              "step_left_packed"])
def test_one_thread_against_reference(cell, shape, scale, threads):
    # wide: U = 300 in float64, the packed recurrent weights hold several column
    # blocks, and in backward (depth G*U) several depth blocks, with the GRU's
    # recurrent bias split along the columns. stacked_depth_blocks: the forward
    # step's [kernel; recurrent] (I+U = 440 deep) packs as two depth blocks, the
    # second one starting in the kernel's rows and ending in the recurrent
    # weights', and partial column panels. step_left_*: the per-step products
    # read their left operand ([x_t, h_{t-1}] or the gate gradients) in place
    # when a batch slice of it fits in L1 (2 rows, 67 columns deep) and pack it
    # when it does not (70 rows on one thread).
    N, T, I, U = shape
    p = make(cell, N, T, I, U, seed=17, scale=scale)
    dhs = np.random.default_rng(4).standard_normal((N, T, U))
    dc_T = np.random.default_rng(5).standard_normal((N, U)) if cell == "lstm" else None
    fastdl.set_num_threads(1)
    out = forward(cell, p)
    want = forward_ref(cell, p)
    for a, b in zip(*((out, want) if cell == "lstm" else ((out,), (want,)))):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    got, ref_g = grads(cell, p, dhs, dc_T), grads_ref(cell, p, dhs, dc_T)
    for name in got:
        np.testing.assert_allclose(got[name], ref_g[name], rtol=1e-9, atol=1e-11, err_msg=name)


def test_lstm_dc_T_none_is_zero():
    p = make("lstm", 3, 4, 2, 5, seed=8)
    dhs = np.random.default_rng(0).standard_normal((3, 4, 5))
    a = grads("lstm", p, dhs, None)
    b = grads("lstm", p, dhs, np.zeros((3, 5)))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("cell", CELLS)
def test_threads_agree_forward(cell, threads):
    p = make(cell, 16, 5, 6, 9, dtype=np.float32, seed=9)
    fastdl.set_num_threads(1)
    one = forward(cell, p)
    one = one if cell == "lstm" else (one,)
    for nt in (2, 3):  # batch slices of 8/8 and 5/5/6 rows
        fastdl.set_num_threads(nt)
        many = forward(cell, p)
        many = many if cell == "lstm" else (many,)
        for a, b in zip(one, many):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"{nt} threads")


_ISA_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
import fastdl
import test_rnn as T
out = {{"isa": fastdl.ops.get_capability()}}
for cell in T.CELLS:
    out[cell] = []
    # U = 97: a partial column panel and, for the LSTM's backward step, two depth blocks.
    for (N, L, I, U) in [(5, 4, 6, 37), (7, 3, 5, 97)]:
        p = T.make(cell, N, L, I, U, dtype=np.float32, seed=21)
        dhs = np.random.default_rng(1).standard_normal((N, L, U)).astype(np.float32)
        g = T.grads(cell, p, dhs, None)
        f = T.forward(cell, p)
        f = f if isinstance(f, tuple) else (f,)
        out[cell] += [a.tolist() for a in f] + [g[k].tolist() for k in sorted(g)]
print(json.dumps(out))
"""


def test_every_isa_matches_generic():
    # The float32 gate passes are built per instruction set; each level must agree
    # with the generic build (up to FMA rounding).
    here = os.path.dirname(os.path.abspath(__file__))
    code = _ISA_SCRIPT.format(tests=here)
    results = {}
    for level in fastdl.ops.supported_capabilities():
        r = run_python(code, {"FASTDL_CPU_CAPABILITY": level, "FASTDL_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr
        results[level] = json.loads(r.stdout.strip().splitlines()[-1])
        assert results[level]["isa"] == level
    base = results["generic"]
    for level, res in results.items():
        for cell in CELLS:
            for a, b in zip(res[cell], base[cell]):
                # FMA rounding, relative to each array's scale: a gradient summed
                # over every step can cancel to a value far below its terms.
                b = np.array(b)
                np.testing.assert_allclose(np.array(a), b, rtol=1e-5,
                                           atol=1e-5 * max(1.0, float(np.abs(b).max())),
                                           err_msg=f"{cell} {level}")


# ----------------------------------------------------------------- layouts, edge cases
@pytest.mark.parametrize("cell", CELLS)
def test_non_contiguous_inputs(cell):
    p = make(cell, 4, 5, 3, 6, dtype=np.float32, seed=10)
    want = forward(cell, p)
    rng = np.random.default_rng(3)
    dhs = rng.standard_normal((4, 5, 6)).astype(np.float32)
    dc_T = rng.standard_normal((4, 6)).astype(np.float32) if cell == "lstm" else None
    gwant = grads(cell, p, dhs, dc_T)
    # Same values, strange layouts: a time-major buffer seen batch-major, Fortran-order
    # weights, every-other-element views.
    q = dict(p)
    q["x"] = np.ascontiguousarray(p["x"].transpose(1, 0, 2)).transpose(1, 0, 2)
    q["kernel"] = np.asfortranarray(p["kernel"])
    q["recurrent_kernel"] = np.asfortranarray(p["recurrent_kernel"])
    wide = np.zeros((4, 12), np.float32)
    wide[:, ::2] = p["h0"]
    q["h0"] = wide[:, ::2]
    b2 = np.zeros((p["bias"].size * 2,), np.float32)
    b2[::2] = p["bias"].ravel()
    q["bias"] = b2[::2].reshape(p["bias"].shape)
    if cell == "lstm":
        q["c0"] = np.asfortranarray(p["c0"])
    assert not q["x"].flags.c_contiguous and not q["h0"].flags.c_contiguous
    before = {k: v.copy() for k, v in q.items()}
    got = forward(cell, q)
    if cell != "lstm":
        got, want = (got,), (want,)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    gdhs = np.asfortranarray(dhs)
    ggot = grads(cell, q, gdhs, dc_T)
    for name in gwant:
        np.testing.assert_allclose(ggot[name], gwant[name], rtol=1e-6, atol=1e-6, err_msg=name)
    for k in q:  # inputs are never modified
        np.testing.assert_array_equal(q[k], before[k])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("all_steps", [True, False])
def test_empty_batch(cell, all_steps):
    N, T, I, U = 0, 3, 4, 5
    G = GATES[cell]
    p = make(cell, N, T, I, U, dtype=np.float32)
    out = forward(cell, p)
    hs = out[0] if cell == "lstm" else out
    assert hs.shape == (0, T, U) and hs.dtype == np.float32
    if cell == "lstm":
        assert out[1].shape == (0, U)
    dhs = np.zeros((N, T, U) if all_steps else (N, U), np.float32)
    g = grads(cell, p, dhs, None)
    assert g["x"].shape == (0, T, I) and g["h0"].shape == (0, U)
    for name in ("kernel", "recurrent_kernel", "bias"):
        assert g[name].shape == p[name].shape
        assert not g[name].any(), name
    assert g["kernel"].shape == (I, G * U)


# ----------------------------------------------------------------- bad input
# On both compiled modules (dev: NumPy arrays for fastdl._C, CuPy arrays for fastdl._cuda).
def _good(cell, dev, dtype=np.float32):
    return {k: dev(v) for k, v in make(cell, 2, 3, 4, 5, dtype=dtype).items()}


def _call(cell, p):
    return forward(cell, p)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("name,shape,match", [
    ("x", (2, 3), "x must be 3-D"),
    ("x", (2, 3, 4, 1), "x must be 3-D"),
    ("kernel", (3, None), "kernel must have shape"),
    ("kernel", (4, 7), "kernel must have shape"),
    ("recurrent_kernel", (5, 5, 1), "recurrent_kernel must have shape"),
    ("recurrent_kernel", (4, None), "recurrent_kernel must have shape"),
    ("h0", (3, 5), "h0 must have shape"),
    ("h0", (2, 5, 1), "h0 must have shape"),
    ("bias", (7,), "bias must have shape"),
])
def test_bad_shapes_raise_value_error(dev, cell, name, shape, match):
    p = _good(cell, dev)
    G = GATES[cell]
    shape = tuple(G * 5 if s is None else s for s in shape)
    p[name] = dev(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=match):
        _call(cell, p)


def test_bad_lstm_c0_and_gru_bias(dev):
    p = _good("lstm", dev)
    p["c0"] = dev(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="c0 must have shape"):
        _call("lstm", p)
    p = _good("gru", dev)
    p["bias"] = dev(np.zeros(15, np.float32))  # Keras reset_after=True needs (2, 3U)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 15\)"):
        _call("gru", p)


@pytest.mark.parametrize("cell", CELLS)
def test_bad_dtypes_raise_type_error(dev, cell):
    p = _good(cell, dev)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        _call(cell, dict(p, x=p["x"].astype(np.int32)))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        _call(cell, dict(p, x=p["x"].astype(np.float16)))
    for name in p:
        if name == "x":
            continue
        with pytest.raises(TypeError, match=f"{name} has dtype float64 but x has dtype float32"):
            _call(cell, dict(p, **{name: p[name].astype(np.float64)}))
    with pytest.raises(TypeError, match=dev.not_an_array("kernel")):
        _call(cell, dict(p, kernel=p["kernel"].tolist()))


def test_bad_activation_and_dhs(dev):
    p = _good("simple_rnn", dev)
    with pytest.raises(ValueError, match="activation must be 'tanh' or 'relu'"):
        forward("simple_rnn", p, activation="sigmoid")
    hs = forward("simple_rnn", p)
    args = (p["x"], p["h0"], p["kernel"], p["recurrent_kernel"], hs)
    z = dev(np.zeros(hs.shape, np.float32))
    with pytest.raises(ValueError, match="activation must be"):
        ops.simple_rnn_backward(z, *args, activation="gelu")
    with pytest.raises(ValueError, match="dhs must have shape"):
        ops.simple_rnn_backward(dev(np.zeros((2, 4), np.float32)), *args)
    with pytest.raises(ValueError, match="dhs must have shape"):
        ops.simple_rnn_backward(dev(np.zeros((2, 2, 5), np.float32)), *args)
    with pytest.raises(ValueError, match="hs must have shape"):
        ops.simple_rnn_backward(z, *args[:-1], hs[:, :2])
    with pytest.raises(TypeError, match="dhs has dtype float64"):
        ops.simple_rnn_backward(dev(np.zeros(hs.shape)), *args)


def test_bad_backward_caches(dev):
    p = _good("lstm", dev)
    hs, cT, cache = forward("lstm", p, return_cache=True)
    base = (p["x"], p["h0"], p["c0"], p["kernel"], p["recurrent_kernel"], hs)
    z = dev(np.zeros(hs.shape, np.float32))
    with pytest.raises(ValueError, match="cache must have shape"):
        ops.lstm_backward(z, None, *base, cache[:, :, :20])
    with pytest.raises(ValueError, match="dc_T must have shape"):
        ops.lstm_backward(z, dev(np.zeros((2, 6), np.float32)), *base, cache)
    p = _good("gru", dev)
    hs, cache = forward("gru", p, return_cache=True)
    with pytest.raises(ValueError, match="cache must have shape"):
        ops.gru_backward(z, p["x"], p["h0"], p["kernel"], p["recurrent_kernel"],
                         p["bias"], hs, cache[:, :2])


def test_zero_units_or_timesteps_raise(dev):
    p = {k: dev(v) for k, v in make("simple_rnn", 2, 3, 4, 5, dtype=np.float32).items()}
    with pytest.raises(ValueError, match="at least one timestep"):
        forward("simple_rnn", dict(p, x=dev(np.zeros((2, 0, 4), np.float32))))
    with pytest.raises(ValueError, match="units must be positive"):
        forward("simple_rnn", dict(p, h0=dev(np.zeros((2, 0), np.float32)),
                                   kernel=dev(np.zeros((4, 0), np.float32)),
                                   recurrent_kernel=dev(np.zeros((0, 0), np.float32)),
                                   bias=dev(np.zeros(0, np.float32))))


@pytest.mark.parametrize("cell", CELLS)
def test_initial_state_none_means_zeros(dev, cell):
    # Both modules take h0 = None (and c0 = None for the LSTM) as zeros, forward and backward.
    p = make(cell, 2, 3, 4, 5)
    zeros = dict(p, h0=np.zeros_like(p["h0"]))
    if cell == "lstm":
        zeros["c0"] = np.zeros_like(p["c0"])
    none = {k: (None if k in ("h0", "c0") else dev(v)) for k, v in p.items()}
    want = forward(cell, zeros)
    got = forward(cell, none)
    for g, w in zip(got if cell == "lstm" else [got], want if cell == "lstm" else [want]):
        np.testing.assert_allclose(dev.host(g), w, rtol=1e-12, atol=1e-12)
    if cell == "simple_rnn":
        hs = forward(cell, zeros)
        dhs = np.ones_like(hs)
        want = ops.simple_rnn_backward(dhs, zeros["x"], zeros["h0"], zeros["kernel"],
                                       zeros["recurrent_kernel"], hs)
        got = ops.simple_rnn_backward(dev(dhs), none["x"], None, none["kernel"],
                                      none["recurrent_kernel"], dev(hs))
        for g, w in zip(got, want):
            np.testing.assert_allclose(dev.host(g), w, rtol=1e-12, atol=1e-12)
