"""Activation, softmax, dropout and loss kernels against NumPy references."""
import numpy as np
import pytest

import fastdl
from fastdl import ops

from ref_nn import log_softmax, numeric_grad, sigmoid, softmax, sparse_xent

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 5, 2), (0, 4), (70000,)])
def test_elementwise_forward_backward(rng, dtype, shape):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    for name, fn, ref, dref in [
        ("relu", ops.relu_kernel, lambda x: np.maximum(x, 0), lambda x, y: (x > 0)),
        ("sigmoid", ops.sigmoid_kernel, sigmoid, lambda x, y: y * (1 - y)),
        ("tanh", ops.tanh_kernel, np.tanh, lambda x, y: 1 - y * y),
    ]:
        y = fn(x)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_allclose(y, ref(x.astype(np.float64)), **TOL[dtype])
        dx = ops.activation_backward(dy, y, name)
        np.testing.assert_allclose(dx, dy * dref(x, y.astype(np.float64)), **TOL[dtype])


def test_sigmoid_extremes_and_inplace():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    y = ops.sigmoid_kernel(x)
    assert np.all(np.isfinite(y)) and y[0] == 0 and y[-1] == 1 and y[2] == 0.5
    assert np.isnan(ops.relu_kernel(np.array([np.nan], np.float32))[0])   # NaN propagates like np.maximum
    z = x.copy()
    assert ops.relu_kernel(z, out=z) is z
    np.testing.assert_array_equal(z, np.maximum(x, 0))


def test_noncontiguous_input(rng):
    x = rng.standard_normal((8, 6)).astype(np.float32)
    np.testing.assert_allclose(ops.tanh_kernel(x.T), np.tanh(x.T), rtol=1e-6)
    np.testing.assert_allclose(ops.softmax_kernel(x[:, ::2]), softmax(x[:, ::2]), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_log_softmax(rng, dtype, axis):
    x = (rng.standard_normal((5, 11, 3)) * 10).astype(dtype)
    np.testing.assert_allclose(ops.softmax_kernel(x, axis), softmax(x.astype(np.float64), axis), **TOL[dtype])
    np.testing.assert_allclose(ops.log_softmax_kernel(x, axis), log_softmax(x.astype(np.float64), axis),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_softmax_large_values_stable():
    x = np.array([[1000.0, 1000.0, -1000.0]], np.float32)
    np.testing.assert_allclose(ops.softmax_kernel(x), [[0.5, 0.5, 0.0]])
    assert np.all(np.isfinite(ops.log_softmax_kernel(x)))


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_backward_finite_differences(rng, axis):
    x = rng.standard_normal((4, 6))
    w = rng.standard_normal((4, 6))
    for fwd, bwd in [(ops.softmax_kernel, ops.softmax_backward), (ops.log_softmax_kernel, ops.log_softmax_backward)]:
        y = fwd(x, axis)
        dx = bwd(w, y, axis)
        num = numeric_grad(lambda: float((fwd(x, axis) * w).sum()), x, range(x.size))
        np.testing.assert_allclose(dx.reshape(-1), num, rtol=1e-6, atol=1e-8)


def test_dropout_mask_properties(rng):
    x = np.ones((200, 500), np.float32)
    y = ops.dropout(x, 0.3, 12345)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(ops.dropout(x, 0.3, 12345), y)        # same seed, same mask
    assert not np.array_equal(ops.dropout(x, 0.3, 12346), y)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(ops.dropout_backward(dy, 0.3, 12345) != 0, kept)
    np.testing.assert_array_equal(ops.dropout(x, 0.0, 1), x)


def test_dropout_same_mask_any_thread_count():
    x = np.ones(300000, np.float32)
    n = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        a = ops.dropout(x, 0.5, 99)
        fastdl.set_num_threads(2)
        b = ops.dropout(x, 0.5, 99)
    finally:
        fastdl.set_num_threads(n)
    np.testing.assert_array_equal(a, b)


def test_dropout_bad_rate_and_seed(dev):
    x = dev(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="rate"):
        ops.dropout(x, 1.0, 0)
    with pytest.raises(ValueError, match="rate"):
        ops.dropout_backward(x, -0.5, 0)
    with pytest.raises((TypeError, ValueError)):
        ops.dropout(x, 0.5, "x")
    with pytest.raises(TypeError):
        ops.dropout(x, 0.5, [])


def test_out_arguments_checked_alike(dev):
    # out= of the element-wise and row-wise ops: the input's shape and dtype, writeable,
    # C-contiguous, and either the input itself (in place) or apart from it.
    x = dev(np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(ValueError, match="out must have shape"):
        ops.relu_kernel(x, out=dev(np.zeros((4, 3), np.float32)))
    with pytest.raises(TypeError, match="out has dtype float64"):
        ops.sigmoid_kernel(x, out=dev(np.zeros((3, 4))))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.tanh_kernel(x, out=dev(np.zeros((4, 3), np.float32)).T)
    if dev.has_readonly:
        ro = np.zeros((3, 4), np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            ops.relu_kernel(x, out=dev(ro))
    buf = dev(np.arange(16, dtype=np.float32) - 8)
    with pytest.raises(ValueError, match="partially overlaps"):
        ops.relu_kernel(buf[:12].reshape(3, 4), out=buf[4:].reshape(3, 4))
    y = ops.relu_kernel(buf, out=buf)  # in place
    assert y is buf
    np.testing.assert_array_equal(dev.host(buf), np.maximum(np.arange(16) - 8, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c", [(1, 1), (7, 3), (32, 10), (2000, 17)])
def test_sparse_softmax_cross_entropy(rng, dtype, n, c):
    z = (rng.standard_normal((n, c)) * 5).astype(dtype)
    lab = rng.integers(0, c, n)
    loss, d = ops.sparse_softmax_cross_entropy(z, lab)
    rl, rd = sparse_xent(z, lab)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert abs(loss - rl) <= tol * max(1, abs(rl))
    np.testing.assert_allclose(d, rd, rtol=tol, atol=tol)
    assert d.dtype == dtype


def test_sparse_xent_stable_and_label_dtypes():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    for lab in (np.array([1], np.int32), np.array([1], np.uint8), np.array([[1]], np.int64)):
        loss, d = ops.sparse_softmax_cross_entropy(z, lab)
        assert np.isfinite(loss) and abs(loss - 2e4) < 1
        assert np.all(np.isfinite(d))


def test_sparse_xent_bad_labels(dev):
    z = dev(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"labels\[1\] = 4 is out of range for 4 classes"):
        ops.sparse_softmax_cross_entropy(z, dev(np.array([0, 4, 1])))
    with pytest.raises(ValueError, match=r"labels\[1\] = -1 is out of range"):
        ops.sparse_softmax_cross_entropy(z, dev(np.array([0, -1, 1], np.int32)))
    with pytest.raises(TypeError, match="integer"):
        ops.sparse_softmax_cross_entropy(z, dev(np.array([0.0, 1.0, 1.0])))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        ops.sparse_softmax_cross_entropy(z, dev(np.array([0, 1])))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.sparse_softmax_cross_entropy(z.astype(np.int32), dev(np.array([0, 1, 1])))


def _ref_losses(kind, p, t):
    eps = 1e-7
    if kind == "mse":
        return ((p - t) ** 2).mean()
    if kind == "mae":
        return np.abs(p - t).mean()
    if kind == "bce":
        q = np.clip(p, eps, 1 - eps)
        return -(t * np.log(q) + (1 - t) * np.log(1 - q)).mean()
    if kind == "cce":
        q = np.clip(p / p.sum(-1, keepdims=True), eps, 1 - eps)
        return -(t * np.log(q)).sum(-1).mean()
    if kind == "softmax_xent":
        return -(t * log_softmax(p)).sum(-1).mean()
    if kind == "sigmoid_xent":
        s = sigmoid(p)
        return -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()


@pytest.mark.parametrize("kind,fn", [("mse", ops.mean_squared_error), ("mae", ops.mean_absolute_error),
                                     ("bce", ops.binary_crossentropy_kernel), ("cce", ops.categorical_crossentropy_kernel),
                                     ("softmax_xent", ops.softmax_cross_entropy),
                                     ("sigmoid_xent", ops.sigmoid_cross_entropy)])
def test_losses_value_and_gradient(rng, kind, fn):
    if kind in ("bce", "cce"):
        p = rng.uniform(0.05, 0.95, (6, 4))
    else:
        p = rng.standard_normal((6, 4))
    if kind in ("cce", "softmax_xent"):
        t = np.eye(4)[rng.integers(0, 4, 6)]
    else:
        t = rng.uniform(0, 1, (6, 4)) if kind != "mae" else rng.standard_normal((6, 4))
    loss, d = fn(p, t)
    assert abs(loss - _ref_losses(kind, p, t)) < 1e-10
    num = numeric_grad(lambda: fn(p, t)[0], p, range(p.size))
    np.testing.assert_allclose(d.reshape(-1), num, rtol=1e-5, atol=1e-8)
    l32, d32 = fn(p.astype(np.float32), t.astype(np.float32))
    assert d32.dtype == np.float32 and abs(l32 - loss) < 1e-4 * max(1, abs(loss))


def test_loss_shape_mismatch(dev):
    with pytest.raises(ValueError, match="y_true has shape"):
        ops.mean_squared_error(dev(np.zeros((3, 2))), dev(np.zeros((3, 1))))
    with pytest.raises(TypeError, match="y_true has dtype float32 but y_pred has dtype float64"):
        ops.mean_squared_error(dev(np.zeros((3, 2))), dev(np.zeros((3, 2), np.float32)))
