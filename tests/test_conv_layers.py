"""Conv1D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D: their ops and layers
against plain NumPy references (forward and backward), float64 finite differences,
every SIMD level of the depthwise kernel against generic, PyTorch on the same
weights (skipped without torch), argument checks, config round trips, and the
layers in Sequential/functional models, fit and GradientTape."""
import numpy as np
import pytest

import fastdl as keras
from fastdl import layers, ops
from helpers import numeric_gradient, run_at_simd_levels
import ref_conv
from ref_conv import depthwise_conv2d as ref_depthwise
from ref_conv import depthwise_conv2d_backward as ref_depthwise_backward


# ================================================================= references
def transpose_length(n, k, s, padding, op):
    if op is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    return (n - 1) * s + k - 2 * (0 if padding == "valid" else k // 2) + op


def keras_crop(k, s, padding, op):
    """Where Keras' transposed-convolution output starts in the full one (the padding
    rule of its JAX/PyTorch backends; TensorFlow's 'SAME' gradient agrees where it applies)."""
    if padding == "valid":
        return 0
    pad_len = s + k - 2 if op is None else k + k % 2 - 2 + op
    return k - 1 - min(pad_len // 2 + pad_len % 2, k - 1)


def ref_transpose(x, w, b=None, strides=1, padding="valid", output_padding=None):
    """Scatter form: input pixel (i, j) adds x[i,j] . w[kh,kw]^T at (i*s + kh, j*s + kw)
    of the full output, then Keras' window of it (keras_crop)."""
    N, H, W, C = x.shape
    KH, KW, F, _ = w.shape
    sh, sw = ref_conv.pair(strides)
    op = (None, None) if output_padding is None else ref_conv.pair(output_padding)
    OH = transpose_length(H, KH, sh, padding, op[0])
    OW = transpose_length(W, KW, sw, padding, op[1])
    pt, pl = keras_crop(KH, sh, padding, op[0]), keras_crop(KW, sw, padding, op[1])
    full = np.zeros((N, max((H - 1) * sh + KH, pt + OH), max((W - 1) * sw + KW, pl + OW), F))
    for i in range(H):
        for j in range(W):
            full[:, i * sh:i * sh + KH, j * sw:j * sw + KW, :] += np.einsum(
                "nc,hwfc->nhwf", x[:, i, j, :].astype(np.float64), w.astype(np.float64))
    y = full[:, pt:pt + OH, pl:pl + OW, :]
    return y + (0 if b is None else b)


def _fd_check(f, arrays, analytic, rtol=1e-6, atol=1e-8):
    for a, g in zip(arrays, analytic):
        np.testing.assert_allclose(g, numeric_gradient(f, a), rtol=rtol, atol=atol)


# ================================================================= depthwise op
DW_CASES = [
    # (N, H, W, C, KH, KW, M, strides, padding, dilation)
    (2, 7, 6, 5, 3, 3, 1, 1, "valid", 1),
    (2, 7, 6, 5, 3, 3, 1, 1, "same", 1),
    (1, 9, 8, 3, 3, 2, 2, 2, "same", 1),
    (2, 6, 7, 4, 2, 3, 3, (2, 1), ((1, 0), (2, 1)), (1, 2)),
    (1, 5, 5, 1, 5, 5, 1, 1, "valid", 1),       # one channel, kernel = image
    (3, 4, 5, 17, 1, 1, 2, 1, "valid", 1),      # 1x1, prime channels
    (1, 6, 5, 45, 3, 3, 1, 1, "same", 1),       # register blocks of 32 and 8, then a tail
    (2, 9, 11, 16, 3, 3, 1, (1, 2), "same", (2, 1)),  # blocks of 4 pixels, edges one by one
    (1, 6, 9, 8, 2, 3, 1, 1, "valid", 1),
    (1, 11, 13, 7, 3, 3, 1, 3, "same", 2),
    (0, 5, 5, 2, 3, 3, 1, 1, "same", 1),        # empty batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", DW_CASES)
def test_depthwise_op_matches_reference(rng, dtype, case):
    N, H, W, C, KH, KW, M, s, p, d = case
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((KH, KW, C, M)).astype(dtype)
    b = rng.standard_normal(C * M).astype(dtype)
    kw = dict(strides=s, padding=p, dilation_rate=d)
    y = ops.depthwise_conv2d(x, w, b, **kw)
    want = ref_depthwise(x, w, b, s, p, d)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, **tol)
    yr = ops.depthwise_conv2d(x, w, b, activation="relu", **kw)
    np.testing.assert_allclose(yr, np.maximum(want, 0), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.depthwise_conv2d_backward(dy, x, w, **kw)
    rx, rw, rb = ref_depthwise_backward(dy, x, w, s, p, d)
    np.testing.assert_allclose(dx, rx, **tol)
    np.testing.assert_allclose(dw, rw, **tol)
    np.testing.assert_allclose(db, rb, **tol)
    none, dw2, _ = ops.depthwise_conv2d_backward(dy, x, w, need_dx=False, **kw)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)


def test_depthwise_op_finite_differences(rng):
    x = rng.standard_normal((2, 5, 4, 3))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(6)
    kw = dict(strides=(2, 1), padding="same", dilation_rate=(1, 2))
    dy = rng.standard_normal(ops.depthwise_conv2d(x, w, b, **kw).shape)
    f = lambda: float((ops.depthwise_conv2d(x, w, b, **kw) * dy).sum())  # noqa: E731
    dx, dw, db = ops.depthwise_conv2d_backward(dy, x, w, **kw)
    _fd_check(f, (x, w, b), (dx, dw, db))


def test_depthwise_op_bad_arguments(rng):
    x = rng.standard_normal((1, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="channels"):
        ops.depthwise_conv2d(x, w[:, :, :2])
    with pytest.raises(ValueError, match="4-D"):
        ops.depthwise_conv2d(x[0], w)
    with pytest.raises(ValueError, match="b must have shape"):
        ops.depthwise_conv2d(x, w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.depthwise_conv2d(x, np.zeros((7, 7, 3, 1), np.float32))
    with pytest.raises(ValueError, match="dy must have the output shape"):
        ops.depthwise_conv2d_backward(np.zeros((1, 5, 5, 3), np.float32), x, w)
    with pytest.raises((TypeError, ValueError)):
        ops.depthwise_conv2d(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="linear"):
        ops.depthwise_conv2d(x, w, activation="tanh")


_LEVEL_SCRIPT = r"""
import sys, numpy as np
from fastdl import ops
rng = np.random.default_rng(5)
out = {}
for i, (xs, ws, s, p, d) in enumerate([((3, 9, 10, 37), (3, 3, 37, 1), 1, "same", 1),
                                       ((2, 8, 7, 16), (3, 3, 16, 1), 2, "valid", 1),
                                       ((2, 6, 6, 5), (2, 3, 5, 3), 1, ((1, 0), (2, 1)), (2, 1)),
                                       ((1, 7, 9, 64), (5, 5, 64, 2), (1, 2), "same", 1)]):
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[2] * ws[3]).astype(dt)
        y = ops.depthwise_conv2d(x, w, b, strides=s, padding=p, dilation_rate=d, activation="relu")
        dy = rng.standard_normal(y.shape).astype(dt)
        dx, dw, db = ops.depthwise_conv2d_backward(dy, x, w, strides=s, padding=p,
                                                   dilation_rate=d)
        for name, v in (("y", y), ("dx", dx), ("dw", dw), ("db", db)):
            out[f"{name}{i}{dt.__name__}"] = v
np.savez(sys.argv[1], **out)
"""


def test_depthwise_simd_levels_match_generic(tmp_path):
    results = run_at_simd_levels(tmp_path, _LEVEL_SCRIPT)
    base = results["generic"]
    for level, res in results.items():
        assert res.keys() == base.keys()
        for k, v in res.items():
            tol = dict(rtol=1e-4, atol=1e-4) if "float32" in k else dict(rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(v, base[k], err_msg=f"{level} {k}", **tol)


def test_depthwise_results_do_not_depend_on_threads(rng):
    x = rng.standard_normal((8, 12, 12, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 2)).astype(np.float32)
    dy = rng.standard_normal((8, 12, 12, 32)).astype(np.float32)
    old = keras.get_num_threads()
    try:
        keras.set_num_threads(1)
        one = ops.depthwise_conv2d_backward(dy, x, w, padding="same")
        keras.set_num_threads(2)
        two = ops.depthwise_conv2d_backward(dy, x, w, padding="same")
    finally:
        keras.set_num_threads(old)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_allclose(one[1], two[1], rtol=1e-5, atol=1e-4)


# ================================================================= transposed convolution op
TR_CASES = [
    # (N, H, W, C_in, KH, KW, F, strides, padding, output_padding)
    (2, 4, 3, 5, 3, 3, 4, 2, "same", None),
    (2, 4, 3, 5, 3, 3, 4, 2, "valid", None),
    (1, 5, 4, 3, 4, 4, 2, 2, "same", None),       # even kernel
    (2, 3, 5, 2, 3, 2, 3, (2, 3), "valid", (1, 2)),
    (1, 3, 3, 3, 3, 3, 2, 3, "same", 1),
    (1, 4, 4, 2, 2, 2, 3, 3, "valid", None),      # kernel smaller than the stride
    (2, 5, 5, 3, 3, 3, 7, 1, "same", None),       # stride 1
    (1, 3, 3, 2, 2, 2, 2, (3, 2), "same", (0, 1)),  # even kernel, output_padding 0 and 1
    (1, 4, 2, 2, 4, 1, 3, 2, "same", (1, 0)),
    (1, 1, 1, 1, 1, 1, 1, 1, "valid", None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", TR_CASES)
def test_conv2d_transpose_op_matches_reference(rng, dtype, case):
    N, H, W, C, KH, KW, F, s, p, op = case
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    w = rng.standard_normal((KH, KW, F, C)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    kw = dict(strides=s, padding=p, output_padding=op)
    y = ops.conv2d_transpose(x, w, b, **kw)
    want = ref_transpose(x, w, b, s, p, op)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert y.shape == want.shape and y.dtype == dtype
    np.testing.assert_allclose(y, want, **tol)
    np.testing.assert_allclose(ops.conv2d_transpose(x, w, b, activation="relu", **kw),
                               np.maximum(want, 0), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.conv2d_transpose_backward(dy, x, w, **kw)
    # the transposed convolution is linear in x and in w: <dy, T(x, w)> is the objective
    xd, wd = x.astype(np.float64), w.astype(np.float64)
    f = lambda: float((ref_transpose(xd, wd, None, s, p, op) * dy).sum())  # noqa: E731
    if N * H * W * C <= 60:
        _fd_check(f, (xd, wd), (dx, dw), rtol=1e-4 if dtype == np.float32 else 1e-6,
                  atol=1e-4 if dtype == np.float32 else 1e-8)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), **tol)


def test_conv2d_transpose_finite_differences_float64(rng):
    x = rng.standard_normal((2, 3, 4, 2))
    w = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal(3)
    kw = dict(strides=2, padding="same", output_padding=1)
    dy = rng.standard_normal(ops.conv2d_transpose(x, w, b, **kw).shape)
    f = lambda: float((ops.conv2d_transpose(x, w, b, **kw) * dy).sum())  # noqa: E731
    _fd_check(f, (x, w, b), ops.conv2d_transpose_backward(dy, x, w, **kw))


def test_conv2d_backward_need_dw_false_is_dx_only(rng):
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    for s, p in ((1, "same"), (2, "valid"), (1, "valid")):
        dy = rng.standard_normal(ops.conv2d(x, w, strides=s, padding=p).shape)
        for algo in ("direct", "im2col"):
            full = ops.conv2d_backward(dy, x, w, strides=s, padding=p, algorithm=algo)
            dx, dw, db = ops.conv2d_backward(dy, np.full_like(x, np.nan), w, strides=s,
                                             padding=p, need_dw=False, algorithm=algo)
            assert dw is None and db is None
            np.testing.assert_allclose(dx, full[0], rtol=1e-12, atol=1e-12)


def test_conv2d_transpose_op_bad_arguments(rng):
    x = rng.standard_normal((1, 3, 3, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="output_padding"):
        ops.conv2d_transpose(x, w, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="padding"):
        ops.conv2d_transpose(x, w, padding="causal")
    with pytest.raises(ValueError, match="channels"):
        ops.conv2d_transpose(x, w[..., :1])
    with pytest.raises(ValueError, match="4-D"):
        ops.conv2d_transpose(x[0], w)
    with pytest.raises(ValueError, match="dy must have the output shape"):
        ops.conv2d_transpose_backward(np.zeros((1, 3, 3, 4), np.float32), x, w, strides=2)


# ================================================================= layers: forward and backward
def _layer_grads(layer, x, dy):
    """(y, dx, weight gradients) of one built-in layer call, via its fused backward."""
    y = layer(x)
    dx = layer.backward(dy)
    return y, dx, [np.array(g) for g in layer._grads]


def _set_weights(layer, x, rng):
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape).astype(x.dtype) for w in layer.weights])


def test_conv1d_layer_matches_numpy(rng):
    for padding, s, d in (("valid", 1, 1), ("same", 2, 1), ("causal", 1, 2), ("causal", 3, 1),
                          ("same", 1, 3)):
        x = rng.standard_normal((3, 11, 4))
        layer = layers.Conv1D(5, 3, strides=s, padding=padding, dilation_rate=d, dtype="float64")
        _set_weights(layer, x, rng)
        w, b = layer.get_weights()
        if padding == "causal":
            xp = np.pad(x, ((0, 0), (2 * d, 0), (0, 0)))
            want = ref_conv.conv2d(xp[:, None], w[None], b, (1, s), "valid", (1, d))[:, 0]
        else:
            want = ref_conv.conv2d(x[:, None], w[None], b, (1, s), padding, (1, d))[:, 0]
        y = layer(x)
        assert y.shape == want.shape
        assert layer.compute_output_shape((None, 11, 4)) == (None,) + want.shape[1:]
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        layer(x)
        dx = layer.backward(dy)
        f = lambda: float((layer.call(x) * dy).sum())  # noqa: E731
        gw, gb = [np.array(g) for g in layer._grads]
        _fd_check(f, (x,), (dx,))
        wk, bk = layer.weights
        _fd_check(f, (wk, bk), (gw, gb))


def test_conv1d_output_shapes():
    for padding, s, d, n, want in (("valid", 1, 1, 10, 8), ("same", 2, 1, 10, 5),
                                   ("causal", 1, 2, 10, 10), ("valid", 2, 2, 9, 3)):
        layer = layers.Conv1D(2, 3, strides=s, padding=padding, dilation_rate=d)
        assert layer.compute_output_shape((None, n, 3)) == (None, want, 2)
        assert layer(np.zeros((1, n, 3), np.float32)).shape == (1, want, 2)


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
def test_conv2d_transpose_layer_fd(rng, activation):
    x = rng.standard_normal((2, 3, 3, 2))
    layer = layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                                   activation=activation, dtype="float64")
    _set_weights(layer, x, rng)
    w, b = layer.get_weights()
    from fastdl import activations
    want = activations.get(activation).forward(ref_transpose(x, w, b, 2, "same", 1))
    y, dx, (gw, gb) = _layer_grads(layer, x, dy := rng.standard_normal((2, 6, 6, 3)))
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    f = lambda: float((layer.call(x) * dy).sum())  # noqa: E731
    _fd_check(f, (x, *layer.weights), (dx, gw, gb))


@pytest.mark.parametrize("m", [1, 2])
def test_depthwise_layer_fd(rng, m):
    x = rng.standard_normal((2, 5, 4, 3))
    layer = layers.DepthwiseConv2D(3, strides=(1, 2), padding="same", depth_multiplier=m,
                                   activation="relu", dtype="float64")
    _set_weights(layer, x, rng)
    w, b = layer.get_weights()
    want = np.maximum(ref_depthwise(x, w, b, (1, 2), "same"), 0)
    y, dx, grads = _layer_grads(layer, x, dy := rng.standard_normal(want.shape))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    assert layer.compute_output_shape((None, 5, 4, 3)) == (None,) + want.shape[1:]
    f = lambda: float((layer.call(x) * dy).sum())  # noqa: E731
    _fd_check(f, (x, *layer.weights), (dx, *grads))


def test_separable_layer_fd(rng):
    x = rng.standard_normal((2, 6, 5, 3))
    layer = layers.SeparableConv2D(4, (3, 2), strides=2, depth_multiplier=2,
                                   activation="tanh", dtype="float64")
    _set_weights(layer, x, rng)
    dk, pk, b = layer.get_weights()
    assert dk.shape == (3, 2, 3, 2) and pk.shape == (1, 1, 6, 4) and b.shape == (4,)
    want = np.tanh(ref_conv.conv2d(ref_depthwise(x, dk, None, 2), pk, b))
    y, dx, grads = _layer_grads(layer, x, dy := rng.standard_normal(want.shape))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    assert layer.compute_output_shape((None, 6, 5, 3)) == (None,) + want.shape[1:]
    f = lambda: float((layer.call(x) * dy).sum())  # noqa: E731
    _fd_check(f, (x, *layer.weights), (dx, *grads))


# ================================================================= layers: PyTorch equivalence
def test_conv2d_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for s, p, op, k in ((2, "valid", None, 3), (2, "valid", 1, 3), (2, "same", None, 3),
                        (3, "same", 2, 5), (2, "same", None, 4)):
        x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
        layer = layers.Conv2DTranspose(6, k, strides=s, padding=p, output_padding=op)
        layer(x)
        w = layer.get_weights()[0]
        b = rng.standard_normal(6).astype(np.float32)
        layer.set_weights([w, b])
        y = layer(x)
        # torch's full transposed convolution, then Keras' window of it (output_padding
        # rows past the full output hold the bias only), then the bias
        t = torch.nn.ConvTranspose2d(3, 6, k, stride=s, bias=False)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(w.transpose(3, 2, 0, 1)))
        bt = torch.from_numpy(b).requires_grad_(True)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_(True)
        full = t(xt)
        OH, OW = y.shape[1:3]
        pt = pl = keras_crop(k, s, p, op)
        full = torch.nn.functional.pad(full, (0, max(pl + OW - full.shape[3], 0),
                                              0, max(pt + OH - full.shape[2], 0)))
        want = full[:, :, pt:pt + OH, pl:pl + OW] + bt[None, :, None, None]
        np.testing.assert_allclose(y, want.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4,
                                   atol=1e-5)
        if p == "valid":  # the same layer as torch's padding=0, output_padding=op
            t2 = torch.nn.ConvTranspose2d(3, 6, k, stride=s, output_padding=op or 0)
            with torch.no_grad():
                t2.weight.copy_(t.weight)
                t2.bias.copy_(bt)
            np.testing.assert_allclose(y, t2(xt).detach().numpy().transpose(0, 2, 3, 1),
                                       rtol=1e-4, atol=1e-5)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        layer(x)
        dx = layer.backward(dy)
        want.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(layer._grads[0], t.weight.grad.numpy().transpose(2, 3, 1, 0),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer._grads[1], bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv1d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    for padding, s, d in (("valid", 1, 1), ("valid", 2, 1), ("same", 1, 2), ("causal", 1, 3)):
        x = rng.standard_normal((3, 13, 4)).astype(np.float32)
        layer = layers.Conv1D(5, 3, strides=s, padding=padding, dilation_rate=d)
        y = layer(x)
        w, b = layer.get_weights()
        t = torch.nn.Conv1d(4, 5, 3, stride=s, dilation=d)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(w.transpose(2, 1, 0)))
            t.bias.copy_(torch.from_numpy(b))
        xt = torch.from_numpy(x.transpose(0, 2, 1)).requires_grad_(True)
        lo = {"valid": 0, "causal": 2 * d, "same": d}[padding]  # 'same' with k=3, s=1: (d, d)
        hi = {"valid": 0, "causal": 0, "same": d}[padding]
        out = t(torch.nn.functional.pad(xt, (lo, hi)))
        np.testing.assert_allclose(y, out.detach().numpy().transpose(0, 2, 1), rtol=1e-4,
                                   atol=1e-5)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        layer(x)
        dx = layer.backward(dy)
        out.backward(torch.from_numpy(dy.transpose(0, 2, 1)))
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer._grads[0], t.weight.grad.numpy().transpose(2, 1, 0),
                                   rtol=1e-4, atol=1e-4)


def test_depthwise_matches_torch_groups():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    for m, s, d in ((1, 1, 1), (2, 2, 1), (3, 1, 2)):
        x = rng.standard_normal((2, 9, 8, 4)).astype(np.float32)
        layer = layers.DepthwiseConv2D(3, strides=s, dilation_rate=d, depth_multiplier=m)
        y = layer(x)
        w, b = layer.get_weights()
        t = torch.nn.Conv2d(4, 4 * m, 3, stride=s, dilation=d, groups=4)
        with torch.no_grad():  # torch: (C*M, 1, KH, KW), output channel c*M + m
            t.weight.copy_(torch.from_numpy(w.transpose(2, 3, 0, 1).reshape(4 * m, 1, 3, 3)))
            t.bias.copy_(torch.from_numpy(b))
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_(True)
        out = t(xt)
        np.testing.assert_allclose(y, out.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4,
                                   atol=1e-5)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        layer(x)
        dx = layer.backward(dy)
        out.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4,
                                   atol=1e-4)
        tw = t.weight.grad.numpy().reshape(4, m, 3, 3).transpose(2, 3, 0, 1)
        np.testing.assert_allclose(layer._grads[0], tw, rtol=1e-4, atol=1e-4)


# ================================================================= argument checks and config
@pytest.mark.parametrize("make,match", [
    (lambda: layers.Conv1D(-1, 3), "filters"),
    (lambda: layers.Conv1D(2, 0), "kernel_size"),
    (lambda: layers.Conv1D(2, 3, padding="full"), "padding"),
    (lambda: layers.Conv1D(2, 3, strides=-2), "strides"),
    (lambda: layers.Conv1D(2, 3, groups=2), "groups"),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: layers.Conv2DTranspose(2, 3, output_padding=(0, 1)), "output_padding"),
    (lambda: layers.Conv2DTranspose(2, 3, output_padding=-1), "output_padding"),
    (lambda: layers.Conv2DTranspose(2, 3, padding="causal"), "padding"),
    (lambda: layers.Conv2DTranspose(2, 3, dilation_rate=2), "dilation_rate"),
    (lambda: layers.Conv2DTranspose(0, 3), "filters"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier"),
    (lambda: layers.DepthwiseConv2D((3, -1)), "kernel_size"),
    (lambda: layers.DepthwiseConv2D(3, padding="full"), "padding"),
    (lambda: layers.SeparableConv2D(4, 3, strides=(1, 0)), "strides"),
    (lambda: layers.SeparableConv2D(4, 3, data_format="channels_first"), "data_format"),
    (lambda: layers.Conv2D(-3, 3), "filters"),
])
def test_construction_errors_name_the_layer(make, match):
    with pytest.raises(ValueError, match=match) as e:
        make()
    assert any(n in str(e.value) for n in ("Conv1D", "Conv2DTranspose", "DepthwiseConv2D",
                                           "SeparableConv2D", "Conv2D"))


@pytest.mark.parametrize("layer,shape", [
    (layers.Conv1D(2, 3), (None, 4, 5, 3)),
    (layers.Conv2DTranspose(2, 3), (None, 5, 3)),
    (layers.DepthwiseConv2D(3), (None, 5, 3)),
    (layers.SeparableConv2D(2, 3), (None, 5, 5, 5, 3)),
])
def test_build_checks_the_input_rank(layer, shape):
    with pytest.raises(ValueError, match=f"{type(layer).__name__}.*-D inputs"):
        layer.build(shape)


@pytest.mark.parametrize("layer,shape", [
    (layers.Conv1D(3, 2, strides=2, padding="causal", dilation_rate=1, activation="relu",
                   use_bias=False, kernel_regularizer="l2"), (2, 7, 3)),
    (layers.Conv2DTranspose(3, (3, 2), strides=(2, 3), padding="same", output_padding=(1, 0),
                            activation="sigmoid", kernel_initializer="he_normal",
                            bias_regularizer="l1"), (2, 4, 3, 2)),
    (layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dilation_rate=2,
                            depthwise_regularizer="l2", depthwise_initializer="ones"),
     (2, 6, 6, 3)),
    (layers.SeparableConv2D(5, 3, strides=2, depth_multiplier=3, use_bias=False,
                            pointwise_regularizer="l1", pointwise_initializer="zeros"),
     (2, 7, 7, 2)),
])
def test_config_round_trip(rng, layer, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    cfg = layer.get_config()
    import json
    json.dumps(cfg)
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again(x), y, rtol=1e-6)
    assert len(layer.losses) == len(again.losses) > 0 or not again.losses
    assert layers.deserialize(layers.serialize(layer)).get_config() == cfg


def test_constraints_apply_after_each_step_and_round_trip(rng):
    x = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
    made = [layers.Conv2DTranspose(2, 3, padding="same", kernel_constraint="non_neg",
                                   bias_constraint="non_neg"),
            layers.DepthwiseConv2D(3, padding="same", depthwise_constraint="non_neg"),
            layers.SeparableConv2D(2, 3, padding="same", depthwise_constraint="non_neg",
                                   pointwise_constraint=keras.constraints.MaxNorm(
                                       0.5, axis=[0, 1, 2]))]
    model = keras.Sequential([keras.Input((6, 6, 2)), *made])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    model.fit(x, -np.abs(x), epochs=2, batch_size=8, verbose=0)
    for w in (*made[0].get_weights(), made[1].get_weights()[0], made[2].get_weights()[0]):
        assert np.all(w >= 0)
    norms = np.sqrt((made[2].get_weights()[1].astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
    assert np.all(norms <= 0.5 + 1e-5)
    for layer in made:
        cfg = layer.get_config()
        assert any(k.endswith("_constraint") for k in cfg)
        assert type(layer).from_config(cfg).get_config() == cfg
    conv1d = layers.Conv1D(2, 3, kernel_constraint="non_neg")
    assert "kernel_constraint" in conv1d.get_config()


def test_keras_aliases_and_names():
    assert layers.Convolution1D is layers.Conv1D
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose
    assert layers.SeparableConvolution2D is layers.SeparableConv2D
    assert layers.Conv2DTranspose(2, 3).name.startswith("conv2d_transpose")
    assert layers.DepthwiseConv2D(3).name.startswith("depthwise_conv2d")


def test_regularizers_add_losses(rng):
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer = layers.SeparableConv2D(2, 3, depthwise_regularizer=keras.regularizers.l2(0.1),
                                   pointwise_regularizer=keras.regularizers.l1(0.2))
    layer(x)
    dk, pk, _ = layer.get_weights()
    want = 0.1 * (dk.astype(np.float64) ** 2).sum() + 0.2 * np.abs(pk).sum()
    assert float(sum(np.sum(v) for v in layer.losses)) == pytest.approx(want, rel=1e-5)


# ================================================================= models, fit, GradientTape
def test_layers_train_in_sequential_fit_and_functional(rng):
    x = rng.random((32, 10, 3)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 15).astype(np.float32)[:, None]
    seq = keras.Sequential([keras.Input((10, 3)), layers.Conv1D(4, 3, padding="causal",
                                                                activation="relu"),
                            layers.Conv1D(4, 3, strides=2, activation="relu"),
                            layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    seq.compile("adam", "binary_crossentropy")
    h = seq.fit(x, y, epochs=4, batch_size=8, verbose=0)
    assert np.all(np.isfinite(h.history["loss"]))

    img = rng.random((16, 8, 8, 3)).astype(np.float32)
    inp = keras.Input((8, 8, 3))
    a = layers.DepthwiseConv2D(3, padding="same", activation="relu")(inp)
    b = layers.SeparableConv2D(4, 3, strides=2, padding="same")(a)
    c = layers.Conv2DTranspose(3, 3, strides=2, padding="same")(b)
    model = keras.Model(inp, c)
    assert model.output_shape == (None, 8, 8, 3)
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    before = model.evaluate(img, img, verbose=0)
    model.fit(img, img, epochs=10, batch_size=8, verbose=0)
    assert model.evaluate(img, img, verbose=0) < before


def test_layers_under_gradient_tape_match_fused_backward(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    for layer in (layers.Conv2DTranspose(2, 3, strides=2, padding="same", activation="sigmoid"),
                  layers.DepthwiseConv2D(3, depth_multiplier=2, activation="tanh"),
                  layers.SeparableConv2D(3, 3, activation="relu")):
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        with keras.GradientTape() as tape:
            xv = keras.ops.convert_to_tensor(x)
            tape.watch(xv)
            out = layer(xv)
            loss = keras.ops.sum(out * dy)
        grads = tape.gradient(loss, [xv, *layer.trainable_weights])
        layer(x)
        dx = layer.backward(dy)
        np.testing.assert_allclose(np.asarray(grads[0]), dx, rtol=1e-5, atol=1e-5)
        for g, w in zip(grads[1:], layer._grads):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5)

    x1 = rng.standard_normal((2, 7, 3)).astype(np.float32)
    conv = layers.Conv1D(2, 3, padding="same")
    with keras.GradientTape() as tape:
        loss = keras.ops.sum(conv(x1) ** 2)
    gw, gb = tape.gradient(loss, conv.trainable_weights)
    y = conv(x1)
    conv.backward(2 * y)
    np.testing.assert_allclose(np.asarray(gw), conv._grads[0], rtol=1e-5, atol=1e-5)


def test_denoising_autoencoder_example_smoke():
    # keras-io "Convolutional autoencoder for image denoising", --smoke sizes: Conv2D +
    # MaxPooling2D encoder, Conv2DTranspose(strides=2) decoder, sigmoid output,
    # binary cross-entropy, noisy inputs -> clean targets.
    keras.set_seed(0)
    rng = np.random.default_rng(0)
    n, size = 64, 12
    yy, xx = np.mgrid[:size, :size]
    clean = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):  # random discs: something with structure to reconstruct
        cy, cx, r = rng.uniform(3, size - 3), rng.uniform(3, size - 3), rng.uniform(2, 4)
        clean[i, ..., 0] = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)
    noisy = np.clip(clean + 0.4 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)

    inp = layers.Input(shape=(size, size, 1))
    h = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(inp)
    h = layers.MaxPooling2D((2, 2), padding="same")(h)
    h = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(h)
    h = layers.MaxPooling2D((2, 2), padding="same")(h)
    h = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(h)
    h = layers.Conv2DTranspose(8, (3, 3), strides=2, activation="relu", padding="same")(h)
    out = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(h)
    autoencoder = keras.Model(inp, out)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    first = autoencoder.evaluate(noisy, clean, verbose=0)
    hist = autoencoder.fit(noisy, clean, epochs=20, batch_size=8, shuffle=True,
                           validation_data=(noisy[:16], clean[:16]), verbose=0)
    assert hist.history["loss"][-1] < 0.5 * first
    denoised = autoencoder.predict(noisy, verbose=0)
    assert denoised.shape == noisy.shape
    assert np.all((denoised > 0) & (denoised < 1))

    seq = keras.Sequential([keras.Input((size, size, 1)),
                            layers.Conv2D(8, 3, activation="relu", padding="same"),
                            layers.MaxPooling2D(2),
                            layers.Conv2DTranspose(8, 3, strides=2, activation="relu",
                                                   padding="same"),
                            layers.Conv2D(1, 3, activation="sigmoid", padding="same")])
    seq.compile(optimizer="adam", loss="binary_crossentropy")   # the fused sigmoid + BCE path
    h2 = seq.fit(noisy, clean, epochs=20, batch_size=8, verbose=0)
    assert h2.history["loss"][-1] < 0.5 * h2.history["loss"][0]


def test_bench_suite_runs_on_tiny_layers(monkeypatch):
    import types
    from bench import conv_layers
    monkeypatch.setattr(conv_layers, "CASES", [
        ("tiny transpose", (2, 3, 3, 4), lambda: layers.Conv2DTranspose(2, 3, strides=2,
                                                                        padding="same"),
         lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
         conv_layers.CASES[0][4], 1),
        ("tiny conv1d", (2, 9, 3), lambda: layers.Conv1D(2, 3), lambda nn: nn.Conv1d(3, 2, 3),
         conv_layers.CASES[1][4], 1),
        ("tiny depthwise", (2, 5, 5, 3), lambda: layers.DepthwiseConv2D(3, padding="same"),
         lambda nn: nn.Conv2d(3, 3, 3, padding=1, groups=3), conv_layers.CASES[2][4], 1)])
    calls = []

    def once(fns, repeat=7):
        for fn in fns:
            fn()
            calls.append(fn)
        return [1e-3] * len(fns)

    monkeypatch.setattr(conv_layers, "side_by_side", once)
    (table,) = conv_layers.run(types.SimpleNamespace(thread_list=[1], quick=True))
    assert [r["pass"] for r in table.rows] == ["fwd", "bwd", "fwd+bwd"] * 3
    assert all(r["fastdl ms"] == 1.0 for r in table.rows)
    assert len(calls) >= 6


def test_model_with_the_conv_layers_saves_and_loads(tmp_path, rng):
    inp = keras.Input((8, 8, 3))
    h = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(inp)
    h = layers.SeparableConv2D(4, 3, strides=2, padding="same")(h)
    h = layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1)(h)
    h = layers.Reshape((64, 3))(h)
    out = layers.Conv1D(2, 3, padding="causal", dilation_rate=2)(h)
    model = keras.Model(inp, out)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    want = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6, atol=1e-6)


def test_sequential_fit_ending_in_conv2d_transpose_sigmoid(rng):
    # the last layer's sigmoid fuses with binary cross-entropy (Sequential's fused path:
    # _call_logits / _backward_logits of the transposed convolution)
    keras.set_seed(1)
    x = rng.random((32, 4, 4, 2)).astype(np.float32)
    y = (np.repeat(np.repeat(x[..., :1], 2, axis=1), 2, axis=2) > 0.5).astype(np.float32)
    model = keras.Sequential([keras.Input((4, 4, 2)),
                              layers.Conv2D(8, 3, padding="same", activation="relu"),
                              layers.Conv2DTranspose(1, 3, strides=2, padding="same",
                                                     activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    assert model._fused_loss()
    h = model.fit(x, y, epochs=15, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < 0.7 * h.history["loss"][0]


def test_conv1d_attributes_are_keras_one_tuples():
    layer = layers.Conv1D(4, 3, strides=2, dilation_rate=1, padding="causal")
    assert (layer.kernel_size, layer.strides, layer.dilation_rate) == ((3,), (2,), (1,))
    cfg = layer.get_config()
    assert (cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]) == ([3], [2], [1])
    assert layers.Conv1D.from_config(cfg).kernel_size == (3,)
