"""Normalization: the batch-norm kernels (ops.batch_norm, _inference, _backward) and the
BatchNormalization / LayerNormalization layers, against NumPy references, float64 finite
differences, every SIMD level, PyTorch (where installed) and Keras' moving-average rule."""
import json
import os

import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops
from helpers import numeric_gradient, run_at_simd_levels


# ================================================================= NumPy references
def bn_ref(x, gamma, beta, eps, axis=-1):
    axis = axis % x.ndim
    red = tuple(a for a in range(x.ndim) if a != axis)
    bshape = [1] * x.ndim
    bshape[axis] = x.shape[axis]
    xd = x.astype(np.float64)
    mean = xd.mean(axis=red)
    var = xd.var(axis=red)
    g = np.ones(x.shape[axis]) if gamma is None else gamma.astype(np.float64)
    b = np.zeros(x.shape[axis]) if beta is None else beta.astype(np.float64)
    y = (xd - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps) * g.reshape(bshape) + \
        b.reshape(bshape)
    return y, mean, var


def bn_backward_ref(dy, x, mean, var, gamma, eps, batch_stats=True, axis=-1):
    axis = axis % x.ndim
    red = tuple(a for a in range(x.ndim) if a != axis)
    bshape = [1] * x.ndim
    bshape[axis] = x.shape[axis]
    dy, x = dy.astype(np.float64), x.astype(np.float64)
    M = x.size // x.shape[axis]
    inv = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    g = np.ones(x.shape[axis]) if gamma is None else gamma.astype(np.float64)
    xhat = (x - mean.reshape(bshape)) * inv.reshape(bshape)
    dbeta = dy.sum(axis=red)
    dgamma = (dy * xhat).sum(axis=red)
    if batch_stats:
        dx = (g * inv).reshape(bshape) * (dy - dbeta.reshape(bshape) / M -
                                          xhat * dgamma.reshape(bshape) / M)
    else:
        dx = (g * inv).reshape(bshape) * dy
    return dx, dgamma, dbeta


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


SHAPES = [(1, 1), (2, 1), (7, 3), (1, 3, 3, 1), (5, 4, 4, 13), (3, 2, 97), (4, 33)]


# ================================================================= kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_forward_backward_match_numpy(rng, dtype, shape, affine):
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    C = shape[-1]
    gamma = rng.standard_normal(C).astype(dtype) if affine else None
    beta = rng.standard_normal(C).astype(dtype) if affine else None
    eps = 1e-3
    y, mean, var = ops.batch_norm(x, gamma, beta, epsilon=eps)
    yr, mr, vr = bn_ref(x, gamma, beta, eps)
    assert y.dtype == dtype and mean.dtype == dtype and var.dtype == dtype
    np.testing.assert_allclose(y, yr, **tol(dtype))
    np.testing.assert_allclose(mean, mr, **tol(dtype))
    np.testing.assert_allclose(var, vr, **tol(dtype))

    dy = rng.standard_normal(shape).astype(dtype)
    for batch_stats in (True, False):
        dx, dg, db = ops.batch_norm_backward(dy, x, mean, var, gamma, epsilon=eps,
                                             batch_stats=batch_stats)
        dxr, dgr, dbr = bn_backward_ref(dy, x, mean, var, gamma, eps, batch_stats)
        np.testing.assert_allclose(dx, dxr, **tol(dtype))
        np.testing.assert_allclose(dg, dgr, **tol(dtype))
        np.testing.assert_allclose(db, dbr, **tol(dtype))
    none, dg2, db2 = ops.batch_norm_backward(dy, x, mean, var, gamma, epsilon=eps, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(dg2, dg)

    # inference form with the batch's own statistics gives the training output
    yi = ops.batch_norm_inference(x, mean, var, gamma, beta, epsilon=eps)
    np.testing.assert_allclose(yi, yr, **tol(dtype))


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_batch_norm_other_axes(rng, axis):
    x = rng.standard_normal((3, 5, 7, 2))
    C = x.shape[axis]
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    y, mean, var = ops.batch_norm(x, gamma, beta, axis=axis, epsilon=1e-2)
    yr, mr, vr = bn_ref(x, gamma, beta, 1e-2, axis)
    np.testing.assert_allclose(y, yr, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(var, vr, rtol=1e-11)
    assert y.flags.c_contiguous
    dy = rng.standard_normal(x.shape)
    dx, dg, db = ops.batch_norm_backward(dy, x, mean, var, gamma, axis=axis, epsilon=1e-2)
    dxr, dgr, dbr = bn_backward_ref(dy, x, mean, var, gamma, 1e-2, axis=axis)
    np.testing.assert_allclose(dx, dxr, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(dg, dgr, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(db, dbr, rtol=1e-10, atol=1e-11)
    yi = ops.batch_norm_inference(x, mean, var, gamma, beta, axis=axis, epsilon=1e-2)
    np.testing.assert_allclose(yi, yr, rtol=1e-10, atol=1e-11)


def test_batch_norm_large_mean_float32_variance(rng):
    # the statistics are shifted sums: a mean far from zero does not cancel the variance
    x = (1000.0 + rng.standard_normal((4096, 8)) * 0.01).astype(np.float32)
    _, mean, var = ops.batch_norm(x, None, None, epsilon=1e-3)
    vr = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(var, vr, rtol=1e-3)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)


def test_batch_norm_threaded_matches_one_thread(rng):
    x = rng.standard_normal((128 * 26 * 26 // 4, 32)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    g = rng.standard_normal(32).astype(np.float32)
    n = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        one = ops.batch_norm(x, g, None)
        one_b = ops.batch_norm_backward(dy, x, one[1], one[2], g)
        fastdl.set_num_threads(2)
        two = ops.batch_norm(x, g, None)
        two_b = ops.batch_norm_backward(dy, x, two[1], two[2], g)
    finally:
        fastdl.set_num_threads(n)
    for a, b in zip(one + one_b, two + two_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1])
def test_batch_norm_finite_differences(rng, axis):
    x = rng.standard_normal((3, 2, 5))
    C = x.shape[axis]
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    w = rng.standard_normal(x.shape)
    eps = 1e-3

    def loss():
        return float((ops.batch_norm(x, gamma, beta, axis=axis, epsilon=eps)[0] * w).sum())
    _, mean, var = ops.batch_norm(x, gamma, beta, axis=axis, epsilon=eps)
    dx, dg, db = ops.batch_norm_backward(w, x, mean, var, gamma, axis=axis, epsilon=eps)
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_gradient(loss, gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(loss, beta), rtol=1e-6, atol=1e-7)

    # the inference form: statistics fixed
    mm, mv = rng.standard_normal(C), rng.uniform(0.5, 2, C)

    def loss_inf():
        return float((ops.batch_norm_inference(x, mm, mv, gamma, beta, axis=axis,
                                               epsilon=eps) * w).sum())
    dx, dg, db = ops.batch_norm_backward(w, x, mm, mv, gamma, axis=axis, epsilon=eps,
                                         batch_stats=False)
    np.testing.assert_allclose(dx, numeric_gradient(loss_inf, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_gradient(loss_inf, gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(loss_inf, beta), rtol=1e-6, atol=1e-7)


def test_batch_norm_empty_batch_and_in_place(rng):
    x = np.zeros((0, 4), np.float32)
    y, mean, var = ops.batch_norm(x, None, None)
    assert y.shape == (0, 4) and np.isnan(mean).all() and np.isnan(var).all()
    dx, dg, db = ops.batch_norm_backward(x, x, np.zeros(4, np.float32), np.ones(4, np.float32),
                                         None)
    assert dx.shape == (0, 4) and (dg == 0).all() and (db == 0).all()
    a = rng.standard_normal((6, 3))
    want = bn_ref(a, None, None, 1e-3)[0]
    y, _, _ = ops.batch_norm(a, None, None, out=a)   # in place
    assert y is a
    np.testing.assert_allclose(a, want, rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 4))
    _, m, v = ops.batch_norm(x, None, None)
    want = ops.batch_norm_backward(dy, x, m, v, None)[0]
    dx, _, _ = ops.batch_norm_backward(dy, x, m, v, None, out=dy)   # dx into dy
    assert dx is dy
    np.testing.assert_allclose(dy, want, rtol=1e-12, atol=1e-12)
    buf = rng.standard_normal(24)
    xs, part = buf[:20].reshape(5, 4), buf[2:22].reshape(5, 4)   # out partly over x
    with pytest.raises(ValueError, match="out partially overlaps x"):
        ops.batch_norm_backward(dy, xs, m, v, None, out=part)
    with pytest.raises(ValueError, match="out must"):
        ops.batch_norm(x, None, None, axis=0, out=np.zeros((4, 5)))


def test_norm_kernels_simd_levels_match_generic(tmp_path):
    script = """
import sys
import numpy as np
from fastdl import ops
rng = np.random.default_rng(7)
out = {}
for shape in [(1, 1), (5, 3), (37, 19), (16, 8, 8, 32), (300, 7)]:
    for dt in (np.float32, np.float64):
        x = (rng.standard_normal(shape) * 3 + 1).astype(dt)
        C = shape[-1]
        g, b = rng.standard_normal(C).astype(dt), rng.standard_normal(C).astype(dt)
        dy = rng.standard_normal(shape).astype(dt)
        y, m, v = ops.batch_norm(x, g, b)
        dx, dg, db = ops.batch_norm_backward(dy, x, m, v, g)
        dxi, _, _ = ops.batch_norm_backward(dy, x, m, v, g, batch_stats=False)
        yi = ops.batch_norm_inference(x, m, v, g, b)
        key = f"{'x'.join(map(str, shape))}_{np.dtype(dt).name}"
        for name, a in dict(y=y, m=m, v=v, dx=dx, dg=dg, db=db, dxi=dxi, yi=yi).items():
            out[f"{name}_{key}"] = a
        for rms in (False, True):
            ly, lm, li = ops.layer_norm(x, g, b, rms_scaling=rms)
            ldx, ldg, ldb = ops.layer_norm_backward(dy, x, lm, li, g, rms_scaling=rms)
            for name, a in dict(ly=ly, lm=lm, li=li, ldx=ldx, ldg=ldg, ldb=ldb).items():
                out[f"{name}{int(rms)}_{key}"] = a
np.savez(sys.argv[1], **out)
"""
    res = run_at_simd_levels(tmp_path, script)
    base = res["generic"]
    for level, got in res.items():
        for k, v in got.items():
            t = dict(rtol=1e-5, atol=1e-5) if "float32" in k else dict(rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(v, base[k], err_msg=f"{level} {k}", **t)


def test_batch_norm_bad_arguments(dev):
    x = dev(np.zeros((4, 3), np.float32))
    c3 = dev(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="epsilon"):
        ops.batch_norm(x, None, None, epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        ops.batch_norm(x, None, None, epsilon=-1.0)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        ops.batch_norm(x, dev(np.ones(4, np.float32)), None)
    with pytest.raises(TypeError, match="beta has dtype float64"):
        ops.batch_norm(x, None, dev(np.ones(3)))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        ops.batch_norm(dev(np.zeros((4, 3), np.int32)), None, None)
    with pytest.raises(ValueError, match="out of range"):
        ops.batch_norm(x, None, None, axis=2)
    with pytest.raises(ValueError, match="mean must have shape"):
        ops.batch_norm_inference(x, dev(np.ones(2, np.float32)), c3)
    with pytest.raises(ValueError, match="dy must have shape"):
        ops.batch_norm_backward(dev(np.zeros((4, 2), np.float32)), x, c3, c3, None)
    with pytest.raises(ValueError, match="var is required"):
        ops.batch_norm_inference(x, c3, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 7), (5, 13), (2, 3, 97), (0, 4), (300, 64)])
@pytest.mark.parametrize("rms", [False, True])
def test_layer_norm_kernel_matches_numpy(rng, dtype, shape, rms):
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    D = shape[-1]
    gamma = rng.standard_normal(D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    y, mean, inv = ops.layer_norm(x, gamma, beta, epsilon=1e-3, rms_scaling=rms)
    assert mean.shape == inv.shape == (x.size // D,)
    xd = x.astype(np.float64)
    mu = xd.mean(-1, keepdims=True)
    var = ((xd - mu) ** 2).mean(-1, keepdims=True)
    xhat = (xd - (0 if rms else mu)) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(y, xhat * gamma + beta, **tol(dtype))
    np.testing.assert_allclose(inv, (1 / np.sqrt(var + 1e-3)).ravel(), **tol(dtype))
    dy = rng.standard_normal(shape).astype(dtype)
    g = dy * gamma
    proj = (g * xhat).mean(-1, keepdims=True) * (xd - mu) / np.sqrt(var + 1e-3)
    dxr = (g - (0 if rms else g.mean(-1, keepdims=True)) - proj) / np.sqrt(var + 1e-3)
    dx, dg, db = ops.layer_norm_backward(dy, x, mean, inv, gamma, rms_scaling=rms)
    red = tuple(range(x.ndim - 1))
    np.testing.assert_allclose(dx, dxr, **tol(dtype))
    np.testing.assert_allclose(dg, (dy * xhat).sum(red), **tol(dtype))
    np.testing.assert_allclose(db, dy.sum(red), **tol(dtype))
    y0, _, _ = ops.layer_norm(x, None, None, epsilon=1e-3, rms_scaling=rms)
    np.testing.assert_allclose(y0, xhat, **tol(dtype))
    none, dg2, _ = ops.layer_norm_backward(dy, x, mean, inv, gamma, rms_scaling=rms,
                                           need_dx=False, out=None)
    assert none is None
    np.testing.assert_array_equal(dg2, dg)
    d = dy.copy()
    ops.layer_norm_backward(d, x, mean, inv, gamma, rms_scaling=rms, out=d)   # dx into dy
    np.testing.assert_allclose(d, dxr, **tol(dtype))


def test_layer_norm_bad_arguments(dev):
    x = dev(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="layer_norm: epsilon"):
        ops.layer_norm(x, None, None, epsilon=0.0)
    with pytest.raises(ValueError, match=r"layer_norm: gamma must have shape \(3,\)"):
        ops.layer_norm(x, dev(np.ones(4, np.float32)), None)
    with pytest.raises(TypeError, match="beta has dtype float64"):
        ops.layer_norm(x, None, dev(np.ones(3)))
    with pytest.raises(ValueError, match=r"layer_norm: mean must have shape \(4,\)"):
        ops.layer_norm_backward(x, x, dev(np.ones(3, np.float32)), dev(np.ones(4, np.float32)))
    with pytest.raises(ValueError, match="inv is required"):
        ops.layer_norm_backward(x, x, dev(np.ones(4, np.float32)), None)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        ops.layer_norm(dev(np.zeros((4, 3), np.int64)), None, None)


# ================================================================= BatchNormalization
def test_batch_normalization_weights_in_keras_order():
    bn = layers.BatchNormalization()
    bn(np.zeros((2, 5, 4), np.float32))
    assert [w.shape for w in bn.weights] == [(4,)] * 4
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    assert bn.trainable_weights[0] is bn.gamma and bn.trainable_weights[1] is bn.beta
    assert bn.non_trainable_weights == [bn.moving_mean, bn.moving_variance]
    np.testing.assert_array_equal(bn.gamma, 1)
    np.testing.assert_array_equal(bn.moving_variance, 1)
    np.testing.assert_array_equal(bn.moving_mean, 0)
    only = layers.BatchNormalization(center=False, scale=False)
    only(np.zeros((2, 3), np.float32))
    assert len(only.weights) == 2 and only.trainable_weights == []


def test_batch_normalization_moving_statistics_follow_keras_rule(rng):
    bn = layers.BatchNormalization(momentum=0.9, epsilon=1e-2)
    mm, mv = np.zeros(6), np.ones(6)
    for step in range(5):
        x = (rng.standard_normal((8, 3, 6)) * (step + 1) + step).astype(np.float32)
        y = bn(x, training=True)
        xd = x.astype(np.float64).reshape(-1, 6)
        # Keras 3: moving = moving * momentum + batch * (1 - momentum), biased variance
        mm = mm * 0.9 + xd.mean(0) * 0.1
        mv = mv * 0.9 + xd.var(0) * 0.1
        np.testing.assert_allclose(y, bn_ref(x, bn.gamma, bn.beta, 1e-2)[0], rtol=1e-4,
                                   atol=1e-4)
    np.testing.assert_allclose(bn.moving_mean, mm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, mv, rtol=1e-5, atol=1e-6)
    # inference uses the moving statistics and leaves them alone
    x = rng.standard_normal((4, 3, 6)).astype(np.float32)
    before = bn.moving_mean.copy()
    y = bn(x)           # training defaults to False
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + 1e-2), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(bn.moving_mean, before)


def test_batch_normalization_fit_moving_statistics(rng):
    # BN first: its inputs are the data, so the batch statistics of every step are known
    x = rng.standard_normal((48, 5)).astype(np.float32) * 3 + 2
    y = rng.integers(0, 2, 48)
    model = models.Sequential([layers.Input((5,)), layers.BatchNormalization(momentum=0.8),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    mm, mv = np.zeros(5), np.ones(5)
    for _ in range(2):
        for i in range(0, 48, 16):
            b = x[i:i + 16].astype(np.float64)
            mm = mm * 0.8 + b.mean(0) * 0.2
            mv = mv * 0.8 + b.var(0) * 0.2
    bn = model.layers[0]
    np.testing.assert_allclose(bn.moving_mean, mm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, mv, rtol=1e-5, atol=1e-6)
    # gamma and beta were trained
    assert not np.allclose(bn.gamma, 1) and not np.allclose(bn.beta, 0)
    # predict runs in inference mode: moving statistics
    p = model.predict(x[:4], verbose=0)
    h = (x[:4] - bn.moving_mean) / np.sqrt(bn.moving_variance + 1e-3) * bn.gamma + bn.beta
    z = h @ model.layers[1].kernel + model.layers[1].bias
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_batch_normalization_frozen_runs_in_inference_mode(rng):
    x = rng.standard_normal((32, 4)).astype(np.float32) * 2 + 1
    y = rng.integers(0, 3, 32)
    bn = layers.BatchNormalization()
    model = models.Sequential([layers.Input((4,)), bn, layers.Dense(3, activation="softmax")])
    bn.trainable = False
    assert model.trainable_weights == [model.layers[1].kernel, model.layers[1].bias]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in bn.weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(before, bn.weights):
        np.testing.assert_array_equal(a, b)
    out = bn(x, training=True)  # frozen: moving statistics even with training=True
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-6)
    dx = bn.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, np.full_like(x, 1 / np.sqrt(1 + 1e-3)), rtol=1e-6)


def test_batch_normalization_layer_backward_finite_differences(rng):
    bn = layers.BatchNormalization(dtype="float64", epsilon=1e-2)
    x = rng.standard_normal((4, 3, 5))
    bn(x)                                   # builds it
    bn.set_weights([rng.standard_normal(5), rng.standard_normal(5), np.zeros(5), np.ones(5)])
    w = rng.standard_normal(x.shape)
    mm, mv = bn.moving_mean.copy(), bn.moving_variance.copy()

    def loss():
        bn.moving_mean[...] = mm
        bn.moving_variance[...] = mv
        return float((bn(x, training=True) * w).sum())
    loss()
    dx = bn.backward(w)
    dg, db = [g.copy() for g in bn.gradients]
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_gradient(loss, bn.gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(loss, bn.beta), rtol=1e-6, atol=1e-7)


def test_batch_normalization_channel_axis_1(rng):
    bn = layers.BatchNormalization(axis=1, momentum=0.5)
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32)
    y = bn(x, training=True)
    assert bn.gamma.shape == (3,)
    np.testing.assert_allclose(y, bn_ref(x, None, None, 1e-3, axis=1)[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.moving_mean, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-4,
                               atol=1e-6)
    dx = bn.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, 0, atol=1e-5)   # the sum of a normalized input is fixed


def test_batch_normalization_gradient_tape_and_functional(rng):
    inp = fastdl.Input((4, 4, 3))
    h = layers.Conv2D(5, 3, padding="same")(inp)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    out = layers.Dense(2)(layers.Flatten()(h))
    model = fastdl.Model(inp, out)
    x = rng.standard_normal((6, 4, 4, 3)).astype(np.float32)
    bn = model.layers[2]
    with fastdl.GradientTape() as tape:
        y = model(x, training=True)
        loss = ops.mean(ops.square(y))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == 6 and all(g is not None for g in grads)
    assert not np.allclose(bn.moving_mean, 0)        # the training call moved them
    # the same gradients through the low-level loop (layer.backward by hand)
    bn2_mm = bn.moving_mean.copy()
    y2 = model(x, training=True)
    model.backward(2 * y2 / y2.size)
    for g1, g2 in zip(grads, model.gradients):
        np.testing.assert_allclose(np.asarray(g1), g2, rtol=1e-4, atol=1e-6)
    assert not np.allclose(bn.moving_mean, bn2_mm)
    # training=False leaves the moving statistics alone
    mm = bn.moving_mean.copy()
    model(x, training=False)
    np.testing.assert_array_equal(bn.moving_mean, mm)


def test_batch_normalization_config_round_trip(tmp_path, rng):
    bn = layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-4, center=False,
                                   gamma_initializer="zeros", gamma_regularizer="l2", name="bnx")
    cfg = bn.get_config()
    json.dumps(cfg)
    again = layers.BatchNormalization.from_config(cfg)
    assert again.get_config() == cfg
    assert cfg["axis"] == 1 and cfg["momentum"] == 0.9 and cfg["center"] is False
    model = models.Sequential([layers.Input((3, 2)), layers.BatchNormalization(),
                               layers.LayerNormalization(), layers.Flatten(), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(rng.standard_normal((16, 3, 2)), rng.standard_normal((16, 2)), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = models.load_model(path)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_normalization_bad_arguments():
    with pytest.raises(ValueError, match="BatchNormalization.*momentum"):
        layers.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="BatchNormalization.*momentum"):
        layers.BatchNormalization(momentum=-0.1)
    with pytest.raises(ValueError, match="BatchNormalization.*epsilon"):
        layers.BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="LayerNormalization.*epsilon"):
        layers.LayerNormalization(epsilon=-1e-3)
    with pytest.raises(TypeError, match="BatchNormalization.*axis"):
        layers.BatchNormalization(axis=[1, 2])
    with pytest.raises(TypeError, match="LayerNormalization.*axis"):
        layers.LayerNormalization(axis="last")
    with pytest.raises(NotImplementedError, match="synchronized"):
        layers.BatchNormalization(synchronized=True)
    bn = layers.BatchNormalization(axis=3, name="bn_far")
    with pytest.raises(ValueError, match="'bn_far'.*axis 3 is out of range"):
        bn(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match="batch axis"):
        layers.BatchNormalization(axis=0)(np.zeros((2, 4), np.float32))
    ln = layers.LayerNormalization(axis=[1, -1], name="ln_dup")
    with pytest.raises(ValueError, match="'ln_dup'.*twice"):
        ln(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        layers.LayerNormalization(axis=-4)(np.zeros((2, 4, 3), np.float32))


# ================================================================= LayerNormalization
def ln_ref(x, gamma, beta, axes, eps, rms=False):
    # Keras 3: rms_scaling scales x by 1 / sqrt(var(x) + eps) without centering it
    x = x.astype(np.float64)
    xc = x - x.mean(axis=axes, keepdims=True)
    xhat = (x if rms else xc) / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    y = xhat if gamma is None else xhat * gamma
    return y if beta is None else y + beta


@pytest.mark.parametrize("axis,shape", [(-1, (3, 7)), (-1, (2, 5, 1)), ([1, 2], (2, 3, 5)),
                                        (1, (4, 3, 2)), ([-2, -1], (1, 2, 3, 4))])
@pytest.mark.parametrize("rms", [False, True])
def test_layer_normalization_matches_numpy_and_finite_differences(rng, axis, shape, rms):
    ln = layers.LayerNormalization(axis=axis, rms_scaling=rms, dtype="float64")
    x = rng.standard_normal(shape) * 2 + 0.3
    ln(x)
    nd = len(shape)
    axes = tuple(sorted(a % nd for a in (axis if isinstance(axis, list) else [axis])))
    bshape = [shape[a] if a in axes else 1 for a in range(nd)]
    ws = [rng.standard_normal(w.shape) for w in ln.weights]
    ln.set_weights(ws)
    gamma = ws[0].reshape(bshape)
    beta = None if rms else ws[1].reshape(bshape)
    assert len(ln.weights) == (1 if rms else 2)
    y = ln(x, training=True)
    np.testing.assert_allclose(y, ln_ref(x, gamma, beta, axes, 1e-3, rms), rtol=1e-12,
                               atol=1e-12)
    w = rng.standard_normal(shape)

    def loss():
        return float((ln(x, training=True) * w).sum())
    loss()
    dx = ln.backward(w)
    grads = [g.copy() for g in ln.gradients]
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-7)
    for g, wt in zip(grads, ln.weights):
        np.testing.assert_allclose(g, numeric_gradient(loss, wt), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [lambda: layers.LayerNormalization(),
                                  lambda: layers.LayerNormalization(axis=[1, 2]),
                                  lambda: layers.BatchNormalization(),
                                  lambda: layers.BatchNormalization(axis=1),
                                  lambda: layers.GroupNormalization(groups=2),
                                  lambda: layers.UnitNormalization()])
def test_eager_calls_return_their_own_arrays(rng, make):
    layer = make()
    x1 = rng.standard_normal((3, 4, 6)).astype(np.float32)
    x2 = rng.standard_normal((3, 4, 6)).astype(np.float32)
    for training in (False, True):
        a = layer(x1, training=training)
        keep = np.array(a)
        layer(x2, training=training)
        np.testing.assert_array_equal(a, keep)


def test_layer_normalization_config_and_float32(rng):
    ln = layers.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False, name="lnx")
    cfg = ln.get_config()
    assert layers.LayerNormalization.from_config(cfg).get_config() == cfg
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    y = ln(x)
    assert y.dtype == np.float32 and [w.shape for w in ln.weights] == [(4, 5)]
    np.testing.assert_allclose(y, ln_ref(x, None, None, (1, 2), 1e-5), rtol=1e-5, atol=1e-5)


# ================================================================= PyTorch equivalence
def test_batch_norm_matches_torch_batchnorm2d(rng):
    torch = pytest.importorskip("torch")
    N, H, W, C = 4, 5, 3, 7
    x = rng.standard_normal((N, H, W, C)).astype(np.float32) * 2 + 1
    gamma = rng.standard_normal(C).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    tbn = torch.nn.BatchNorm2d(C, eps=1e-3, momentum=1 - 0.99)   # PyTorch's momentum = 1 - Keras'
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(gamma))
        tbn.bias.copy_(torch.from_numpy(beta))
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    ty = tbn(tx)
    ty.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))

    bn = layers.BatchNormalization()
    bn(x)
    bn.set_weights([gamma, beta, np.zeros(C, np.float32), np.ones(C, np.float32)])
    y = bn(x, training=True)
    dx = bn.backward(dy)
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.gradients[0], tbn.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.gradients[1], tbn.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.moving_mean, tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    # PyTorch moves its running variance by the unbiased batch variance, Keras by the biased
    n = N * H * W
    var_b = x.reshape(-1, C).astype(np.float64).var(0)
    np.testing.assert_allclose(tbn.running_var.numpy(), 0.99 + 0.01 * var_b * n / (n - 1),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, 0.99 + 0.01 * var_b, rtol=1e-5)
    # inference on the same statistics
    tbn.eval()
    with torch.no_grad():
        tbn.running_var.copy_(torch.from_numpy(bn.moving_variance))
        ti = tbn(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(bn(x, training=False), ti, rtol=1e-4, atol=1e-4)


def test_layer_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.standard_normal((4, 6)).astype(np.float32)
    beta = rng.standard_normal((4, 6)).astype(np.float32)
    tln = torch.nn.LayerNorm((4, 6), eps=1e-3)
    with torch.no_grad():
        tln.weight.copy_(torch.from_numpy(gamma))
        tln.bias.copy_(torch.from_numpy(beta))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tln(tx)
    ty.backward(torch.from_numpy(dy))
    ln = layers.LayerNormalization(axis=[-2, -1])
    ln(x)
    ln.set_weights([gamma, beta])
    y = ln(x, training=True)
    dx = ln.backward(dy)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ln.gradients[0], tln.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ln.gradients[1], tln.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


# ================================================================= a small program
def test_conv_batchnorm_classifier_program(tmp_path, rng):
    """A Conv2D + BatchNormalization + ReLU classifier on random (learnable) data, with
    ReduceLROnPlateau and a ModelCheckpoint into a folder that does not exist yet."""
    from fastdl import callbacks
    fastdl.set_seed(3)
    n, classes = 96, 3
    y = rng.integers(0, classes, n)
    x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    x[np.arange(n), 2 * y + 1, 2 * y + 1, 0] += 4.0          # a class-dependent bright spot
    model = models.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(8, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    folder = tmp_path / "not" / "yet"
    assert not folder.exists()
    ckpt = str(folder / "best.keras")
    hist = model.fit(x, y, batch_size=16, epochs=8, validation_split=0.25, verbose=0,
                     callbacks=[callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5,
                                                            patience=1),
                                callbacks.ModelCheckpoint(ckpt, monitor="val_loss",
                                                          save_best_only=True)])
    losses = hist.history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert os.path.isfile(ckpt)
    back = models.load_model(ckpt)
    assert isinstance(back.layers[1], layers.BatchNormalization)
    assert back.evaluate(x, y, verbose=0)[0] < losses[0]


# ================================================================= Group / Unit normalization
def gn_ref(x, gamma, beta, groups, eps, axis=-1):
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    C = x.shape[-1]
    xg = x.reshape(x.shape[0], -1, groups, C // groups)
    xc = xg - xg.mean(axis=(1, 3), keepdims=True)
    xhat = (xc / np.sqrt((xc ** 2).mean(axis=(1, 3), keepdims=True) + eps)).reshape(x.shape)
    y = xhat * gamma + beta
    return np.moveaxis(y, -1, axis)


@pytest.mark.parametrize("groups,shape,axis", [(2, (3, 4, 5, 6), -1), (1, (2, 5, 3), -1),
                                               (-1, (2, 3, 4), -1), (3, (2, 3, 4, 5), 1),
                                               (1, (1, 1), -1)])
def test_group_normalization_matches_numpy_and_finite_differences(rng, groups, shape, axis):
    gn = layers.GroupNormalization(groups=groups, axis=axis, dtype="float64")
    x = rng.standard_normal(shape) * 2 + 0.5
    gn(x)
    C = shape[axis]
    gn.set_weights([rng.standard_normal(C), rng.standard_normal(C)])
    G = C if groups == -1 else groups
    y = gn(x, training=True)
    np.testing.assert_allclose(y, gn_ref(x, gn.weights[0], gn.weights[1], G, 1e-3, axis),
                               rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(shape)

    def loss():
        return float((gn(x, training=True) * w).sum())
    loss()
    dx = gn.backward(w)
    grads = [g.copy() for g in gn.gradients]
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-6)
    for g, wt in zip(grads, gn.weights):
        np.testing.assert_allclose(g, numeric_gradient(loss, wt), rtol=1e-6, atol=1e-6)


def test_group_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 5, 3, 6)).astype(np.float32)
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    tgn = torch.nn.GroupNorm(3, 6, eps=1e-3)
    with torch.no_grad():
        tgn.weight.copy_(torch.from_numpy(gamma))
        tgn.bias.copy_(torch.from_numpy(beta))
    ty = tgn(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    gn = layers.GroupNormalization(groups=3)
    gn(x)
    gn.set_weights([gamma, beta])
    np.testing.assert_allclose(gn(x), ty.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_group_and_unit_normalization_arguments_and_config(rng):
    with pytest.raises(ValueError, match="GroupNormalization.*groups"):
        layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="'gn_bad'.*multiple of groups"):
        layers.GroupNormalization(groups=4, name="gn_bad")(np.zeros((2, 6), np.float32))
    with pytest.raises(ValueError, match="more than the channels"):
        layers.GroupNormalization(groups=8)(np.zeros((2, 6), np.float32))
    with pytest.raises(ValueError, match="GroupNormalization.*epsilon"):
        layers.GroupNormalization(epsilon=0)
    with pytest.raises(TypeError, match="UnitNormalization.*axis"):
        layers.UnitNormalization(axis=1.5)
    with pytest.raises(ValueError, match="out of range"):
        layers.UnitNormalization(axis=3)(np.zeros((2, 6), np.float32))
    gn = layers.GroupNormalization(groups=2, axis=1, epsilon=1e-4, center=False, name="gnx")
    cfg = gn.get_config()
    assert layers.GroupNormalization.from_config(cfg).get_config() == cfg
    un = layers.UnitNormalization(axis=[1, 2], name="unx")
    cfg = un.get_config()
    assert cfg["axis"] == [1, 2]
    assert layers.UnitNormalization.from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_unit_normalization_matches_numpy_and_finite_differences(rng, axis):
    un = layers.UnitNormalization(axis=axis, dtype="float64")
    x = rng.standard_normal((3, 4, 5))
    axes = (2,) if axis == -1 else (1, 2)
    y = un(x, training=True)
    np.testing.assert_allclose(y, x / np.sqrt((x ** 2).sum(axes, keepdims=True)), rtol=1e-12)
    np.testing.assert_allclose((y ** 2).sum(axes), 1.0, rtol=1e-12)
    w = rng.standard_normal(x.shape)

    def loss():
        return float((un(x, training=True) * w).sum())
    loss()
    dx = un.backward(w)
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-7)
    # an all-zero row stays zero (Keras clamps 1 / norm at 1e12), with a finite gradient
    z = np.zeros((2, 3))
    z[1] = [3.0, 4.0, 0.0]
    un2 = layers.UnitNormalization(dtype="float64")
    out = un2(z, training=True)
    np.testing.assert_allclose(out, [[0, 0, 0], [0.6, 0.8, 0]], atol=1e-15)
    assert np.isfinite(un2.backward(np.ones((2, 3)))).all()


@pytest.mark.parametrize("make", [lambda **kw: layers.BatchNormalization(**kw),
                                  lambda **kw: layers.LayerNormalization(**kw),
                                  lambda **kw: layers.GroupNormalization(groups=2, **kw)])
def test_gamma_and_beta_constraints_hold_after_a_step(make):
    import fastdl as keras
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 4)).astype(np.float32) * 5
    norm = make(gamma_constraint=keras.constraints.MaxNorm(1.1), beta_constraint="non_neg")
    m = keras.Sequential([keras.Input((4,)), norm])
    m.compile(keras.optimizers.SGD(0.5), loss="mse")
    m.fit(x, y, batch_size=16, epochs=2, verbose=0)
    gamma, beta = [np.asarray(w) for w in norm.trainable_weights]
    assert np.linalg.norm(gamma) <= 1.1 + 1e-5 and np.all(beta >= 0)
    cfg = norm.get_config()
    assert cfg["gamma_constraint"]["class_name"] == "MaxNorm"
    assert cfg["beta_constraint"]["class_name"] == "NonNeg"
    assert type(norm).from_config(cfg).beta_constraint is not None
