"""Property-based tests (hypothesis): random shapes, strides, paddings and dilations against
the NumPy references, and random malformed arguments that must never crash the process.

Every test runs with derandomize=True, so CI sees the same examples on every run; example
counts are small enough for a 2-core machine. Comparisons run in float64 (the references are
float64 too) with tolerances a few orders above rounding, plus a float32 GEMM check against a
float64 matmul with the error bound of ref_gemm.gemm_tol.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdl
from fastdl import ops

import ref_conv
import ref_gemm
import ref_rnn

HERE = os.path.dirname(os.path.abspath(__file__))

PROPS = settings(derandomize=True, deadline=None, max_examples=60, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(PROPS, max_examples=30)


def _strided(rng, shape, dtype, layout):
    """An array of `shape` with values from rng in one of several memory layouts:
    'c' contiguous, 'f' Fortran order, 'step' a slice with steps (non-unit strides),
    'neg' reversed axes (negative strides)."""
    v = rng.standard_normal(shape)
    if layout == "c":
        return np.ascontiguousarray(v, dtype)
    if layout == "f":
        return np.asfortranarray(v, dtype)
    if layout == "step":
        big = np.zeros(tuple(2 * s + 1 for s in shape), dtype)
        sl = tuple(slice(1, 1 + 2 * s, 2) for s in shape)
        big[sl] = v
        return big[sl]
    r = np.ascontiguousarray(v[tuple(slice(None, None, -1) for _ in shape)], dtype)
    return r[tuple(slice(None, None, -1) for _ in shape)]


LAYOUTS = st.sampled_from(["c", "f", "step", "neg"])


# ----------------------------------------------------------------- GEMM
@PROPS
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 70),
       ta=st.booleans(), tb=st.booleans(), la=LAYOUTS, lb=LAYOUTS,
       alpha=st.sampled_from([1.0, -0.5, 2.0, 0.0]), beta=st.sampled_from([0.0, 1.0, -1.5]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_gemm_matches_float64_matmul(m, n, k, ta, tb, la, lb, alpha, beta, dtype, seed):
    rng = np.random.default_rng(seed)
    a = _strided(rng, (k, m) if ta else (m, k), dtype, la)
    b = _strided(rng, (n, k) if tb else (k, n), dtype, lb)
    c = rng.standard_normal((m, n)).astype(dtype)
    a0, b0, c0 = a.copy(), b.copy(), c.copy()
    got = ops.gemm(a, b, c, alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    assert got.shape == (m, n) and got.dtype == dtype
    want = ref_gemm.gemm_ref(a, b, c, alpha, beta, ta, tb)
    tol = ref_gemm.gemm_tol(a, b, c, alpha, beta, ta, tb, dtype=dtype)
    assert np.all(np.abs(got - want) <= tol)
    # inputs are never modified
    assert np.array_equal(a, a0) and np.array_equal(b, b0) and np.array_equal(c, c0)


@FEW
@given(m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 30),
       lo=st.sampled_from(["c", "f", "step"]), seed=st.integers(0, 2**16))
def test_gemm_out_any_layout(m, n, k, lo, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    out = _strided(rng, (m, n), np.float64, lo)
    c = out.copy()
    r = ops.gemm(a, b, out, alpha=1.0, beta=1.0, out=out)  # c aliases out exactly
    assert r is out
    np.testing.assert_allclose(out, a @ b + c, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- convolution
def _padding_strategy():
    return st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 3),
                     st.tuples(st.integers(0, 3), st.integers(0, 3)),
                     st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                               st.tuples(st.integers(0, 3), st.integers(0, 3))))


def _fits(H, W, KH, KW, strides, padding, dilation):
    pt, pb, pl, pr = ref_conv.pads_for(H, W, KH, KW, strides, padding, dilation)
    dh, dw = ref_conv.pair(dilation)
    return (KH - 1) * dh + 1 <= H + pt + pb and (KW - 1) * dw + 1 <= W + pl + pr


@PROPS
@given(N=st.integers(0, 3), H=st.integers(1, 9), W=st.integers(1, 9), C=st.integers(1, 4),
       F=st.integers(1, 5), KH=st.integers(1, 4), KW=st.integers(1, 4),
       strides=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       dilation=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       padding=_padding_strategy(), bias=st.booleans(), layout=LAYOUTS,
       seed=st.integers(0, 2**16))
def test_conv2d_forward_backward_match_reference(N, H, W, C, F, KH, KW, strides, dilation, padding,
                                                 bias, layout, seed):
    rng = np.random.default_rng(seed)
    x = _strided(rng, (N, H, W, C), np.float64, layout)
    w = rng.standard_normal((KH, KW, C, F))
    b = rng.standard_normal(F) if bias else None
    kw = dict(strides=strides, padding=padding, dilation_rate=dilation)
    if not _fits(H, W, KH, KW, strides, padding, dilation):
        with pytest.raises(ValueError):
            ops.conv2d(x, w, b, **kw)
        return
    y = ops.conv2d(x, w, b, **kw)
    want = ref_conv.conv2d(x, w, b, strides, padding, dilation)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)

    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, **kw)
    rdx, rdw, rdb = ref_conv.conv2d_backward(dy, x, w, strides, padding, dilation)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------- pooling
def _pool_padding(KH, KW):
    # explicit pads must stay below the window (else ValueError, tested separately)
    return st.one_of(st.sampled_from(["valid", "same"]),
                     st.tuples(st.tuples(st.integers(0, KH - 1), st.integers(0, KH - 1)),
                               st.tuples(st.integers(0, KW - 1), st.integers(0, KW - 1))))


@st.composite
def pool_cases(draw):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(N=draw(st.integers(0, 3)), H=draw(st.integers(1, 9)), W=draw(st.integers(1, 9)),
                C=draw(st.integers(1, 5)), pool=(KH, KW),
                strides=draw(st.one_of(st.none(), st.integers(1, 3),
                                       st.tuples(st.integers(1, 3), st.integers(1, 3)))),
                padding=draw(_pool_padding(KH, KW)), layout=draw(LAYOUTS),
                seed=draw(st.integers(0, 2**16)))


@PROPS
@given(case=pool_cases(), kind=st.sampled_from(["max", "avg"]))
def test_pooling_matches_reference(case, kind):
    rng = np.random.default_rng(case["seed"])
    N, H, W, C = case["N"], case["H"], case["W"], case["C"]
    x = _strided(rng, (N, H, W, C), np.float64, case["layout"])
    pool, strides, padding = case["pool"], case["strides"], case["padding"]
    fwd = ops.max_pool2d if kind == "max" else ops.avg_pool2d
    bwd = ops.max_pool2d_backward if kind == "max" else ops.avg_pool2d_backward
    rfwd = ref_conv.max_pool2d if kind == "max" else ref_conv.avg_pool2d
    rbwd = ref_conv.max_pool2d_backward if kind == "max" else ref_conv.avg_pool2d_backward
    st_ = strides if strides is not None else pool
    if not _fits(H, W, pool[0], pool[1], st_, padding, 1):
        with pytest.raises(ValueError):
            fwd(x, pool, strides, padding)
        return
    y = fwd(x, pool, strides, padding)
    want = rfwd(x, pool, strides, padding)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = bwd(dy, x, pool_size=pool, strides=strides, padding=padding)
    np.testing.assert_allclose(dx, rbwd(dy, x, pool, strides, padding), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- recurrent
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


@PROPS
@given(cell=st.sampled_from(sorted(GATES)), N=st.integers(0, 4), T=st.integers(1, 5),
       I=st.integers(1, 6), U=st.integers(1, 7), all_steps=st.booleans(),
       layout=LAYOUTS, seed=st.integers(0, 2**16))
def test_recurrent_ops_match_reference(cell, N, T, I, U, all_steps, layout, seed):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    x = _strided(rng, (N, T, I), np.float64, layout)
    h0 = rng.standard_normal((N, U)) * 0.5
    c0 = rng.standard_normal((N, U)) * 0.5
    k = rng.standard_normal((I, G * U)) * 0.5
    r = _strided(rng, (U, G * U), np.float64, layout) * 0.5
    b = rng.standard_normal((2, G * U) if cell == "gru" else (G * U,)) * 0.3
    dhs = rng.standard_normal((N, T, U) if all_steps else (N, U))
    tol = dict(rtol=1e-9, atol=1e-10)
    if cell == "simple_rnn":
        hs = ops.simple_rnn(x, h0, k, r, b)
        np.testing.assert_allclose(hs, ref_rnn.simple_rnn(x, h0, k, r, b), **tol)
        got = ops.simple_rnn_backward(dhs, x, h0, k, r, hs)
        want = ref_rnn.simple_rnn_backward(dhs, x, h0, k, r, b)
    elif cell == "lstm":
        hs, cT, cache = ops.lstm(x, h0, c0, k, r, b, return_cache=True)
        rhs, rcT = ref_rnn.lstm(x, h0, c0, k, r, b)
        np.testing.assert_allclose(hs, rhs, **tol)
        np.testing.assert_allclose(cT, rcT, **tol)
        dcT = rng.standard_normal((N, U))
        got = ops.lstm_backward(dhs, dcT, x, h0, c0, k, r, hs, cache)
        want = ref_rnn.lstm_backward(dhs, dcT, x, h0, c0, k, r, b)
    else:
        hs, cache = ops.gru(x, h0, k, r, b, return_cache=True)
        np.testing.assert_allclose(hs, ref_rnn.gru(x, h0, k, r, b), **tol)
        got = ops.gru_backward(dhs, x, h0, k, r, b, hs, cache)
        want = ref_rnn.gru_backward(dhs, x, h0, k, r, b)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(g, w, **tol)


# ----------------------------------------------------------------- malformed arguments
# The fuzzing itself lives in malformed_calls.py and runs in a child interpreter, so a crash
# (segfault, abort, sanitizer report) is a test failure here instead of a dead pytest.
# With backend "cuda" the same calls get CuPy arrays and go to fastdl._cuda (on a GPU, or under
# the CPU emulation of tests/cuda_emu; skipped with the reason when neither is there).
FAMILIES = ["gemm", "conv", "pool", "rnn", "nn"]


def _small_thread_stacks():
    # The CUDA emulation runs each CUDA thread as an OS thread; glibc sizes their stacks from
    # RLIMIT_STACK at start-up, and 1024 of the default 8 MiB would not fit the child's cap.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = 2 << 20
    if soft == resource.RLIM_INFINITY or soft > want:
        resource.setrlimit(resource.RLIMIT_STACK, (want, hard))


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("family", FAMILIES)
def test_malformed_arguments_never_crash(family, backend, tmp_path):
    import subprocess
    log = tmp_path / "last_call.txt"
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    p = subprocess.run([sys.executable, os.path.join(HERE, "malformed_calls.py"), family, str(log),
                        backend], env=env, capture_output=True, text=True, timeout=600,
                       preexec_fn=_small_thread_stacks if backend == "cuda" else None)
    last = log.read_text() if log.exists() else "(none)"
    assert p.returncode == 0, (f"{family}: the child exited with {p.returncode}; last call:\n{last}\n"
                               f"stdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-6000:]}")
    assert "calls:" in p.stdout, p.stdout
