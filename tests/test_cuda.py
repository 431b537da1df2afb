"""CUDA kernels (fastdl._cuda) on CuPy arrays against NumPy references.

Every test marked `cuda` needs a GPU, its driver and CuPy; conftest skips them
with the reason otherwise. The unmarked tests at the top check the GPU-less
behaviour: fastdl.cuda never raises, show_config gives the reason, and the
compiled module imports and reports no device.
"""
import importlib.util

import numpy as np
import pytest

import fastdl
import ref_cuda as ref
from conftest import run_python

cuda_built = importlib.util.find_spec("fastdl._cuda") is not None


# ================================================================= without a GPU
def test_is_available_never_raises_and_reason_is_given():
    avail = fastdl.cuda.is_available()
    assert avail in (True, False)
    st = fastdl.show_config(print_=False)["cuda"]
    assert set(st) == {"compiled", "device_count", "reason"}
    if not avail:
        assert isinstance(st["reason"], str) and st["reason"]
        assert st["device_count"] == 0
    else:
        assert st["reason"] is None and st["device_count"] >= 1


def test_tf32_switch_roundtrip():
    assert fastdl.cuda.get_tf32() is False  # off by default
    try:
        fastdl.cuda.set_tf32(True)
        assert fastdl.cuda.get_tf32() is True
        if cuda_built:
            from fastdl import _cuda
            assert _cuda.get_tf32() is True
    finally:
        fastdl.cuda.set_tf32(False)
    assert fastdl.cuda.get_tf32() is False
    with pytest.raises(TypeError):
        fastdl.cuda.set_tf32("yes")


@pytest.mark.skipif(not cuda_built, reason="fastdl was built without the CUDA module")
def test_cuda_module_imports_without_devices():
    # With no visible device the statically linked runtime must answer 0, not raise.
    r = run_python("from fastdl import _cuda; print(_cuda.device_count()); "
                   "print(_cuda.build_info()['architectures'])",
                   {"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr
    count, archs = r.stdout.split()
    assert count == "0"
    assert archs


@pytest.mark.skipif(not cuda_built, reason="fastdl was built without the CUDA module")
def test_cuda_module_rejects_numpy_arrays():
    from fastdl import _cuda
    a = np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="CuPy"):
        _cuda.gemm(a, a)
    with pytest.raises(TypeError, match="CuPy"):
        _cuda.relu(a)


@pytest.mark.skipif(not cuda_built, reason="fastdl was built without the CUDA module")
def test_cuda_module_reports_devices_consistently():
    from fastdl import _cuda
    st = _cuda.device_status()
    assert st["device_count"] == _cuda.device_count() >= 0
    if st["error"] is not None:
        assert st["device_count"] == 0


# ================================================================= helpers
@pytest.fixture
def cp():
    import cupy
    return cupy


@pytest.fixture
def cu():
    return fastdl.ops._cuda_module()


def tol(dtype, scale=1.0):
    return dict(rtol=1e-4 * scale, atol=1e-4 * scale) if dtype == np.float32 else \
        dict(rtol=1e-10 * scale, atol=1e-10 * scale)


def close(cp, got, want, dtype, scale=1.0):
    np.testing.assert_allclose(cp.asnumpy(got), want, **tol(dtype, scale))


# ================================================================= gemm
GEMM_SHAPES = [(1, 1, 1), (7, 13, 5), (65, 129, 33), (130, 70, 257), (33, 1, 64), (1, 97, 40)]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy(cp, cu, rng, dtype, m, n, k, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    want = (a.T if ta else a) @ (b.T if tb else b)
    got = cu.gemm(cp.asarray(a), cp.asarray(b), None, 1.0, 0.0, ta, tb, None)
    close(cp, got, want, dtype, scale=np.sqrt(k))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k,tb", [(1024, 1040, 24, False), (16411, 64, 13, True)])
def test_gemm_large_tiles_alpha_beta(cp, cu, rng, dtype, m, n, k, tb):
    # m*n >= 2^20 takes the 128x128-tile kernel for float32, or 128x64 when n <= 64.
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    got = cu.gemm(cp.asarray(a), cp.asarray(b), cp.asarray(c), 0.5, -2.0, False, tb, None)
    close(cp, got, 0.5 * a @ (b.T if tb else b) - 2.0 * c, dtype, scale=10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(9, 32, 3001), (1, 1, 257), (70, 3, 1000)])
@pytest.mark.parametrize("ta,tb", [(True, False), (False, True)])
def test_gemm_split_k(cp, cu, rng, dtype, m, n, k, ta, tb):
    # Few output tiles over a long k: the product is cut along k into slices summed in a
    # second pass (uneven last slice, alpha, beta and C, then bias and ReLU), and a second
    # call gives the same bits.
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    ab = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    A, B, C = cp.asarray(a), cp.asarray(b), cp.asarray(c)
    got = cu.gemm(A, B, C, 0.5, -2.0, ta, tb, None)
    close(cp, got, 0.5 * ab - 2.0 * c, dtype, scale=np.sqrt(k))
    again = cu.gemm(A, B, C, 0.5, -2.0, ta, tb, None)
    np.testing.assert_array_equal(cp.asnumpy(again), cp.asnumpy(got))
    if not ta:
        bias = rng.standard_normal(n).astype(dtype)
        bt = cp.asarray(b.T.copy() if tb else b)
        got = cu.linear(A, bt, cp.asarray(bias), "relu", None)
        close(cp, got, np.maximum(ab + bias, 0), dtype, scale=np.sqrt(k))


@pytest.mark.cuda
def test_gemm_strided_views_beta_zero_nan_and_out(cp, cu, rng):
    a = cp.asarray(rng.standard_normal((40, 30)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((50, 24)).astype(np.float32))
    av, bv = a[::2, 1:], b[:29, ::3]  # (20, 29) and (29, 8): any strides, read in place
    want = cp.asnumpy(av) @ cp.asnumpy(bv)
    c = cp.full((20, 8), np.nan, dtype=np.float32)
    got = cu.gemm(av, bv, c, 1.0, 0.0, False, False, None)  # beta 0 ignores NaN in c
    close(cp, got, want, np.float32, scale=10)
    out = cp.zeros((20, 16), np.float32)[:, ::2]              # strided out
    res = cu.gemm(av, bv, None, 1.0, 0.0, False, False, out)
    assert res is out
    close(cp, out, want, np.float32, scale=10)
    # out aliasing an input goes through a temporary
    sq = cp.asarray(rng.standard_normal((16, 16)).astype(np.float32))
    want_sq = cp.asnumpy(sq) @ cp.asnumpy(sq)
    cu.gemm(sq, sq, None, 1.0, 0.0, False, False, sq)
    close(cp, sq, want_sq, np.float32, scale=10)


@pytest.mark.cuda
def test_gemm_degenerate_sizes(cp, cu):
    z = cu.gemm(cp.zeros((0, 3), np.float32), cp.zeros((3, 4), np.float32), None, 1.0, 0.0,
                False, False, None)
    assert z.shape == (0, 4)
    k0 = cu.gemm(cp.zeros((3, 0), np.float32), cp.zeros((0, 4), np.float32), None, 1.0, 0.0,
                 False, False, None)
    np.testing.assert_array_equal(cp.asnumpy(k0), np.zeros((3, 4), np.float32))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_linear_bias_activation(cp, cu, rng, dtype, activation):
    x = rng.standard_normal((37, 19)).astype(dtype)
    w = rng.standard_normal((19, 23)).astype(dtype)
    b = rng.standard_normal(23).astype(dtype)
    want = x @ w + b
    if activation == "relu":
        want = np.maximum(want, 0)
    got = cu.linear(cp.asarray(x), cp.asarray(w), cp.asarray(b), activation, None)
    close(cp, got, want, dtype, scale=5)
    ref_k = cu.gemm_reference(cp.asarray(x), cp.asarray(w), None, 1.0, 0.0, False, False,
                              cp.asarray(b), activation)
    close(cp, ref_k, want, dtype, scale=5)


@pytest.mark.cuda
def test_gemm_tf32_is_close(cp, cu, rng):
    a = rng.standard_normal((150, 70)).astype(np.float32)
    b = rng.standard_normal((70, 90)).astype(np.float32)
    fastdl.cuda.set_tf32(True)
    try:
        got = cu.gemm(cp.asarray(a), cp.asarray(b), None, 1.0, 0.0, False, False, None)
        got_t = cu.gemm(cp.asarray(a.T.copy()), cp.asarray(b), None, 1.0, 0.0, True, False, None)
    finally:
        fastdl.cuda.set_tf32(False)
    want = a.astype(np.float64) @ b
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=2e-2, atol=5e-2)
    np.testing.assert_allclose(cp.asnumpy(got_t), want, rtol=2e-2, atol=5e-2)


@pytest.mark.cuda
def test_ops_dispatch_and_mixing(cp, rng):
    a = rng.standard_normal((5, 6)).astype(np.float32)
    b = rng.standard_normal((6, 7)).astype(np.float32)
    close(cp, fastdl.ops.matmul_kernel(cp.asarray(a), cp.asarray(b)), a @ b, np.float32)
    close(cp, fastdl.ops.gemm(cp.asarray(a), cp.asarray(b.T.copy()), trans_b=True), a @ b,
          np.float32)
    close(cp, fastdl.ops.linear(cp.asarray(a), cp.asarray(b), activation="relu"),
          np.maximum(a @ b, 0), np.float32)
    with pytest.raises(TypeError, match="mix"):
        fastdl.ops.gemm(cp.asarray(a), b)


@pytest.mark.cuda
def test_gemm_bad_arguments(cp, cu):
    f = cp.ones((3, 4), np.float32)
    with pytest.raises(TypeError):
        cu.gemm(cp.ones((3, 4), np.int32), f.T, None, 1.0, 0.0, False, False, None)
    with pytest.raises(TypeError):
        cu.gemm(f, cp.ones((4, 3), np.float64), None, 1.0, 0.0, False, False, None)
    with pytest.raises(ValueError, match="inner"):
        cu.gemm(f, f, None, 1.0, 0.0, False, False, None)
    with pytest.raises(ValueError):
        cu.gemm(f, f.T, None, 1.0, 0.0, False, False, cp.ones((2, 2), np.float32))
    with pytest.raises(ValueError):
        cu.linear(f, f.T, cp.ones(4, np.float32), "linear", None)
    with pytest.raises(ValueError, match="activation"):
        cu.linear(f, f.T, None, "gelu", None)


# ================================================================= element-wise, softmax, loss
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_forward_backward(cp, cu, rng, dtype):
    x = (rng.standard_normal((7, 33)) * 4).astype(dtype)
    dy = rng.standard_normal((7, 33)).astype(dtype)
    X, DY = cp.asarray(x), cp.asarray(dy)
    close(cp, cu.relu(X), np.maximum(x, 0), dtype)
    close(cp, cu.sigmoid(X), ref.sigmoid(x), dtype)
    close(cp, cu.tanh(X), np.tanh(x), dtype)
    close(cp, cu.activation_backward(DY, cu.relu(X), "relu"), dy * (x > 0), dtype)
    s = ref.sigmoid(x)
    close(cp, cu.activation_backward(DY, cp.asarray(s), "sigmoid"), dy * s * (1 - s), dtype)
    t = np.tanh(x)
    close(cp, cu.activation_backward(DY, cp.asarray(t), "tanh"), dy * (1 - t * t), dtype)
    close(cp, cu.activation_backward(DY, cp.asarray(t), "linear"), dy, dtype)
    out = cp.empty(x.shape, dtype)
    assert cu.tanh(X, out=out) is out
    close(cp, out, np.tanh(x), dtype)
    with pytest.raises(ValueError, match="activation"):
        cu.activation_backward(DY, X, "gelu")
    # large |x|: no overflow in sigmoid
    big = cp.asarray(np.array([-1000, -50, 0, 50, 1000], dtype))
    np.testing.assert_allclose(cp.asnumpy(cu.sigmoid(big)), [0, ref.sigmoid(-50.0), 0.5,
                                                             ref.sigmoid(50.0), 1], rtol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((5, 40), -1), ((3, 4, 70), -1), ((3, 4, 5), 1),
                                        ((6, 5, 2), 0), ((1, 1), -1), ((2, 1000), 1)])
def test_softmax_log_softmax(cp, cu, rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    X, DY = cp.asarray(x), cp.asarray(dy)
    y = ref.softmax(x, axis)
    ly = ref.log_softmax(x, axis)
    close(cp, cu.softmax(X, axis), y, dtype)
    close(cp, cu.log_softmax(X, axis), ly, dtype)
    want_d = y * (dy - (dy * y).sum(axis=axis, keepdims=True))
    close(cp, cu.softmax_backward(DY, cp.asarray(y), axis), want_d, dtype)
    want_ld = dy - np.exp(ly) * dy.sum(axis=axis, keepdims=True)
    close(cp, cu.log_softmax_backward(DY, cp.asarray(ly), axis), want_ld, dtype)
    with pytest.raises(ValueError):
        cu.softmax(X, len(shape))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,C", [(1, 1), (7, 10), (64, 129), (3, 1000)])
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_sparse_softmax_cross_entropy(cp, cu, rng, dtype, N, C, label_dtype):
    logits = (rng.standard_normal((N, C)) * 3).astype(dtype)
    labels = rng.integers(0, C, N).astype(label_dtype)
    loss, d = cu.sparse_softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels))
    want_loss, want_d = ref.sparse_softmax_cross_entropy(logits, labels)
    assert isinstance(loss, float)  # a Python float, as on the CPU
    np.testing.assert_allclose(loss, want_loss, **tol(dtype))
    close(cp, d, want_d, dtype)
    loss2, none, correct = cu.sparse_xent(cp.asarray(logits), cp.asarray(labels), None, False)
    assert none is None and loss2 == pytest.approx(loss, rel=1e-12)
    assert correct == int((logits.argmax(axis=1) == labels).sum())


@pytest.mark.cuda
def test_sparse_softmax_cross_entropy_bad_labels(cp, cu):
    logits = cp.zeros((3, 4), np.float32)
    # Out-of-range labels raise the CPU's ValueError (naming the first bad one).
    with pytest.raises(ValueError, match=r"labels\[1\] = 4 is out of range"):
        cu.sparse_softmax_cross_entropy(logits, cp.asarray(np.array([0, 4, 1], np.int64)))
    with pytest.raises(ValueError, match=r"labels\[0\] = -1"):
        cu.sparse_softmax_cross_entropy(logits, cp.asarray(np.array([-1, 0, 1], np.int32)))
    with pytest.raises(TypeError):
        cu.sparse_softmax_cross_entropy(logits, cp.zeros(3, np.float32))
    with pytest.raises(ValueError):
        cu.sparse_softmax_cross_entropy(logits, cp.zeros(4, np.int32))


# ================================================================= dropout
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.99])
def test_dropout_matches_cpu_mask(cp, cu, rng, dtype, rate):
    x = rng.standard_normal((13, 77)).astype(dtype)
    seed = 0x1234_5678_9ABC
    y = cp.asnumpy(cu.dropout(cp.asarray(x), rate, seed))
    # The same mask and scale as the CPU kernel, bit for bit.
    np.testing.assert_array_equal(y, fastdl.ops.dropout(x, rate, seed))
    dx = cp.asnumpy(cu.dropout_backward(cp.asarray(x), rate, seed))
    np.testing.assert_array_equal(dx, y)
    if 0 < rate < 1:
        frac = (y == 0).mean()
        assert abs(frac - rate) < 0.05
        assert not np.array_equal(y, cp.asnumpy(cu.dropout(cp.asarray(x), rate, seed + 1)))
    with pytest.raises(ValueError):
        cu.dropout(cp.asarray(x), 1.5, seed)
    with pytest.raises(ValueError):
        cu.dropout(cp.asarray(x), 1.0, seed)  # [0, 1), as on the CPU
    # Negative seeds wrap modulo 2^64, as on the CPU.
    np.testing.assert_array_equal(cp.asnumpy(cu.dropout(cp.asarray(x), 0.5, -3)),
                                  fastdl.ops.dropout(x, 0.5, -3))


# ================================================================= embedding
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids_shape,V,D", [((1,), 1, 1), ((4, 9), 11, 7), ((2, 3, 5), 4, 33),
                                           ((0,), 3, 2)])
def test_embedding_matches_cpu(cp, cu, rng, dtype, ids_shape, V, D):
    table = rng.standard_normal((V, D)).astype(dtype)
    ids = rng.integers(0, V, ids_shape)
    y = cp.asnumpy(cu.embedding(cp.asarray(ids), cp.asarray(table)))
    np.testing.assert_array_equal(y, fastdl.ops.embedding(ids, table))
    dy = rng.standard_normal(ids_shape + (D,)).astype(dtype)
    d = cp.asnumpy(cu.embedding_backward(cp.asarray(dy), cp.asarray(ids), V))
    want = np.zeros((V, D), dtype)
    np.add.at(want, ids.reshape(-1), dy.reshape(-1, D))
    # the tokens of one id are summed in their order, as on the CPU: the same bits
    np.testing.assert_array_equal(d, fastdl.ops.embedding_backward(dy, ids, V))
    np.testing.assert_allclose(d, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    out = cp.full((V, D), 3.0, dtype)
    assert cu.embedding_backward(cp.asarray(dy), cp.asarray(ids.astype(np.int32)), V, out) is out
    np.testing.assert_array_equal(cp.asnumpy(out), d)
    # through fastdl.ops, float ids that hold whole numbers
    y2 = fastdl.ops.embedding(cp.asarray(ids.astype(np.float32)), cp.asarray(table))
    np.testing.assert_array_equal(cp.asnumpy(y2), y)


@pytest.mark.cuda
def test_embedding_bad_ids_and_arguments(cp, cu):
    table = cp.zeros((10, 3), np.float32)
    with pytest.raises(IndexError, match=r"token id 12 \(the largest id\).*10 rows"):
        cu.embedding(cp.asarray(np.array([[1, 12]])), table)
    with pytest.raises(IndexError, match="token id -1 is negative"):
        cu.embedding(cp.asarray(np.array([-1, 2])), table)
    with pytest.raises(IndexError, match="token id 10"):
        cu.embedding_backward(cp.zeros((2, 3), np.float32), cp.asarray(np.array([0, 10])), 10)
    with pytest.raises(TypeError, match="ids must be an integer array"):
        cu.embedding(cp.zeros(3, np.float32), table)
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        cu.embedding(cp.asarray(np.array([1])), cp.zeros(10, np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        cu.embedding_backward(cp.zeros((2, 4), np.float32), cp.asarray(np.array([1, 2, 3])), 10)
    with pytest.raises(ValueError, match="out must have shape"):
        cu.embedding_backward(cp.zeros((1, 4), np.float32), cp.asarray(np.array([0])), 3,
                              cp.zeros((3, 5), np.float32))


# ================================================================= optimizers
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, None), (0.9, False, None),
                                                  (0.9, True, None), (0.5, False, 0.01)])
def test_sgd_update(cp, cu, rng, dtype, momentum, nesterov, wd):
    p = rng.standard_normal((5, 7)).astype(dtype)
    m = np.zeros_like(p)
    P, M = cp.asarray(p), cp.asarray(m)
    for _ in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        p, m = ref.sgd(p, g, m, 0.1, momentum, nesterov, wd)
        fastdl.ops.sgd_update(P, cp.asarray(g), M if momentum else None, learning_rate=0.1,
                              momentum=momentum, nesterov=nesterov, weight_decay=wd)
    close(cp, P, p, dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd", [None, 0.004])
def test_adam_adamw_update(cp, cu, rng, dtype, wd):
    p = rng.standard_normal(101).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    P, M, V = cp.asarray(p), cp.asarray(m), cp.asarray(v)
    for step in range(1, 5):
        g = rng.standard_normal(p.shape).astype(dtype)
        p, m, v = ref.adam(p, g, m, v, 1e-2, 0.9, 0.999, 1e-7, step, wd)
        fastdl.ops.adam_update(P, cp.asarray(g), M, V, step=step, learning_rate=1e-2,
                               weight_decay=wd)
    close(cp, P, p, dtype, scale=10)
    close(cp, V, v, dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_update(cp, cu, rng, momentum):
    dtype = np.float64
    p = rng.standard_normal((4, 9)).astype(dtype)
    v, mom = np.zeros_like(p), np.zeros_like(p)
    P, V, MOM = cp.asarray(p), cp.asarray(v), cp.asarray(mom)
    for _ in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        p, v, mom = ref.rmsprop(p, g, v, mom, 1e-3, 0.9, momentum, 1e-7)
        fastdl.ops.rmsprop_update(P, cp.asarray(g), V, MOM if momentum else None,
                                  learning_rate=1e-3, rho=0.9, momentum=momentum)
    close(cp, P, p, dtype)


@pytest.mark.cuda
def test_optimizer_bad_arguments(cp, cu):
    p = cp.zeros((3, 4), np.float32)
    with pytest.raises(ValueError):
        cu.sgd_update(p, cp.zeros((4, 3), np.float32), None, 0.1, 0.0, False, 0.0)
    with pytest.raises(ValueError, match="momentum"):
        cu.sgd_update(p, cp.zeros((3, 4), np.float32), None, 0.1, 0.9, False, 0.0)
    with pytest.raises(ValueError, match="contiguous"):
        cu.sgd_update(cp.zeros((4, 3), np.float32).T, p, None, 0.1, 0.0, False, 0.0)
    with pytest.raises(TypeError):
        cu.adam_update(p, p.astype(np.float64), p, p, 0.1, 0.9, 0.999, 1e-7, 0.0)


# ================================================================= convolution and pooling
CONV_CASES = [
    # (N, H, W, C, KH, KW, F, strides, padding, dilation)
    (2, 7, 9, 3, 3, 3, 4, 1, "valid", 1),
    (2, 7, 9, 3, 3, 3, 4, 2, "same", 1),
    (1, 8, 8, 5, 3, 2, 3, (2, 1), "same", (2, 1)),
    (3, 5, 6, 4, 1, 1, 6, 1, "valid", 1),            # pointwise: a plain GEMM
    (2, 6, 5, 2, 2, 3, 3, 1, ((1, 0), (2, 1)), 1),
    (1, 4, 4, 1, 3, 3, 1, 3, 1, 1),
    (0, 5, 5, 2, 3, 3, 2, 1, "same", 1),             # empty batch
    (4, 12, 13, 3, 3, 3, 8, 1, "valid", 1),          # dw's 440-long sum: split-K
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_backward(cp, cu, rng, dtype, case):
    N, H, W, C, KH, KW, F, s, pad, d = case
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((KH, KW, C, F)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    want = ref.conv2d(x, w, b, s, pad, d)
    conv = dict(strides=s, padding=pad, dilation_rate=d)
    got = fastdl.ops.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **conv)
    assert got.shape == want.shape
    close(cp, got, want, dtype, scale=10)
    dy = rng.standard_normal(want.shape).astype(dtype)
    gx, gw, gb = fastdl.ops.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), **conv)
    rx, rw, rb = ref.conv2d_backward(dy, x, w, s, pad, d)
    close(cp, gx, rx, dtype, scale=10)
    close(cp, gw, rw, dtype, scale=10)
    close(cp, gb, rb, dtype, scale=10)


DEPTHWISE_CASES = [
    # (N, H, W, C, KH, KW, M, strides, padding, dilation)
    (2, 7, 9, 3, 3, 3, 1, 1, "same", 1),
    (2, 7, 9, 3, 3, 2, 2, 2, "valid", 1),
    (1, 8, 8, 5, 3, 3, 3, (2, 1), ((1, 0), (2, 1)), (1, 2)),
    (0, 5, 5, 2, 3, 3, 1, 1, "same", 1),             # empty batch
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_conv2d_forward_backward(cp, cu, rng, dtype, case):
    import ref_conv
    N, H, W, C, KH, KW, M, s, pad, d = case
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((KH, KW, C, M)).astype(dtype)
    b = rng.standard_normal(C * M).astype(dtype)
    conv = dict(strides=s, padding=pad, dilation_rate=d)
    want = ref_conv.depthwise_conv2d(x, w, b, s, pad, d)
    got = fastdl.ops.depthwise_conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **conv)
    assert got.shape == want.shape
    close(cp, got, want, dtype, scale=10)
    close(cp, fastdl.ops.depthwise_conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b),
                                          activation="relu", **conv),
          np.maximum(want, 0), dtype, scale=10)
    dy = rng.standard_normal(want.shape).astype(dtype)
    gx, gw, gb = fastdl.ops.depthwise_conv2d_backward(cp.asarray(dy), cp.asarray(x),
                                                      cp.asarray(w), **conv)
    rx, rw, rb = ref_conv.depthwise_conv2d_backward(dy, x, w, s, pad, d)
    close(cp, gx, rx, dtype, scale=10)
    close(cp, gw, rw, dtype, scale=10)
    close(cp, gb, rb, dtype, scale=10)
    none, gw2, _ = fastdl.ops.depthwise_conv2d_backward(cp.asarray(dy), cp.asarray(x),
                                                        cp.asarray(w), need_dx=False, **conv)
    assert none is None
    close(cp, gw2, rw, dtype, scale=10)
    with pytest.raises(ValueError, match="channels"):
        fastdl.ops.depthwise_conv2d(cp.asarray(x), cp.asarray(w[:, :, :1]), **conv)


@pytest.mark.cuda
def test_conv2d_transpose_on_the_gpu(cp, cu, rng):
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    kw = dict(strides=2, padding="same", output_padding=1)
    want = fastdl.ops.conv2d_transpose(x, w, b, **kw)
    got = fastdl.ops.conv2d_transpose(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)
    close(cp, got, want, np.float32, scale=10)
    dy = rng.standard_normal(want.shape).astype(np.float32)
    for g, r in zip(fastdl.ops.conv2d_transpose_backward(cp.asarray(dy), cp.asarray(x),
                                                         cp.asarray(w), **kw),
                    fastdl.ops.conv2d_transpose_backward(dy, x, w, **kw)):
        close(cp, g, r, np.float32, scale=10)
    # conv2d_backward(need_dw=False): dx alone, x's values unread
    xc = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    wc = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    for s, p in ((1, "same"), (2, "valid")):
        dyc = rng.standard_normal(fastdl.ops.conv2d(xc, wc, strides=s, padding=p).shape)
        dyc = dyc.astype(np.float32)
        dx, dw, db = fastdl.ops.conv2d_backward(cp.asarray(dyc), cp.full(xc.shape, cp.nan,
                                                                         cp.float32),
                                                cp.asarray(wc), strides=s, padding=p,
                                                need_dw=False)
        assert dw is None and db is None
        close(cp, dx, fastdl.ops.conv2d_backward(dyc, xc, wc, strides=s, padding=p)[0],
              np.float32, scale=10)


@pytest.mark.cuda
def test_conv2d_noncontiguous_and_bad_arguments(cp, cu, rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    xs = cp.asarray(np.ascontiguousarray(x.transpose(0, 2, 1, 3))).transpose(0, 2, 1, 3)
    conv2d = fastdl.ops.conv2d
    close(cp, conv2d(xs, cp.asarray(w), padding="same"), ref.conv2d(x, w, None, 1, "same"),
          np.float32, scale=10)
    X, Wt = cp.asarray(x), cp.asarray(w)
    with pytest.raises(ValueError, match="channels"):
        conv2d(X, cp.asarray(w[:, :, :2]))
    with pytest.raises(ValueError, match="padding"):
        conv2d(X, Wt, padding="full")
    with pytest.raises(ValueError, match="strides"):
        conv2d(X, Wt, strides=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(X, cp.zeros((7, 7, 3, 2), np.float32))
    with pytest.raises(TypeError):
        conv2d(X, Wt.astype(np.float64))
    # the module itself takes the normalised arguments ops.py makes
    with pytest.raises(ValueError, match="strides must be positive"):
        cu.conv2d(X, Wt, None, (0, 1), (1, 1), False, (0, 0, 0, 0), "linear")


POOL_CASES = [
    # (shape, pool_size, strides, padding)
    ((2, 6, 6, 3), 2, None, "valid"),
    ((2, 7, 5, 3), 3, 2, "same"),
    ((1, 5, 5, 2), (3, 2), 1, "valid"),
    ((1, 5, 4, 1), 2, 1, "same"),
    ((2, 4, 4, 2), 3, 1, 1),
    ((0, 4, 4, 2), 2, None, "valid"),
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_forward_backward(cp, cu, rng, dtype, case):
    shape, k, s, pad = case
    x = rng.standard_normal(shape).astype(dtype)
    X = cp.asarray(x)
    ops = fastdl.ops
    for fwd, bwd, rfwd, rbwd in [(ops.max_pool2d, ops.max_pool2d_backward, ref.max_pool2d,
                                  ref.max_pool2d_backward),
                                 (ops.avg_pool2d, ops.avg_pool2d_backward, ref.avg_pool2d,
                                  ref.avg_pool2d_backward)]:
        want = rfwd(x, k, s, pad)
        got = fwd(X, k, s, pad)
        close(cp, got, want, dtype)
        dy = rng.standard_normal(want.shape).astype(dtype)
        close(cp, bwd(cp.asarray(dy), X, pool_size=k, strides=s, padding=pad),
              rbwd(dy, x, k, s, pad), dtype)


@pytest.mark.cuda
def test_max_pool_ties_go_to_first_maximum(cp, cu):
    x = np.zeros((1, 2, 2, 1), np.float32)  # all four equal
    dx = fastdl.ops.max_pool2d_backward(cp.ones((1, 1, 1, 1), np.float32), cp.asarray(x),
                                        pool_size=2)
    np.testing.assert_array_equal(cp.asnumpy(dx)[0, :, :, 0], [[1, 0], [0, 0]])


@pytest.mark.cuda
def test_fused_conv_pool_ops_refuse_gpu_arrays(cp, cu):
    # CPU extensions: on a GPU the error names the ops to run instead.
    ops = fastdl.ops
    x, w = cp.zeros((1, 6, 6, 2), np.float32), cp.zeros((3, 3, 2, 4), np.float32)
    with pytest.raises(NotImplementedError, match="on a GPU run conv2d and max_pool2d"):
        ops.conv2d_relu_max_pool2d(x, w)
    with pytest.raises(NotImplementedError,
                       match="on a GPU run max_pool2d_backward and conv2d_backward"):
        ops.conv2d_relu_max_pool2d_backward(cp.zeros((1, 2, 2, 4), np.float32),
                                            np.zeros((1, 2, 2, 4), np.uint8), x, w)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool(cp, cu, rng, dtype):
    x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
    close(cp, cu.global_avg_pool2d(cp.asarray(x)), x.mean(axis=(1, 2)), dtype)
    dy = rng.standard_normal((3, 4)).astype(dtype)
    want = np.broadcast_to(dy[:, None, None, :] / 35, x.shape)
    close(cp, cu.global_avg_pool2d_backward(cp.asarray(dy), cp.asarray(x)), want, dtype)


# ================================================================= recurrent layers
def _numgrad(f, arrays, idx, key, eps=1e-6):
    """Central difference of scalar f() w.r.t. arrays[key][idx] (NumPy float64)."""
    a = arrays[key]
    old = a[idx]
    a[idx] = old + eps
    fp = f()
    a[idx] = old - eps
    fm = f()
    a[idx] = old
    return (fp - fm) / (2 * eps)


def _check_grads(f, arrays, grads, rng, per=4, rtol=1e-5, atol=1e-7):
    for key, g in grads.items():
        for _ in range(per):
            idx = tuple(int(rng.integers(0, s)) for s in arrays[key].shape)
            num = _numgrad(f, arrays, idx, key)
            assert abs(g[idx] - num) <= atol + rtol * abs(num), (key, idx, g[idx], num)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_forward(cp, cu, rng, dtype, activation):
    N, T, I, U = 3, 5, 4, 7
    x, h0 = rng.standard_normal((N, T, I)).astype(dtype), rng.standard_normal((N, U)).astype(dtype)
    k = (rng.standard_normal((I, U)) * 0.5).astype(dtype)
    rk = (rng.standard_normal((U, U)) * 0.5).astype(dtype)
    b = rng.standard_normal(U).astype(dtype)
    want = ref.simple_rnn(x, h0, k, rk, b, activation)
    got = cu.simple_rnn(*map(cp.asarray, (x, h0, k, rk, b)), activation)
    close(cp, got, want, dtype, scale=10)
    got0 = cu.simple_rnn(cp.asarray(x), None, cp.asarray(k), cp.asarray(rk), None, activation)
    close(cp, got0, ref.simple_rnn(x, np.zeros_like(h0), k, rk, None, activation), dtype, 10)


@pytest.mark.cuda
@pytest.mark.parametrize("seq", [True, False])
def test_simple_rnn_backward_gradcheck(cp, cu, rng, seq):
    N, T, I, U = 2, 4, 3, 5
    A = {"x": rng.standard_normal((N, T, I)), "h0": rng.standard_normal((N, U)),
         "kernel": rng.standard_normal((I, U)) * 0.5,
         "recurrent_kernel": rng.standard_normal((U, U)) * 0.5, "bias": rng.standard_normal(U)}
    R = rng.standard_normal((N, T, U) if seq else (N, U))

    def fwd():
        hs = cu.simple_rnn(*(cp.asarray(A[k]) for k in
                             ("x", "h0", "kernel", "recurrent_kernel", "bias")), "tanh")
        hs = cp.asnumpy(hs)
        return float(((hs if seq else hs[:, -1]) * R).sum())

    hs = cu.simple_rnn(*(cp.asarray(A[k]) for k in ("x", "h0", "kernel", "recurrent_kernel",
                                                    "bias")), "tanh")
    grads = cu.simple_rnn_backward(cp.asarray(R), cp.asarray(A["x"]), cp.asarray(A["h0"]),
                                   cp.asarray(A["kernel"]), cp.asarray(A["recurrent_kernel"]), hs,
                                   "tanh")
    names = ("x", "h0", "kernel", "recurrent_kernel", "bias")
    _check_grads(fwd, A, {n: cp.asnumpy(g) for n, g in zip(names, grads)}, rng)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_forward(cp, cu, rng, dtype):
    N, T, I, U = 3, 4, 5, 6
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in [(N, T, I), (N, U), (N, U)])
    k = (rng.standard_normal((I, 4 * U)) * 0.5).astype(dtype)
    rk = (rng.standard_normal((U, 4 * U)) * 0.5).astype(dtype)
    b = rng.standard_normal(4 * U).astype(dtype)
    want_hs, want_c = ref.lstm(x, h0, c0, k, rk, b)
    hs, c = cu.lstm(*map(cp.asarray, (x, h0, c0, k, rk, b)), False)
    close(cp, hs, want_hs, dtype, scale=10)
    close(cp, c, want_c, dtype, scale=10)
    hs2, c2, cache = cu.lstm(*map(cp.asarray, (x, h0, c0, k, rk, b)), True)
    close(cp, hs2, want_hs, dtype, scale=10)
    assert cache.shape == (N, T, 5 * U)  # the CPU's layout: gates i, f, g, o, then c


@pytest.mark.cuda
@pytest.mark.parametrize("seq", [True, False])
def test_lstm_backward_gradcheck(cp, cu, rng, seq):
    N, T, I, U = 2, 3, 3, 4
    A = {"x": rng.standard_normal((N, T, I)), "h0": rng.standard_normal((N, U)),
         "c0": rng.standard_normal((N, U)), "kernel": rng.standard_normal((I, 4 * U)) * 0.5,
         "recurrent_kernel": rng.standard_normal((U, 4 * U)) * 0.5,
         "bias": rng.standard_normal(4 * U)}
    R = rng.standard_normal((N, T, U) if seq else (N, U))
    Rc = rng.standard_normal((N, U))
    order = ("x", "h0", "c0", "kernel", "recurrent_kernel", "bias")

    def fwd():
        hs, c = cu.lstm(*(cp.asarray(A[k]) for k in order), False)
        hs = cp.asnumpy(hs)
        return float(((hs if seq else hs[:, -1]) * R).sum() + (cp.asnumpy(c) * Rc).sum())

    hs, c, cache = cu.lstm(*(cp.asarray(A[k]) for k in order), True)
    dx, dh0, dc0, dk, drk, db = cu.lstm_backward(
        cp.asarray(R), cp.asarray(Rc), cp.asarray(A["x"]), cp.asarray(A["h0"]),
        cp.asarray(A["c0"]), cp.asarray(A["kernel"]), cp.asarray(A["recurrent_kernel"]), hs, cache)
    grads = dict(zip(order, (dx, dh0, dc0, dk, drk, db)))
    _check_grads(fwd, A, {n: cp.asnumpy(g) for n, g in grads.items()}, rng)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_forward(cp, cu, rng, dtype):
    N, T, I, U = 3, 4, 5, 6
    x, h0 = rng.standard_normal((N, T, I)).astype(dtype), rng.standard_normal((N, U)).astype(dtype)
    k = (rng.standard_normal((I, 3 * U)) * 0.5).astype(dtype)
    rk = (rng.standard_normal((U, 3 * U)) * 0.5).astype(dtype)
    b = rng.standard_normal((2, 3 * U)).astype(dtype)
    want = ref.gru(x, h0, k, rk, b)
    close(cp, cu.gru(*map(cp.asarray, (x, h0, k, rk, b)), False), want, dtype, scale=10)
    hs, cache = cu.gru(*map(cp.asarray, (x, h0, k, rk, b)), True)
    close(cp, hs, want, dtype, scale=10)
    assert cache.shape == (N, T, 4 * U)
    close(cp, cu.gru(cp.asarray(x), cp.asarray(h0), cp.asarray(k), cp.asarray(rk), None, False),
          ref.gru(x, h0, k, rk, None), dtype, scale=10)


@pytest.mark.cuda
@pytest.mark.parametrize("seq", [True, False])
def test_gru_backward_gradcheck(cp, cu, rng, seq):
    N, T, I, U = 2, 3, 3, 4
    A = {"x": rng.standard_normal((N, T, I)), "h0": rng.standard_normal((N, U)),
         "kernel": rng.standard_normal((I, 3 * U)) * 0.5,
         "recurrent_kernel": rng.standard_normal((U, 3 * U)) * 0.5,
         "bias": rng.standard_normal((2, 3 * U))}
    R = rng.standard_normal((N, T, U) if seq else (N, U))
    order = ("x", "h0", "kernel", "recurrent_kernel", "bias")

    def fwd():
        hs = cp.asnumpy(cu.gru(*(cp.asarray(A[k]) for k in order), False))
        return float(((hs if seq else hs[:, -1]) * R).sum())

    hs, cache = cu.gru(*(cp.asarray(A[k]) for k in order), True)
    grads = cu.gru_backward(cp.asarray(R), cp.asarray(A["x"]), cp.asarray(A["h0"]),
                            cp.asarray(A["kernel"]), cp.asarray(A["recurrent_kernel"]),
                            cp.asarray(A["bias"]), hs, cache)
    _check_grads(fwd, A, {n: cp.asnumpy(g) for n, g in zip(order, grads)}, rng)


@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_rnn_backward_over_long_sequences_matches_cpu(cp, rng, cell):
    # N*T = 320 rows: the weight gradients' products split k on the GPU (the emulated one
    # has 4 multiprocessors); every gradient against the CPU module's.
    N, T, I, U = 8, 40, 5, 6
    g = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    x, h0 = rng.standard_normal((N, T, I)), rng.standard_normal((N, U))
    k, rk = rng.standard_normal((I, g * U)) * 0.3, rng.standard_normal((U, g * U)) * 0.3
    b = rng.standard_normal((2, g * U) if cell == "gru" else g * U)
    dhs = rng.standard_normal((N, T, U))
    ops = fastdl.ops

    def grads(xp):
        a = [xp.asarray(v) for v in (x, h0, k, rk, b, dhs)]
        X, H0, K, RK, B, DHS = a
        if cell == "simple_rnn":
            hs = ops.simple_rnn(X, H0, K, RK, B)
            return ops.simple_rnn_backward(DHS, X, H0, K, RK, hs)
        if cell == "lstm":
            hs, _, cache = ops.lstm(X, H0, H0, K, RK, B, return_cache=True)
            return ops.lstm_backward(DHS, None, X, H0, H0, K, RK, hs, cache)
        hs, cache = ops.gru(X, H0, K, RK, B, return_cache=True)
        return ops.gru_backward(DHS, X, H0, K, RK, B, hs, cache)

    for got, want in zip(grads(cp), grads(np)):
        close(cp, got, want, np.float64)


@pytest.mark.cuda
def test_rnn_edge_shapes_and_bad_arguments(cp, cu, rng):
    x = cp.zeros((2, 0, 3), np.float64)  # no time steps: refused, as on the CPU
    k, rk = cp.ones((3, 8), np.float64), cp.ones((2, 8), np.float64)
    h0, c0 = cp.ones((2, 2), np.float64), cp.full((2, 2), 3.0)
    with pytest.raises(ValueError, match="at least one timestep"):
        cu.lstm(x, h0, c0, k, rk, None, False)
    hs, c = cu.lstm(cp.zeros((0, 3, 3)), h0[:0], c0[:0], k, rk, None, False)  # no samples
    assert hs.shape == (0, 3, 2) and c.shape == (0, 2)
    with pytest.raises(ValueError, match="kernel"):
        cu.lstm(cp.zeros((2, 3, 3)), h0, c0, cp.ones((3, 7)), rk, None, False)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        cu.gru(cp.zeros((2, 3, 3)), None, cp.ones((3, 6)), cp.ones((3, 6)), None, False)
    with pytest.raises(ValueError, match="activation"):
        cu.simple_rnn(cp.zeros((2, 3, 3)), None, cp.ones((3, 2)), cp.ones((2, 2)), None, "gelu")


# ================================================================= every ops.* dispatch vs the CPU op
# Each case calls the public op once with NumPy arrays (the C++ kernels) and once
# with CuPy arrays (the CUDA kernels, through ops.py's dispatch line) and
# compares everything returned: arrays, Python floats and ints, None.
def _ops_dispatch_names():
    import inspect
    import re
    src = inspect.getsource(fastdl.ops)
    # direct calls, and the pooling ops that _pool looks up by name
    return sorted(set(re.findall(r"_cuda_module\(\)\.(\w+)\(", src))
                  | set(re.findall(r"_pool\(\"(\w+)\"", src)))


@pytest.mark.cuda
def test_cuda_module_has_every_dispatched_name(cu):
    names = _ops_dispatch_names()
    assert len(names) >= 33 and "max_pool2d_backward" in names
    missing = [n for n in names if not hasattr(cu, n)]
    assert not missing, f"ops.py dispatches to names fastdl._cuda lacks: {missing}"


def _compare(cp, got, want, dtype, scale, what):
    if want is None:
        assert got is None, what
    elif isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(cp, g, w, dtype, scale, f"{what}[{i}]")
    elif isinstance(want, (bool, int)):
        assert type(got) is type(want) and got == want, what
    elif isinstance(want, float):
        assert isinstance(got, float), what
        np.testing.assert_allclose(got, want, **tol(dtype, scale), err_msg=what)
    else:
        assert type(got).__module__.split(".")[0] == "cupy", what
        assert got.shape == want.shape and got.dtype == want.dtype, what
        np.testing.assert_allclose(cp.asnumpy(got), want, **tol(dtype, scale), err_msg=what)


def _run_both(cp, fn, arrays, dtype, scale=1.0, exact=False):
    """fn(ops, arrays) on NumPy copies and on CuPy copies; compares the results
    and the arrays afterwards (in-place updates)."""
    cpu = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
    gpu = {k: (cp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
    want = fn(fastdl.ops, cpu)
    got = fn(fastdl.ops, gpu)
    if exact:
        np.testing.assert_array_equal(cp.asnumpy(got), want)
    else:
        _compare(cp, got, want, dtype, scale, "result")
    for k in arrays:
        if isinstance(cpu[k], np.ndarray):
            np.testing.assert_allclose(cp.asnumpy(gpu[k]), cpu[k], **tol(dtype, scale),
                                       err_msg=f"array {k} after the call")
    return got, want


def _r(rng, shape, dtype, s=1.0):
    return (rng.standard_normal(shape) * s).astype(dtype)


DTYPES = [np.float32, np.float64]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_vs_cpu_gemm_matmul_linear(cp, rng, dtype):
    A = {"a": _r(rng, (9, 7), dtype), "b": _r(rng, (11, 7), dtype), "c": _r(rng, (9, 11), dtype),
         "k": _r(rng, (7, 11), dtype), "bias": _r(rng, 11, dtype), "out": np.zeros((9, 11), dtype)}
    _run_both(cp, lambda o, d: o.gemm(d["a"], d["b"], d["c"], alpha=0.5, beta=0.3, trans_b=True),
              A, dtype)
    _run_both(cp, lambda o, d: o.gemm(d["k"], d["a"], trans_a=True, trans_b=True), A,
              dtype)
    _run_both(cp, lambda o, d: o.matmul(d["a"], d["k"]), A, dtype)
    _run_both(cp, lambda o, d: o.matmul_kernel(d["a"], d["k"], out=d["out"]), A, dtype)
    for act in ("relu", "linear", None):
        _run_both(cp, lambda o, d: o.linear(d["a"], d["k"], d["bias"], activation=act), A, dtype)
    _run_both(cp, lambda o, d: o.linear(d["a"], d["k"]), A, dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strides,padding,dil,act", [(1, "valid", 1, "linear"),
                                                     (2, "same", 1, "relu"),
                                                     ((1, 2), ((1, 0), (2, 1)), (2, 1), "relu"),
                                                     (1, "same", 1, "linear")])
def test_vs_cpu_conv2d(cp, rng, dtype, strides, padding, dil, act):
    A = {"x": _r(rng, (2, 7, 8, 3), dtype), "w": _r(rng, (3, 2, 3, 5), dtype),
         "b": _r(rng, 5, dtype)}
    kw = dict(strides=strides, padding=padding, dilation_rate=dil)
    y, _ = _run_both(cp, lambda o, d: o.conv2d(d["x"], d["w"], d["b"], activation=act, **kw), A,
                     dtype, 10)
    _run_both(cp, lambda o, d: o.conv2d(d["x"], d["w"], **kw), A, dtype, 10)
    A["dy"] = _r(rng, y.shape, dtype)
    for need_dx in (True, False):
        _run_both(cp, lambda o, d: o.conv2d_backward(d["dy"], d["x"], d["w"], need_dx=need_dx,
                                                     **kw), A, dtype, 10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"),
                                                  ((3, 2), 1, 1)])
def test_vs_cpu_pooling(cp, rng, dtype, pool, strides, padding):
    A = {"x": _r(rng, (2, 7, 6, 3), dtype)}
    kw = dict(pool_size=pool, strides=strides, padding=padding)
    for fwd, bwd in (("max_pool2d", "max_pool2d_backward"), ("avg_pool2d", "avg_pool2d_backward")):
        y, _ = _run_both(cp, lambda o, d: getattr(o, fwd)(d["x"], **kw), A, dtype)
        A["dy"] = _r(rng, y.shape, dtype)
        _run_both(cp, lambda o, d: getattr(o, bwd)(d["dy"], d["x"], **kw), A, dtype)
    A["xr"] = np.maximum(np.round(A["x"] * 2), 0).astype(dtype)  # a ReLU's output, ties at 0
    y, _ = _run_both(cp, lambda o, d: o.max_pool2d(d["xr"], **kw), A, dtype)
    A["dy"] = _r(rng, y.shape, dtype)
    _run_both(cp, lambda o, d: o.max_pool2d_backward(d["dy"], d["xr"], relu=True, **kw), A, dtype)
    A["g"] = _r(rng, (2, 3), dtype)
    _run_both(cp, lambda o, d: o.global_avg_pool2d(d["x"]), A, dtype)
    _run_both(cp, lambda o, d: o.global_avg_pool2d_backward(d["g"], d["x"]), A, dtype)
    with pytest.raises(ValueError, match="smaller than pool_size"):
        fastdl.ops.max_pool2d(cp.asarray(A["x"]), 2, 1, 2)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [True, False])
def test_vs_cpu_recurrent(cp, rng, dtype, seq):
    N, T, I, U = 3, 4, 5, 6
    A = {"x": _r(rng, (N, T, I), dtype), "h0": _r(rng, (N, U), dtype),
         "c0": _r(rng, (N, U), dtype), "dc": _r(rng, (N, U), dtype),
         "dhs": _r(rng, (N, T, U) if seq else (N, U), dtype)}
    for G, name in ((1, "s"), (4, "l"), (3, "g")):
        A["k" + name] = _r(rng, (I, G * U), dtype, 0.5)
        A["rk" + name] = _r(rng, (U, G * U), dtype, 0.5)
    A["bs"], A["bl"], A["bg"] = _r(rng, U, dtype), _r(rng, 4 * U, dtype), _r(rng, (2, 3 * U), dtype)
    for act in ("tanh", "relu"):
        hs, _ = _run_both(cp, lambda o, d: o.simple_rnn(d["x"], d["h0"], d["ks"], d["rks"], d["bs"],
                                                        activation=act), A, dtype, 10)
        A["hs"] = cp.asnumpy(hs)
        for nd in (True, False):  # need_dx=False: dx is None, the rest unchanged
            _run_both(cp, lambda o, d: o.simple_rnn_backward(d["dhs"], d["x"], d["h0"], d["ks"],
                                                             d["rks"], d["hs"], activation=act,
                                                             need_dx=nd), A, dtype, 10)
    (hs, _, cache), (_, _, cache_cpu) = _run_both(
        cp, lambda o, d: o.lstm(d["x"], d["h0"], d["c0"], d["kl"], d["rkl"], d["bl"],
                                return_cache=True), A, dtype, 10)
    _run_both(cp, lambda o, d: o.lstm(d["x"], d["h0"], d["c0"], d["kl"], d["rkl"], d["bl"]),
              A, dtype, 10)
    A["hs"], A["cache"] = cp.asnumpy(hs), cache_cpu  # the CPU's cache drives both backward passes
    for dc, nd in (("dc", True), (None, True), ("dc", False)):
        _run_both(cp, lambda o, d: o.lstm_backward(d["dhs"], d[dc] if dc else None, d["x"],
                                                   d["h0"], d["c0"], d["kl"], d["rkl"], d["hs"],
                                                   d["cache"], need_dx=nd), A, dtype, 10)
    (hs, cache), (_, cache_cpu) = _run_both(
        cp, lambda o, d: o.gru(d["x"], d["h0"], d["kg"], d["rkg"], d["bg"], return_cache=True),
        A, dtype, 10)
    _run_both(cp, lambda o, d: o.gru(d["x"], d["h0"], d["kg"], d["rkg"], d["bg"]), A, dtype, 10)
    A["hs"], A["cache"] = cp.asnumpy(hs), cache_cpu
    for nd in (True, False):
        _run_both(cp, lambda o, d: o.gru_backward(d["dhs"], d["x"], d["h0"], d["kg"], d["rkg"],
                                                  d["bg"], d["hs"], d["cache"], need_dx=nd),
                  A, dtype, 10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_vs_cpu_activations_softmax(cp, rng, dtype):
    A = {"x": _r(rng, (4, 5, 9), dtype, 3), "dy": _r(rng, (4, 5, 9), dtype),
         "out": np.zeros((4, 5, 9), dtype)}
    for f in ("relu", "sigmoid", "tanh"):
        y, _ = _run_both(cp, lambda o, d: getattr(o, f)(d["x"]), A, dtype)
        _run_both(cp, lambda o, d: getattr(o, f + "_kernel")(d["x"], out=d["out"]), A, dtype)
        A["y"] = cp.asnumpy(y)
        _run_both(cp, lambda o, d: getattr(o, f + "_backward")(d["dy"], d["y"]), A, dtype)
        _run_both(cp, lambda o, d: o.activation_backward(d["dy"], d["y"], f, out=d["out"]), A,
                  dtype)
    _run_both(cp, lambda o, d: o.activation_backward(d["dy"], d["x"], "linear"), A, dtype)
    for f in ("softmax", "log_softmax"):
        for axis in (-1, 1):
            y, _ = _run_both(cp, lambda o, d: getattr(o, f)(d["x"], axis), A, dtype)
            A["y"] = cp.asnumpy(y)
            _run_both(cp, lambda o, d: getattr(o, f + "_backward")(d["dy"], d["y"], axis), A, dtype)
        _run_both(cp, lambda o, d: getattr(o, f + "_kernel")(d["x"], out=d["out"]), A, dtype)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate,seed", [(0.3, 7), (0.5, 2**40 + 3), (0.0, 1), (0.9, -5)])
def test_vs_cpu_dropout_same_mask(cp, rng, dtype, rate, seed):
    A = {"x": _r(rng, (17, 33), dtype), "out": np.zeros((17, 33), dtype)}
    _run_both(cp, lambda o, d: o.dropout(d["x"], rate, seed), A, dtype, exact=True)
    _run_both(cp, lambda o, d: o.dropout_backward(d["x"], rate, seed), A, dtype, exact=True)
    _run_both(cp, lambda o, d: o.dropout(d["x"], rate, seed, out=d["out"]), A, dtype, exact=True)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_vs_cpu_losses(cp, rng, dtype):
    N, C = 6, 5
    p = rng.uniform(0.01, 1, (N, C)).astype(dtype)
    t = rng.uniform(0, 1, (N, C)).astype(dtype)
    A = {"z": _r(rng, (N, C), dtype, 3), "p": p, "t": t, "t01": (t > 0.5).astype(dtype),
         "lab": rng.integers(0, C, N), "lab32": rng.integers(0, C, (N, 1)).astype(np.int32),
         "out": np.zeros((N, C), dtype)}
    A["p"][0, 0] = 1e-9  # clipped entries
    _run_both(cp, lambda o, d: o.sparse_softmax_cross_entropy(d["z"], d["lab"]), A, dtype)
    _run_both(cp, lambda o, d: o.sparse_softmax_cross_entropy(d["z"], d["lab32"], out=d["out"]),
              A, dtype)
    for want_grad in (True, False):
        _run_both(cp, lambda o, d: o._sparse_xent(d["z"], d["lab"], None, want_grad), A, dtype)
    _run_both(cp, lambda o, d: o.softmax_cross_entropy(d["z"], d["t"]), A, dtype)
    _run_both(cp, lambda o, d: o.sigmoid_cross_entropy(d["z"], d["t01"], out=d["out"]), A, dtype)
    _run_both(cp, lambda o, d: o.categorical_crossentropy_kernel(d["p"], d["t"]), A, dtype)
    _run_both(cp, lambda o, d: o.binary_crossentropy_kernel(d["p"], d["t01"], epsilon=1e-3), A,
              dtype)
    _run_both(cp, lambda o, d: o.mean_squared_error(d["z"], d["t"]), A, dtype)
    _run_both(cp, lambda o, d: o.mean_absolute_error(d["z"], d["t"]), A, dtype)
    for kind in ("softmax_xent", "mse"):
        _run_both(cp, lambda o, d: o._loss_kernel(kind, d["z"], d["t"], None, False), A, dtype)
    with pytest.raises(ValueError, match="out of range"):
        fastdl.ops.sparse_softmax_cross_entropy(cp.asarray(A["z"]), cp.asarray(A["lab"] + C))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_vs_cpu_optimizer_updates(cp, rng, dtype):
    A = {k: _r(rng, (5, 7), dtype) for k in ("p", "g")}
    A.update({k: np.zeros((5, 7), dtype) for k in ("m", "v")})
    A["v"] += 0.1
    for _ in range(2):
        _run_both(cp, lambda o, d: o.sgd_update(d["p"], d["g"], learning_rate=0.1), A, dtype)
        _run_both(cp, lambda o, d: o.sgd_update(d["p"], d["g"], d["m"], learning_rate=0.1,
                                                momentum=0.9, nesterov=True, weight_decay=0.01),
                  A, dtype)
    for step in (1, 2, 3):
        _run_both(cp, lambda o, d: o.adam_update(d["p"], d["g"], d["m"], d["v"], step=step,
                                                 learning_rate=0.01, weight_decay=0.004),
                  A, dtype, 10)
    for mom in (0.0, 0.9):
        _run_both(cp, lambda o, d: o.rmsprop_update(d["p"], d["g"], d["v"],
                                                    d["m"] if mom else None, momentum=mom,
                                                    weight_decay=0.01), A, dtype, 10)


# ================================================================= models on the GPU
def _gpu_model(kind, dtype):
    from fastdl import layers as L, models
    d = dict(dtype=np.dtype(dtype).name)
    if kind == "mlp":
        ls = [L.Input((6, 6, 1), **d), L.Flatten(**d), L.Dense(12, activation="relu", **d),
              L.Dropout(0.25, **d), L.Dense(3, activation="softmax", **d)]
    elif kind in ("convnet", "functional_convnet"):
        ls = [L.Input((6, 6, 1), **d), L.Conv2D(4, 3, activation="relu", **d),
              L.MaxPooling2D(**d), L.Flatten(**d), L.Dense(3, activation="softmax", **d)]
    elif kind == "convlayers":
        ls = [L.Input((6, 6, 1), **d), L.Conv2DTranspose(3, 3, strides=2, padding="same", **d),
              L.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", **d),
              L.SeparableConv2D(4, 3, strides=2, **d), L.Reshape((16, 4), **d),
              L.Conv1D(4, 3, padding="causal", **d), L.Flatten(**d),
              L.Dense(3, activation="softmax", **d)]
    else:
        cell = {"simple_rnn": L.SimpleRNN, "lstm": L.LSTM, "gru": L.GRU}[kind]
        ls = [L.Input((6, 6), **d), cell(5, **d), L.Dense(3, activation="softmax", **d)]
    if kind == "functional_convnet":   # the graph step plan, Conv2D(relu) + pool paired
        i = fastdl.Input((6, 6, 1), dtype=d["dtype"])
        h = L.MaxPooling2D(**d)(L.Conv2D(4, 3, activation="relu", **d)(i))
        m = fastdl.Model(i, L.Dense(3, activation="softmax", **d)(L.Flatten(**d)(h)))
    else:
        m = models.Sequential(ls)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _tape_model(dtype):
    """A functional model with a layer written with ops (traced by the tape)."""
    from fastdl import layers as L, ops as O

    class Scale(L.Layer):
        def build(self, s):
            self.w = self.add_weight(shape=(s[-1],), initializer="ones")

        def call(self, x):
            return O.tanh(x * self.w) + O.relu(x)

    d = dict(dtype=np.dtype(dtype).name)
    i = fastdl.Input((5,), dtype=np.dtype(dtype).name)
    h = L.Dense(8, activation="relu", **d)(i)
    h = L.add([Scale(**d)(h), L.Dense(8, **d)(h)])
    m = fastdl.Model(i, L.Dense(3, activation="softmax", **d)(h))
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_model_with_traced_layer_on_cuda_fits_like_cpu(cp, rng, dtype):
    # the tape path on the device: built-in layers' CUDA kernels as nodes, keras.ops on
    # CuPy arrays, gradients and optimizer slots on the device
    x = rng.standard_normal((40, 5)).astype(dtype)
    y = rng.integers(0, 3, 40)
    runs = []
    for device in ("cpu", "cuda"):
        fastdl.set_seed(5)
        m = _tape_model(dtype)
        m.to(device)
        h = m.fit(x, y, batch_size=16, epochs=2, verbose=0)
        p = m.predict(x, verbose=0)
        m.to("cpu")
        runs.append((h.history, p, m.get_weights()))
    (h0, p0, w0), (h1, p1, w1) = runs
    t = tol(dtype, 10)
    for k in h0:
        np.testing.assert_allclose(h1[k], h0[k], **t, err_msg=k)
    np.testing.assert_allclose(p1, p0, **t)
    for a, b in zip(w1, w0):
        np.testing.assert_allclose(a, b, **t)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["mlp", "convnet", "functional_convnet", "simple_rnn", "lstm",
                                  "gru", "convlayers"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_model_to_cuda_fits_like_cpu(cp, rng, kind, dtype):
    # model.to("cuda"): weights move, fit/evaluate/predict move each batch; the
    # same seed gives the same training as on the CPU (dropout masks included).
    x = rng.standard_normal((40, 6, 6, 1) if kind in ("mlp", "convnet", "functional_convnet",
                                                      "convlayers")
                            else (40, 6, 6)).astype(dtype)
    y = rng.integers(0, 3, 40)
    runs = []
    for device in ("cpu", "cuda"):
        fastdl.set_seed(11)
        m = _gpu_model(kind, dtype)
        paths = [w.path for w in m.weights]
        m.to(device)
        assert m.device == device
        if device == "cuda":
            # on the device, weights are CuPy arrays, not Variables (a documented limitation)
            assert all(type(w).__module__.split(".")[0] == "cupy" for w in m.trainable_weights)
        h = m.fit(x, y, batch_size=16, epochs=2, verbose=0)
        ev = m.evaluate(x, y, verbose=0)
        p = m.predict(x, verbose=0)
        assert type(p) is np.ndarray and p.shape == (40, 3)
        m.to("cpu")
        # back on the host they are Variables again, with their names and flags
        assert all(isinstance(w, fastdl.Variable) for w in m.weights)
        assert [w.path for w in m.weights] == paths
        assert all(w.trainable for w in m.trainable_weights)
        runs.append((h.history, ev, p, m.get_weights()))
    (h0, e0, p0, w0), (h1, e1, p1, w1) = runs
    t = tol(dtype, 10)
    for k in h0:
        np.testing.assert_allclose(h1[k], h0[k], **t, err_msg=k)
    np.testing.assert_allclose(e1, e0, **t)
    np.testing.assert_allclose(p1, p0, **t)
    for a, b in zip(w1, w0):
        np.testing.assert_allclose(a, b, **t)


@pytest.mark.cuda
def test_masked_sequence_model_to_cuda_fits_like_cpu(cp, rng):
    # Embedding(mask_zero=True), Bidirectional, TimeDistributed and the recurrent options
    # (masks, dropout, recurrent_dropout) on the device: the same training as on the CPU.
    from fastdl import layers, models, utils
    ids = utils.pad_sequences([rng.integers(1, 12, int(k)).tolist() for k in (3, 7, 5, 8)],
                              maxlen=8)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    runs = []
    for device in ("cpu", "cuda"):
        fastdl.set_seed(5)
        m = models.Sequential([
            fastdl.Input((8,), dtype="int32"), layers.Embedding(12, 4, mask_zero=True),
            layers.Bidirectional(layers.LSTM(3, return_sequences=True)),
            layers.TimeDistributed(layers.Dense(2)),
            layers.GRU(2, dropout=0.2, recurrent_dropout=0.2, go_backwards=True)])
        m.compile(optimizer="adam", loss="mse")
        m.to(device)
        h = m.fit(ids, y, batch_size=2, epochs=2, verbose=0)
        runs.append((h.history["loss"], m.predict(ids, verbose=0)))
    (l0, p0), (l1, p1) = runs
    np.testing.assert_allclose(l1, l0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(p1, p0, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_model_low_level_loop_on_cuda(cp, rng):
    # model(x, training=True) on a GPU model takes host or device input and
    # returns a device array; backward and apply_gradients stay on the device.
    from fastdl import optimizers
    m = _gpu_model("convnet", np.float32)
    x = rng.standard_normal((5, 6, 6, 1)).astype(np.float32)
    m(x)  # builds on the CPU
    m.to("cuda")
    y = m(x, training=True)
    assert type(y).__module__.split(".")[0] == "cupy" and y.shape == (5, 3)
    dx = m.backward(cp.ones(y.shape, cp.float32))
    assert type(dx).__module__.split(".")[0] == "cupy" and dx.shape == x.shape
    before = [cp.asnumpy(w).copy() for w in m.trainable_weights]
    optimizers.SGD(0.1).apply_gradients(zip(m.gradients, m.trainable_weights))
    assert any(not np.array_equal(cp.asnumpy(w), b) for w, b in zip(m.trainable_weights, before))


# ================================================================= batch normalization
BN_SHAPES = [(1, 1), (7, 3), (5, 4, 4, 13), (300, 37), (3, 2, 97), (0, 5)]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_matches_cpu(cp, cu, rng, dtype, shape):
    from fastdl import ops
    C = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    want = ops.batch_norm(x, g, b, epsilon=1e-3)
    got = ops.batch_norm(cp.asarray(x), cp.asarray(g), cp.asarray(b), epsilon=1e-3)
    for a, w in zip(got, want):
        assert type(a).__module__.split(".")[0] == "cupy"
        np.testing.assert_allclose(cp.asnumpy(a), w, equal_nan=True, **tol(dtype))
    if shape[0] == 0:
        return
    _, m, v = want
    for batch_stats in (True, False):
        want_b = ops.batch_norm_backward(dy, x, m, v, g, batch_stats=batch_stats)
        got_b = ops.batch_norm_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(m),
                                        cp.asarray(v), cp.asarray(g), batch_stats=batch_stats)
        for a, w in zip(got_b, want_b):
            close(cp, a, w, dtype)
    none, dg, _ = ops.batch_norm_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(m),
                                          cp.asarray(v), None, need_dx=False)
    assert none is None
    close(cp, dg, ops.batch_norm_backward(dy, x, m, v, None)[1], dtype)
    yi = ops.batch_norm_inference(cp.asarray(x), cp.asarray(m), cp.asarray(v), None,
                                  cp.asarray(b))
    close(cp, yi, ops.batch_norm_inference(x, m, v, None, b), dtype)


@pytest.mark.cuda
def test_batch_norm_axis_and_out(cp, cu, rng):
    from fastdl import ops
    x = rng.standard_normal((3, 5, 4, 2))
    g = rng.standard_normal(5)
    y, m, v = ops.batch_norm(cp.asarray(x), cp.asarray(g), None, axis=1)
    want = ops.batch_norm(x, g, None, axis=1)
    for a, w in zip((y, m, v), want):
        close(cp, a, w, np.float64)
    out = cp.empty((3, 5, 4, 2))
    r = ops.batch_norm_inference(cp.asarray(x), m, v, None, None, axis=1, out=out)
    assert r is out
    close(cp, out, ops.batch_norm_inference(x, want[1], want[2], None, None, axis=1),
          np.float64)
    xl = rng.standard_normal((6, 3))
    dyl = rng.standard_normal((6, 3))
    _, ml, vl = ops.batch_norm(xl, None, None)
    d = cp.asarray(dyl)
    dx, _, _ = ops.batch_norm_backward(d, cp.asarray(xl), cp.asarray(ml), cp.asarray(vl), None,
                                       out=d)   # dx into dy
    assert dx is d
    close(cp, d, ops.batch_norm_backward(dyl, xl, ml, vl, None)[0], np.float64)


@pytest.mark.cuda
def test_batchnorm_model_trains_on_cuda_like_cpu(cp, rng):
    from fastdl import layers as L, models
    x = rng.standard_normal((24, 6, 6, 1))
    y = rng.integers(0, 3, 24)
    runs = []
    for device in ("cpu", "cuda"):
        fastdl.set_seed(5)
        m = models.Sequential([L.Input((6, 6, 1), dtype="float64"),
                               L.Conv2D(4, 3, dtype="float64"),
                               L.BatchNormalization(dtype="float64"), L.ReLU(dtype="float64"),
                               L.Flatten(dtype="float64"),
                               L.Dense(3, activation="softmax", dtype="float64"),
                               L.LayerNormalization(dtype="float64")])
        m.compile("adam", "mse")
        m(x[:2])
        if device == "cuda":
            m.to("cuda")
        m.fit(x, np.eye(3)[y], batch_size=8, epochs=2, shuffle=False, verbose=0)
        m.to("cpu")
        runs.append(m.get_weights())
    assert len(runs[0]) == 2 + 4 + 2 + 2
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (5, 13), (2, 3, 300), (0, 4), (300, 5)])
@pytest.mark.parametrize("rms", [False, True])
def test_layer_norm_matches_cpu(cp, cu, rng, dtype, shape, rms):
    from fastdl import ops
    D = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(D).astype(dtype)
    b = rng.standard_normal(D).astype(dtype)
    want = ops.layer_norm(x, g, b, rms_scaling=rms)
    got = ops.layer_norm(cp.asarray(x), cp.asarray(g), cp.asarray(b), rms_scaling=rms)
    for a, w in zip(got, want):
        close(cp, a, w, dtype)
    _, m, i = want
    want_b = ops.layer_norm_backward(dy, x, m, i, g, rms_scaling=rms)
    got_b = ops.layer_norm_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(m), cp.asarray(i),
                                    cp.asarray(g), rms_scaling=rms)
    for a, w in zip(got_b, want_b):
        close(cp, a, w, dtype)
    d = cp.asarray(dy)
    none, dg, db = ops.layer_norm_backward(d, cp.asarray(x), cp.asarray(m), cp.asarray(i), None,
                                           rms_scaling=rms, need_dx=False)
    assert none is None
    close(cp, db, want_b[2], dtype)
    dx, _, _ = ops.layer_norm_backward(d, cp.asarray(x), cp.asarray(m), cp.asarray(i),
                                       cp.asarray(g), rms_scaling=rms, out=d)   # dx into dy
    assert dx is d
    close(cp, d, want_b[0], dtype)
