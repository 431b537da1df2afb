"""ops.gemm / ops.matmul_kernel / ops.linear against a float64 NumPy reference."""
import itertools
import json
import threading

import numpy as np
import pytest

import fastdl
from fastdl import ops
from conftest import run_python
from ref_gemm import gemm_ref, gemm_tol

DTYPES = [np.float32, np.float64]


def check(got, a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
          activation="linear"):
    ref = gemm_ref(a, b, c, alpha, beta, trans_a, trans_b, bias, activation)
    assert got.shape == ref.shape
    tol = gemm_tol(a, b, c, alpha, beta, trans_a, trans_b, bias, got.dtype)
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max error {err.max()} (tolerance there {tol.flat[err.argmax()]})"


def operands(rng, m, k, n, dtype, trans_a=False, trans_b=False):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def boundary_sizes():
    """Sizes around the register tile and cache blocks of the kernels in use."""
    info = ops.gemm_kernel_info("float32")
    mr, nr, mc, kc = info["mr"], info["nr"], info["mc"], info["kc"]
    return sorted({(mr - 1, 3, nr - 1), (mr, 5, nr), (mr + 1, 7, nr + 1),
                   (2 * mr + 1, kc - 1, 2 * nr + 3), (3, kc + 1, 5), (mr + 2, 2 * kc + 3, nr + 5),
                   (mc + 1, 9, nr + 1), (mc - 1, 11, 2 * nr - 1)})


# ----------------------------------------------------------------- values
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (2, 2, 2), (1, 7, 1), (3, 1, 5), (7, 13, 17),
                                   (31, 37, 41), (64, 64, 64), (97, 101, 89), (5, 300, 3),
                                   (300, 3, 5), (129, 257, 65), (19, 37, 600), (83, 13, 700)])
def test_matmul_sizes(rng, dtype, m, k, n):
    a, b = operands(rng, m, k, n, dtype)
    got = ops.matmul_kernel(a, b)
    assert got.dtype == dtype and got.flags.c_contiguous
    check(got, a, b)


@pytest.mark.parametrize("m,k,n", boundary_sizes())
def test_blocking_boundaries(rng, m, k, n):
    for dtype in DTYPES:
        a, b = operands(rng, m, k, n, dtype)
        check(ops.matmul_kernel(a, b), a, b)


def test_wide_n_crosses_nc(rng):
    nc = ops.gemm_kernel_info("float32")["nc"]
    for dtype in DTYPES:
        a, b = operands(rng, 3, 4, nc + 3, dtype)
        check(ops.matmul_kernel(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (6, 8, 16), (13, 29, 23), (70, 130, 50),
                                   (21, 7, 600)])
def test_transposes(rng, dtype, trans_a, trans_b, m, k, n):
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    c = rng.standard_normal((m, n)).astype(dtype)
    got = ops.gemm(a, b, c, alpha=0.5, beta=-1.5, trans_a=trans_a, trans_b=trans_b)
    check(got, a, b, c, 0.5, -1.5, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_views_read_in_place(rng, dtype):
    m, k, n = 23, 41, 37
    big_a = rng.standard_normal((3 * m, 2 * k + 1)).astype(dtype)
    big_b = rng.standard_normal((2 * k, 3 * n + 2)).astype(dtype)
    views_a = [big_a[::3, 1::2], big_a[::-3, ::-2][:m, :k], big_a[:k, :m].T,
               np.asfortranarray(big_a[:m, :k]), big_a[::2, :k][:m]]
    views_b = [big_b[::2, ::3][:k, :n], big_b[::-2, 2::3][:k, :n], big_b[:n, :k].T,
               big_b[1:k + 1, :n]]
    for a, b in itertools.product(views_a, views_b):
        a, b = a[:m, :k], b[:k, :n]
        check(ops.matmul_kernel(a, b), a, b)
        # the same views through trans_*: op(a.T) with trans_a reads a's memory again
        check(ops.gemm(a.T, b.T, trans_a=True, trans_b=True), a, b)


def misaligned(x):
    """A copy of x whose data pointer is not aligned to its item size."""
    buf = np.zeros(x.nbytes + 1, np.uint8)
    y = np.frombuffer(buf.data, x.dtype, x.size, offset=1).reshape(x.shape)
    y[...] = x
    assert not y.flags.aligned
    return y


@pytest.mark.parametrize("dtype", DTYPES)
def test_byteswapped_and_misaligned_arrays(rng, dtype):
    m, k, n = 11, 21, 19
    a, b = operands(rng, m, k, n, dtype)
    swapped = a.astype(a.dtype.newbyteorder())
    check(ops.matmul_kernel(swapped, b), a, b)
    check(ops.matmul_kernel(misaligned(a), misaligned(b)), a, b)
    bias = rng.standard_normal(n).astype(dtype)
    check(ops.linear(a, b, misaligned(bias).astype(bias.dtype.newbyteorder())), a, b, bias=bias)
    out = misaligned(np.zeros((m, n), dtype))
    ops.gemm(a, b, out=out)
    check(out, a, b)
    out = np.zeros((m, n), np.dtype(dtype).newbyteorder())
    ops.gemm(swapped, b, out=out)
    check(out.astype(dtype), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("deep", [False, True])
def test_alpha_beta(rng, dtype, deep):
    # deep: k spans several KC blocks (beta applies to the first one only); a
    # transposed b makes the driver pack B, and so block k, at any thread count
    m, k, n = (70, 2 * ops.gemm_kernel_info()["kc"] + 5, 45) if deep else (17, 33, 19)
    a, b = operands(rng, m, k, n, dtype, trans_b=deep)
    c = rng.standard_normal((m, n)).astype(dtype)
    for alpha, beta in [(1.0, 0.0), (2.0, 1.0), (-0.5, 0.25), (0.0, 3.0), (0.0, 0.0), (1.0, -1.0)]:
        c0 = c.copy()
        got = ops.gemm(a, b, c, alpha=alpha, beta=beta, trans_b=deep)
        np.testing.assert_array_equal(c, c0)  # inputs are never modified
        check(got, a, b, c, alpha, beta, trans_b=deep)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_ignores_nan_in_c(rng, dtype):
    a, b = operands(rng, 9, 20, 35, dtype)
    c = np.full((9, 35), np.nan, dtype)
    got = ops.gemm(a, b, c, beta=0.0)
    assert np.isfinite(got).all()
    check(got, a, b)
    out = np.full((9, 35), np.nan, dtype)
    ops.gemm(a, b, out=out)
    assert np.isfinite(out).all()


def test_alpha_zero_does_not_read_a_and_b(rng):
    a = np.full((5, 7), np.nan, np.float32)
    b = np.full((7, 3), np.inf, np.float32)
    c = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ops.gemm(a, b, c, alpha=0.0, beta=2.0), 2 * c, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_dimensions(rng, dtype):
    for m, k, n in [(0, 3, 4), (3, 4, 0), (0, 0, 0)]:
        a, b = operands(rng, m, k, n, dtype)
        got = ops.matmul_kernel(a, b)
        assert got.shape == (m, n) and got.dtype == dtype
    # k = 0: the product is zero, beta * c and the bias remain
    a, b = operands(rng, 4, 0, 5, dtype)
    c = rng.standard_normal((4, 5)).astype(dtype)
    np.testing.assert_array_equal(ops.matmul_kernel(a, b), np.zeros((4, 5), dtype))
    np.testing.assert_allclose(ops.gemm(a, b, c, beta=0.5), 0.5 * c, rtol=1e-6)
    bias = rng.standard_normal(5).astype(dtype)
    np.testing.assert_allclose(ops.linear(a, b, bias, activation="relu"),
                               np.broadcast_to(np.maximum(bias, 0), (4, 5)), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(1, 3, 1), (32, 784, 128), (32, 128, 10), (13, 50, 70)])
def test_linear_bias_relu_epilogue(rng, dtype, m, k, n):
    x, w = operands(rng, m, k, n, dtype)
    bias = rng.standard_normal(n).astype(dtype)
    check(ops.linear(x, w, bias, activation="relu"), x, w, bias=bias, activation="relu")
    check(ops.linear(x, w, bias), x, w, bias=bias)
    check(ops.linear(x, w, None, activation="relu"), x, w, activation="relu")
    out = np.empty((n, m), dtype).T  # column-major out, bias along its rows in memory
    assert ops.linear(x, w, bias, activation="relu", out=out) is out
    check(out, x, w, bias=bias, activation="relu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n,group", [(100, 784, 128, 32), (65, 13, 5, 32), (40, 7, 3, 7),
                                         (7, 20, 30, 1), (50, 33, 17, 50), (50, 33, 17, 64),
                                         (0, 4, 3, 2)])
def test_linear_fn_groups_rows_as_separate_products(rng, dtype, m, k, n, group):
    # each group of rows gets the bits of a call on its own (short edge tiles and the
    # direct loop for tiny products round differently), on any number of threads
    x, w = operands(rng, m, k, n, dtype)
    bias = rng.standard_normal(n).astype(dtype)
    want = np.concatenate([ops.linear(x[i:i + group], w, bias, activation="relu")
                           for i in range(0, m, group)] or [np.empty((0, n), dtype)])
    for threads in (1, 2):
        saved = ops.get_num_threads()
        try:
            ops.set_num_threads(threads)
            out = np.empty((m, n), dtype)
            assert ops.linear_fn(w, bias, "relu", out, group)(x) is out
            assert np.array_equal(out, want)
            check(out, x, w, bias=bias, activation="relu")
        finally:
            ops.set_num_threads(saved)


def test_group_rows_is_checked(rng):
    x, w = operands(rng, 4, 3, 2, np.float32)
    with pytest.raises(ValueError, match="group_rows must be 0"):
        ops.linear_fn(w, None, "linear", np.empty((4, 2), np.float32), -1)(x)


@pytest.mark.parametrize("m,transposed_w", [(9, True), (70, False), (70, True)])
def test_linear_relu_with_large_k_splits(rng, m, transposed_w):
    # k spans several KC blocks of packed operands: relu and bias must apply
    # only after the last one (a transposed kernel view, or many rows, makes
    # the driver pack B and so block k)
    kc = ops.gemm_kernel_info("float32")["kc"]
    k, n = 2 * kc + 5, 300
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32).T if transposed_w else \
        rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    for threads in (1, 2):
        saved = ops.get_num_threads()
        try:
            ops.set_num_threads(threads)
            check(ops.linear(x, w, bias, activation="relu"), x, w, bias=bias, activation="relu")
        finally:
            ops.set_num_threads(saved)


# ----------------------------------------------------------------- out=
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_in_place_and_strided(rng, dtype):
    m, k, n = 19, 27, 33
    a, b = operands(rng, m, k, n, dtype)
    out = np.empty((m, n), dtype)
    assert ops.gemm(a, b, out=out) is out
    check(out, a, b)
    out = np.empty((m, n), dtype)
    assert ops.matmul_kernel(a, b, out=out) is out
    check(out, a, b)
    big = np.zeros((2 * m, 3 * n), dtype)
    view = big[::2, ::3]
    assert ops.gemm(a, b, out=view) is view
    check(view, a, b)
    assert np.all(big[1::2] == 0)  # nothing written between the strided rows
    neg = np.zeros((m, n), dtype)[::-1, ::-1]
    ops.gemm(a, b, out=neg)
    check(neg, a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_c_accumulates(rng, dtype):
    a, b = operands(rng, 21, 30, 40, dtype)
    c = rng.standard_normal((21, 40)).astype(dtype)
    c0 = c.copy()
    assert ops.gemm(a, b, c, beta=1.0, out=c) is c
    check(c, a, b, c0, 1.0, 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_aliases_inputs(rng, dtype):
    n = 37
    a, b = operands(rng, n, n, n, dtype)
    a0, b0 = a.copy(), b.copy()
    ops.gemm(a, b, out=a)  # out is a
    check(a, a0, b0)
    a = a0.copy()
    ops.gemm(a, b, out=b)  # out is b
    check(b, a0, b0)
    b = b0.copy()
    ops.gemm(a, a, out=a)  # out is both
    check(a, a0, a0)
    # out overlaps a transposed view of a, with c = out
    a = a0.copy()
    c = a0.copy()
    ops.gemm(a.T, b, a, beta=0.5, out=a)
    check(a, a0.T, b0, c, 1.0, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 5, 384, 785])
def test_one_row_products(rng, dtype, k):
    """C of one row and a row-major B take the wide one-row kernels: every column
    count around their widths (whole and masked vectors), with the full epilogue."""
    for n in [1, 3, 7, 8, 9, 31, 33, 63, 64, 65, 127, 128, 129, 200, 257]:
        a, b = operands(rng, 1, k, n, dtype)
        c = rng.standard_normal((1, n)).astype(dtype)
        check(ops.gemm(a, b, c, alpha=0.7, beta=0.3), a, b, c, 0.7, 0.3)
        bias = rng.standard_normal(n).astype(dtype)
        check(ops.linear(a, b, bias, activation="relu"), a, b, bias=bias, activation="relu")
        # a strided row of A and a row-major B with a row stride wider than n
        wide = rng.standard_normal((k, n + 5)).astype(dtype)
        a2 = rng.standard_normal((2, k)).astype(dtype)[:1, :]
        check(ops.gemm(a2[:, ::1], wide[:, :n]), a2, wide[:, :n])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k", [(2, 3), (288, 1000), (77, 129), (1000, 33)])
def test_one_column_products(rng, dtype, m, k):
    """C of one column from an A stored by columns (a weight gradient patches^T . dy) runs
    as one row of C^T; with A stored by rows, or a bias, it stays on the tiled path."""
    at = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal((k, 1)).astype(dtype)
    c = rng.standard_normal((m, 1)).astype(dtype)
    check(ops.gemm(at, b, c, alpha=0.5, beta=-1.0, trans_a=True), at.T, b, c, 0.5, -1.0)
    check(ops.gemm(np.ascontiguousarray(at.T), b), at.T, b)
    bias = rng.standard_normal(1).astype(dtype)
    check(ops.linear(np.ascontiguousarray(at.T), b, bias, activation="relu"), at.T, b,
          bias=bias, activation="relu")


@pytest.mark.parametrize("m,k,n", [(8, 512, 512), (12, 700, 300), (64, 200, 1100)])
def test_few_rows_large_b_read_in_place(rng, m, k, n):
    """Few rows of C read B in place whatever its size (each column panel is
    used by every row tile right away), k still blocked for the L1 cache."""
    for dtype in DTYPES:
        a, b = operands(rng, m, k, n, dtype)
        bias = rng.standard_normal(n).astype(dtype)
        check(ops.linear(a, b, bias, activation="relu"), a, b, bias=bias, activation="relu")
        c = rng.standard_normal((m, n)).astype(dtype)
        check(ops.gemm(a, b, c, alpha=-1.5, beta=2.0), a, b, c, -1.5, 2.0)


# ----------------------------------------------------------------- levels, threads
def test_every_capability_agrees_with_generic(tmp_path):
    code = """
import json, sys, numpy as np
from fastdl import ops
rng = np.random.default_rng(7)
res = {}
shapes = [(1, 1, 1), (7, 13, 17), (33, 65, 129), (32, 128, 10), (100, 517, 61), (70, 300, 300),
          (1, 784, 128), (1, 50, 77), (8, 512, 520)]
for dt in ("float32", "float64"):
    for (m, k, n) in shapes:
        a = rng.standard_normal((m, k)).astype(dt)
        b = rng.standard_normal((n, k)).astype(dt)
        c = rng.standard_normal((m, n)).astype(dt)
        bias = rng.standard_normal(n).astype(dt)
        r1 = ops.gemm(a, b, c, alpha=0.7, beta=0.3, trans_b=True)
        r2 = ops.linear(a[:, ::-1], np.ascontiguousarray(b.T), bias, activation="relu")
        res[f"{dt}-{m}-{k}-{n}"] = [r1.ravel().tolist(), r2.ravel().tolist()]
print(json.dumps({"cap": ops.get_capability(), "res": res}))
"""
    outs = {}
    for level in ops.supported_capabilities():
        r = run_python(code, {"FASTDL_CPU_CAPABILITY": level})
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["cap"] == level
        outs[level] = data["res"]
    gen = outs["generic"]
    for level, res in outs.items():
        for key, pair in res.items():
            k = int(key.split("-")[2])
            rtol = (1e-5 if key.startswith("float32") else 1e-13) * np.sqrt(k)
            for got, want in zip(pair, gen[key]):
                np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol,
                                           err_msg=f"{level} vs generic, {key}")


def test_one_and_two_threads_agree(rng):
    saved = ops.get_num_threads()
    try:
        for (m, k, n) in [(256, 300, 256), (64, 288, 2000), (1000, 64, 40), (32, 784, 128),
                          (1, 4096, 1000), (8, 1024, 1024)]:
            a, b = operands(rng, m, k, n, np.float32)
            bias = rng.standard_normal(n).astype(np.float32)
            ops.set_num_threads(1)
            r1 = ops.linear(a, b, bias, activation="relu")
            ops.set_num_threads(2)
            r2 = ops.linear(a, b, bias, activation="relu")
            np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-6)
            check(r2, a, b, bias=bias, activation="relu")
    finally:
        ops.set_num_threads(saved)


def test_concurrent_calls_from_python_threads(rng):
    cases = []
    for i in range(6):
        m, k, n = 40 + 7 * i, 90 + 13 * i, 50 + 11 * i
        dt = DTYPES[i % 2]
        a, b = operands(rng, m, k, n, dt)
        cases.append((a, b, gemm_ref(a, b), gemm_tol(a, b, dtype=dt)))
    errors = []

    def worker(j):
        try:
            for it in range(20):
                a, b, ref, tol = cases[(j + it) % len(cases)]
                got = ops.matmul_kernel(a, b)
                if not np.all(np.abs(got - ref) <= tol):
                    errors.append(f"thread {j} iteration {it}: wrong result")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


# ----------------------------------------------------------------- bad input
# On both compiled modules (dev: NumPy arrays for fastdl._C, CuPy arrays for fastdl._cuda).
def test_wrong_dtypes_are_type_errors(dev):
    f32 = dev(np.ones((2, 3), np.float32))
    for bad in [np.ones((2, 3), np.int64), np.ones((2, 3), np.float16), np.ones((2, 3), bool)]:
        with pytest.raises(TypeError, match="a must be float32 or float64"):
            ops.matmul_kernel(dev(bad), f32.T)
    with pytest.raises(TypeError, match="b has dtype float64 but a has dtype float32"):
        ops.matmul_kernel(f32, dev(np.ones((3, 2))))
    with pytest.raises(TypeError, match="c has dtype"):
        ops.gemm(f32, f32.T, dev(np.ones((2, 2))), beta=1.0)
    with pytest.raises(TypeError, match="out has dtype"):
        ops.gemm(f32, f32.T, out=dev(np.ones((2, 2))))
    with pytest.raises(TypeError, match="bias has dtype"):
        ops.linear(f32, f32.T, dev(np.ones(2)))
    with pytest.raises(TypeError, match=dev.not_an_array("a") + "|a must be a NumPy array, got list"):
        ops.matmul_kernel([[1.0, 2.0]], f32)
    with pytest.raises(TypeError, match=dev.not_an_array("b")):
        ops.gemm(f32, 3.0)
    with pytest.raises(TypeError, match="activation"):
        ops.linear(f32, f32.T, activation=3)
    with pytest.raises(TypeError, match=dev.not_an_array("out")):
        ops.gemm(f32, f32.T, out=[[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(TypeError, match=dev.not_an_array("c")):
        ops.gemm(f32, f32.T, [[0.0, 0.0], [0.0, 0.0]], beta=1.0)
    for bad in [np.ones((2, 3), complex), np.ones((2, 3), object)]:
        with pytest.raises(TypeError, match="a must be float32 or float64"):
            ops.matmul_kernel(dev(bad), f32.T)


def test_wrong_shapes_are_value_errors(dev):
    a = dev(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"a must be 2-D, got shape \(3,\)"):
        ops.matmul_kernel(dev(np.ones(3, np.float32)), a)
    with pytest.raises(ValueError, match=r"b must be 2-D, got shape \(1, 2, 3\)"):
        ops.matmul_kernel(a, dev(np.ones((1, 2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"inner dimensions differ.*\(2, 3\).*\(2, 3\)"):
        ops.matmul_kernel(a, a)
    with pytest.raises(ValueError, match=r"inner dimensions"):
        ops.gemm(a, a, trans_a=True, trans_b=True)
    with pytest.raises(ValueError, match=r"c must have shape \(2, 2\), got \(2, 3\)"):
        ops.gemm(a, a.T, a, beta=1.0)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 2\), got \(2, 3\)"):
        ops.gemm(a, a.T, out=dev(np.empty((2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        ops.linear(a, a.T, dev(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="activation must be 'linear' or 'relu'"):
        ops.linear(a, a.T, activation="gelu")
    with pytest.raises(ValueError, match=r"a must be 2-D, got shape \(\)"):
        ops.matmul_kernel(dev(np.ones((), np.float32)), a)


def test_bad_out_is_value_error(dev):
    a = dev(np.ones((2, 3), np.float32))
    if dev.has_readonly:
        ro = np.empty((2, 2), np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="out is read-only"):
            ops.gemm(a, a.T, out=dev(ro))
    bcast = np.broadcast_to(np.zeros(2, np.float32), (2, 2))
    with pytest.raises(ValueError, match="read-only|share memory"):
        ops.gemm(a, a.T, out=dev(bcast))
    if dev.emulated or dev.cp is None:  # the same memory seen through overlapping strides
        shared = np.lib.stride_tricks.as_strided(np.zeros(4, np.float32), (2, 2), (4, 4))
        with pytest.raises(ValueError, match="share memory"):
            ops.gemm(a, a.T, out=dev(shared))


def test_out_overlapping_an_input_gets_the_right_result(dev):
    # Both modules compute into a scratch array and copy it into out.
    base = np.arange(16, dtype=np.float64).reshape(4, 4)
    for view in (lambda t: t, lambda t: t.T, lambda t: t[::-1]):
        buf = dev(base.copy())
        want = base @ base + 0.5 * view(base)
        got = ops.gemm(buf, buf, view(buf), beta=0.5, out=view(buf))
        np.testing.assert_allclose(dev.host(view(buf)), want)
        assert got is not None


def test_fma_peak_is_measured():
    p1 = ops.fma_peak_gflops(1)
    assert p1 > 0
    assert ops.fma_peak_gflops(1, "float64") > 0
    with pytest.raises(ValueError):
        ops.fma_peak_gflops(0)
    info = ops.gemm_kernel_info()
    assert info["mc"] % info["mr"] == 0 and info["nc"] % info["nr"] == 0
    assert fastdl.ops.get_capability() in info["name"]
