"""ops.conv2d_relu_max_pool2d: Conv2D(relu) + MaxPooling2D forward in one pass, its
backward pass ops.conv2d_relu_max_pool2d_backward, and their use by the training step
plans of Sequential and functional models."""
import numpy as np
import pytest

import fastdl
from fastdl import ops
from fastdl.models import sequential
import ref_conv as ref
from helpers import numeric_gradient, run_at_simd_levels, with_threads

# (x shape, w shape, strides, padding, dilation, pool_size)
CASES = [
    ((2, 28, 28, 1), (3, 3, 1, 32), 1, "valid", 1, 2),        # the MNIST convnet's first layer
    ((2, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 1, 2),      # its second: odd 11x11 output
    ((3, 11, 9, 5), (3, 3, 5, 7), 1, "valid", 1, 2),          # F < 8: conv2d runs im2col
    ((1, 13, 17, 1), (2, 2, 1, 1), 1, "same", 1, 3),          # C = F = 1, primes, pool 3
    ((2, 9, 10, 3), (3, 3, 3, 13), 2, "same", 1, (2, 3)),     # strides, prime F, 2x3 windows
    ((2, 12, 11, 4), (3, 3, 4, 16), 1, "valid", 2, 2),        # dilation
    ((2, 10, 10, 3), (3, 3, 3, 9), 1, ((1, 2), (0, 1)), 1, 2),  # explicit padding
    ((1, 22, 5, 2), (3, 3, 2, 8), 1, "valid", 1, (3, 1)),     # bands of many short rows
    ((1, 4, 4, 128), (3, 3, 128, 64), 1, "same", 1, 2),       # deep: conv2d runs im2col
    ((2, 7, 7, 3), (1, 1, 3, 16), 1, "valid", 1, 2),          # 1x1: a GEMM
    ((0, 8, 8, 2), (3, 3, 2, 8), 1, "valid", 1, 2),           # empty batch
]
IDS = [f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}-p{c[5]}" for c in CASES]


def kw(case):
    _, _, s, p, d, pool = case
    return dict(strides=s, padding=p, dilation_rate=d)


def unfused(x, w, b, case):
    z = ops.conv2d(x, w, b, activation="relu", **kw(case))
    return ops.max_pool2d(z, case[5], return_argmax=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_reference(case, dtype, rng):
    # Small integers: every sum is exact, so the maxima, their ties and the codes
    # can be compared exactly with the NumPy reference.
    xs, ws, s, p, d, pool = case
    x = np.round(rng.standard_normal(xs) * 2).astype(dtype)
    w = np.round(rng.standard_normal(ws) * 2).astype(dtype)
    b = np.round(rng.standard_normal(ws[3]) * 2).astype(dtype)
    y, codes = ops.conv2d_relu_max_pool2d(x, w, b, pool_size=pool, **kw(case))
    z = np.maximum(ref.conv2d(x, w, b, s, p, d), 0).astype(dtype)
    want = ref.max_pool2d(z, pool)
    assert y.dtype == dtype and y.shape == want.shape and codes.dtype == np.uint8
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(codes, ref.max_pool2d_argmax(z, pool))
    y, codes = ops.conv2d_relu_max_pool2d(x, w, pool_size=pool, **kw(case))  # no bias
    z = np.maximum(ref.conv2d(x, w, None, s, p, d), 0).astype(dtype)
    np.testing.assert_array_equal(y, ref.max_pool2d(z, pool))
    np.testing.assert_array_equal(codes, ref.max_pool2d_argmax(z, pool))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_same_bits_as_conv2d_then_max_pool2d(case, dtype, threads, rng):
    # Rounding (values that are not integers), NaNs in x (the ReLU makes them 0).
    xs, ws = case[:2]
    x = rng.standard_normal(xs).astype(dtype)
    x.flat[::13] = np.nan
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[3]).astype(dtype)
    y, codes = with_threads(threads, lambda: ops.conv2d_relu_max_pool2d(
        x, w, b, pool_size=case[5], **kw(case)))
    want_y, want_codes = unfused(x, w, b, case)
    np.testing.assert_array_equal(y.view(np.uint8), want_y.view(np.uint8))
    np.testing.assert_array_equal(codes, want_codes)


def unfused_backward(dy, codes, x, w, case, need_dx=True):
    """The two ops the fused backward pass stands for: the pooling's scatter from the
    codes through the ReLU (the pooled input's values unread), then conv2d_backward."""
    z_shape = ops.conv2d(x, w, **kw(case)).shape
    dz = ops.max_pool2d_backward(dy, np.zeros(z_shape, x.dtype), pool_size=case[5], relu=True,
                                 argmax=codes)
    return ops.conv2d_backward(dz, x, w, need_dx=need_dx, **kw(case))


# Batches whose bands the two threads split inside an image (the conv2d backward pass
# gives each image's dx to the thread with its first band): 3 images of 2 bands.
SPLIT_CASES = [((3, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 1, 2),
               ((5, 28, 28, 1), (3, 3, 1, 32), 1, "valid", 1, 2),
               ((3, 16, 12, 16), (3, 3, 16, 24), 1, "valid", 1, (2, 3))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES + SPLIT_CASES,
                         ids=IDS + [f"split-{c[0]}-{c[1]}" for c in SPLIT_CASES])
@pytest.mark.parametrize("threads", [1, 2])
def test_backward_same_bits_as_scatter_then_conv2d_backward(case, dtype, threads, rng):
    # dx, dw and db, with and without dx and db. The fused pass skips the rows and
    # columns the pooling drops (their gradient is zero): with finite x and w the
    # same bits.
    xs, ws = case[:2]
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[3]).astype(dtype)
    y, codes = ops.conv2d_relu_max_pool2d(x, w, b, pool_size=case[5], **kw(case))
    dy = rng.standard_normal(y.shape).astype(dtype)
    for need_dx in (True, False):
        want = with_threads(threads, lambda: unfused_backward(dy, codes, x, w, case, need_dx))
        for need_db in (True, False):
            dx, dw, db = with_threads(threads, lambda: ops.conv2d_relu_max_pool2d_backward(
                dy, codes, x, w, pool_size=case[5], need_dx=need_dx, need_db=need_db,
                **kw(case)))
            assert (dx is None) == (not need_dx) and (db is None) == (not need_db)
            assert dw.dtype == dtype and dw.shape == w.shape
            np.testing.assert_array_equal(dw, want[1])
            if need_db:
                np.testing.assert_array_equal(db, want[2])
            if need_dx:
                assert dx.dtype == dtype and dx.shape == x.shape
                np.testing.assert_array_equal(dx, want[0])


def test_backward_skips_what_the_pooling_drops(rng):
    # conv 13x13 -> 11x11, pooled 5x5: output row and column 10 are dropped, and input
    # row and column 12 are read by them only. A NaN there reaches no output, and the
    # fused backward pass gives the gradient of what was computed (the unfused ops
    # multiply it by a zero dy: NaN in dw). A NaN that a pooled output reads is NaN in
    # both.
    x = rng.standard_normal((2, 13, 13, 8))
    w = rng.standard_normal((3, 3, 8, 16))
    x[1, 12, 5, 3] = x[0, 4, 12, 0] = np.nan
    y, codes = ops.conv2d_relu_max_pool2d(x, w)
    assert np.isfinite(y).all()
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_relu_max_pool2d_backward(dy, codes, x, w)
    plain = unfused_backward(dy, codes, x, w, CASES[1])
    assert np.isnan(plain[1]).any() and np.isfinite(dw).all()
    clean = unfused_backward(dy, codes, np.nan_to_num(x, nan=0.0), w, CASES[1])
    for got, want in zip((dx, dw, db), clean):
        np.testing.assert_array_equal(got, want)
    x[0, 3, 3, 1] = np.nan    # read by kept outputs
    y, codes = ops.conv2d_relu_max_pool2d(x, w)
    _, dw, _ = ops.conv2d_relu_max_pool2d_backward(dy, codes, x, w)
    assert np.isnan(dw).any()


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[4], CASES[6], SPLIT_CASES[2]],
                         ids=[IDS[0], IDS[1], IDS[4], IDS[6], "split"])
def test_backward_matches_reference(case, rng):
    # Against NumPy: the codes' scatter, then the reference convolution's gradients.
    xs, ws, s, p, d, pool = case
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    y, codes = ops.conv2d_relu_max_pool2d(x, w, pool_size=pool, **kw(case))
    dy = rng.standard_normal(y.shape)
    z = np.maximum(ref.conv2d(x, w, None, s, p, d), 0)
    dz = ref.max_pool2d_backward(dy, z, pool) * (z > 0)
    want_dx, want_dw, want_db = ref.conv2d_backward(dz, x, w, s, p, d)
    dx, dw, db = ops.conv2d_relu_max_pool2d_backward(dy, codes, x, w, pool_size=pool,
                                                     **kw(case))
    for got, want in ((dx, want_dx), (dw, want_dw), (db, want_db)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[6]], ids=[IDS[0], IDS[4], IDS[6]])
def test_gradient_through_the_codes(case, rng):
    # The training path's backward (the fused op, and the two ops it stands for)
    # against central differences of the fused forward pass, float64.
    xs, ws, s, p, d, pool = case
    x = rng.standard_normal((1,) + xs[1:])
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[3])
    y, codes = ops.conv2d_relu_max_pool2d(x, w, b, pool_size=pool, **kw(case))
    r = rng.standard_normal(y.shape)
    grads = ops.conv2d_relu_max_pool2d_backward(r, codes, x, w, pool_size=pool, **kw(case))
    for got, want in zip(grads, unfused_backward(r, codes, x, w, case)):
        np.testing.assert_array_equal(got, want)

    def loss():
        return float((ops.conv2d_relu_max_pool2d(x, w, b, pool_size=pool, **kw(case))[0]
                      * r).sum())
    for a, got in zip((x, w, b), grads):
        np.testing.assert_allclose(got, numeric_gradient(loss, a), rtol=1e-6, atol=1e-7)


def test_non_contiguous_inputs(rng):
    x = rng.standard_normal((2, 20, 12, 6)).astype(np.float32)[:, ::2, :, ::2]
    w = rng.standard_normal((3, 3, 6, 20)).astype(np.float32)[:, :, ::2, ::2]
    b = rng.standard_normal(20).astype(np.float32)[::2]
    y, codes = ops.conv2d_relu_max_pool2d(x, w, b)
    want_y, want_codes = ops.conv2d_relu_max_pool2d(x.copy(), w.copy(), b.copy())
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(codes, want_codes)
    dy = rng.standard_normal((2, 8, 5, 20)).astype(np.float32)[:, ::2, :, ::2]
    wide = np.zeros((2, 4, 5, 20), np.uint8)
    wide[..., ::2] = codes
    got = ops.conv2d_relu_max_pool2d_backward(dy, wide[..., ::2], x, w)
    want = ops.conv2d_relu_max_pool2d_backward(dy.copy(), codes, x.copy(), w.copy())
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_bad_input():
    x = np.zeros((2, 8, 8, 3), np.float32)
    w = np.zeros((3, 3, 3, 8), np.float32)
    f = ops.conv2d_relu_max_pool2d
    with pytest.raises(TypeError, match="x must be"):
        f(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="x must be"):
        f(x.astype(np.float16), w.astype(np.float16))
    with pytest.raises(TypeError, match="dtype"):
        f(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="dtype"):
        f(x, w, np.zeros(8, np.float64))
    with pytest.raises(ValueError, match=r"b must have shape \(8,\)"):
        f(x, w, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="4-D"):
        f(x[0], w)
    with pytest.raises(ValueError, match="channels"):
        f(x, w[:, :, :2])
    with pytest.raises(ValueError, match=r"pool window \(7, 2\) is larger than the "
                                         r"convolution's output \(6, 6\)"):
        f(x, w, pool_size=(7, 2))
    with pytest.raises(ValueError, match="pool_size must be positive"):
        f(x, w, pool_size=0)
    with pytest.raises(ValueError, match="at most 127 taps"):
        f(np.zeros((1, 20, 20, 1), np.float32), np.zeros((3, 3, 1, 8), np.float32),
          pool_size=(12, 12))
    with pytest.raises(ValueError, match="kernel"):
        f(np.zeros((1, 2, 2, 3), np.float32), w)


def test_backward_bad_input():
    x = np.zeros((2, 8, 8, 3), np.float32)
    w = np.zeros((3, 3, 3, 8), np.float32)
    dy = np.zeros((2, 3, 3, 8), np.float32)
    codes = np.zeros((2, 3, 3, 8), np.uint8)
    f = ops.conv2d_relu_max_pool2d_backward
    with pytest.raises(TypeError, match="dy has dtype float64 but x has dtype float32"):
        f(dy.astype(np.float64), codes, x, w)
    with pytest.raises(ValueError, match=r"dy must have the pooled output's shape "
                                         r"\(2, 3, 3, 8\) for x \(2, 8, 8, 3\), w "
                                         r"\(3, 3, 3, 8\) and pool_size \(2, 2\), got "
                                         r"\(2, 6, 6, 8\)"):
        f(np.zeros((2, 6, 6, 8), np.float32), codes, x, w)
    with pytest.raises(ValueError, match="pooled output's shape"):
        f(dy, codes, x, w, pool_size=3)        # dy and codes of 2x2 windows
    with pytest.raises(TypeError, match="argmax must be uint8"):
        f(dy, codes.astype(np.int32), x, w)
    with pytest.raises(ValueError, match=r"argmax must have the pooled output's shape.*"
                                         r"got \(1, 3, 3, 8\)"):
        f(dy, codes[:1], x, w)
    with pytest.raises(TypeError, match="argmax must be"):
        f(dy, None, x, w)
    with pytest.raises(TypeError, match="x must be"):
        f(dy, codes, x.astype(np.int32), w)
    with pytest.raises(ValueError, match="channels"):
        f(dy, codes, x, w[:, :, :2])
    with pytest.raises(ValueError, match="pool_size must be positive"):
        f(dy, codes, x, w, pool_size=(2, 0))
    with pytest.raises(ValueError, match=r"pool window \(7, 2\) is larger"):
        f(dy, codes, x, w, pool_size=(7, 2))


_LEVEL_SCRIPT = r"""
import sys, numpy as np
from fastdl import ops
rng = np.random.default_rng(7)
out = {}
# direct-kernel layers: filter counts hitting the vector blocks and their tails,
# padding, strides, bands of several rows
for i, (xs, ws, s, p, pool) in enumerate([((2, 28, 28, 1), (3, 3, 1, 32), 1, "valid", 2),
                                          ((2, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 2),
                                          ((2, 9, 10, 3), (3, 3, 3, 53), 2, "same", (2, 3)),
                                          ((1, 22, 5, 2), (3, 3, 2, 13), 1, "valid", (3, 1)),
                                          ((3, 9, 10, 1), (3, 3, 1, 53), 1, "valid", 2)]):
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[3]).astype(dt)
        y, codes = ops.conv2d_relu_max_pool2d(x, w, b, strides=s, padding=p, pool_size=pool)
        z = ops.conv2d(x, w, b, strides=s, padding=p, activation="relu")
        want_y, want_codes = ops.max_pool2d(z, pool, return_argmax=True)
        same = np.array_equal(y, want_y) and np.array_equal(codes, want_codes)
        out[f"y{i}{dt.__name__}"], out[f"same{i}{dt.__name__}"] = y, np.array(same)
        xi, wi = np.round(x * 2), np.round(w * 2)   # exact sums: the same codes at every level
        yi, ci = ops.conv2d_relu_max_pool2d(xi, wi, strides=s, padding=p, pool_size=pool)
        out[f"codes{i}{dt.__name__}"] = ci
        # the backward pass from the exact codes: the same bits as its two ops at each
        # level, close to generic's values
        dy = rng.standard_normal(y.shape).astype(dt)
        grads = ops.conv2d_relu_max_pool2d_backward(dy, ci, x, w, strides=s, padding=p,
                                                    pool_size=pool)
        dz = ops.max_pool2d_backward(dy, np.zeros(z.shape, dt), pool_size=pool, relu=True,
                                     argmax=ci)
        plain = ops.conv2d_backward(dz, x, w, strides=s, padding=p)
        out[f"samebw{i}{dt.__name__}"] = np.array(all(np.array_equal(a, b)
                                                      for a, b in zip(grads, plain)))
        for name, g in zip(("dx", "dw", "db"), grads):
            out[f"{name}{i}{dt.__name__}"] = g
np.savez(sys.argv[1], **out)
"""


def test_simd_levels_match_generic(tmp_path):
    results = run_at_simd_levels(tmp_path, _LEVEL_SCRIPT)
    base = results["generic"]
    for level, res in results.items():
        for k, v in res.items():
            if k.startswith("same"):
                assert v, f"{level} {k}: fused and unfused differ"
            elif k.startswith("codes"):
                np.testing.assert_array_equal(v, base[k], err_msg=f"{level} {k}")
            else:
                tol = dict(rtol=1e-4, atol=1e-4) if "float32" in k else dict(rtol=1e-12,
                                                                             atol=1e-12)
                np.testing.assert_allclose(v, base[k], err_msg=f"{level} {k}", **tol)


# ----------------------------------------------------------------- the training step plan
def _convnet():
    L = fastdl.layers
    return fastdl.Sequential([L.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                              L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
                              L.MaxPooling2D(), L.Flatten(), L.Dense(32, activation="relu"),
                              L.Dense(10, activation="softmax")])


def _train_fused_and_plain(monkeypatch, threads, build, n, unfuse):
    """Trains build() for 2 epochs at batch 32 on n random images, with the step plan's
    conv + pool pairs and then without (unfuse() switches them off); checks the weights and
    history are the same bits, and that the fused backward op ran once per fused forward
    call, and never without the pairs. Returns the input shapes the fused op saw."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, n)
    calls, back_calls = [], []
    fused_op, fused_back = ops.conv2d_relu_max_pool2d, ops.conv2d_relu_max_pool2d_backward

    def counted(*a, **k):
        calls.append(a[0].shape)
        return fused_op(*a, **k)

    def counted_back(*a, **k):
        back_calls.append(a[2].shape)
        return fused_back(*a, **k)
    monkeypatch.setattr(ops, "conv2d_relu_max_pool2d", counted)
    monkeypatch.setattr(ops, "conv2d_relu_max_pool2d_backward", counted_back)

    def train():
        fastdl.set_seed(0)
        m = build()
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, batch_size=32, epochs=2, verbose=0)
        return m.get_weights(), h.history
    w_fused, h_fused = with_threads(threads, train)
    seen = list(calls)
    # every fused forward call's backward pass is one op too (in reverse order in a step)
    assert sorted(back_calls) == sorted(seen)
    unfuse()
    w_plain, h_plain = with_threads(threads, train)
    assert calls == seen and sorted(back_calls) == sorted(seen)
    assert h_fused == h_plain
    for a, b in zip(w_fused, w_plain):
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    return seen


@pytest.mark.parametrize("threads", [1, 2])
def test_training_step_same_bits_fused_and_not(threads, monkeypatch):
    seen = _train_fused_and_plain(
        monkeypatch, threads, _convnet, 3 * 32 + 5,
        lambda: monkeypatch.setattr(sequential, "_fuses_conv_pool", lambda layer, nxt: False))
    assert len(seen) == 2 * 2 * 4   # both pairs, 4 steps, 2 epochs


def test_training_step_keeps_unfused_pairs():
    # Only a Conv2D with ReLU followed by pooling windows that tile its output fuses.
    L = fastdl.layers
    conv = L.Conv2D(4, 3, activation="relu")
    assert L.MaxPooling2D()._fuses_after(conv)
    assert L.MaxPooling2D((3, 2))._fuses_after(conv)
    assert not L.MaxPooling2D(strides=1)._fuses_after(conv)
    assert not L.MaxPooling2D(padding="same")._fuses_after(conv)
    assert not L.MaxPooling2D()._fuses_after(L.Conv2D(4, 3))
    assert not L.MaxPooling2D()._fuses_after(L.Conv2D(4, 3, activation="sigmoid"))
    assert not L.MaxPooling2D()._fuses_after(L.DepthwiseConv2D(3, activation="relu"))
    assert not L.MaxPooling2D()._fuses_after(L.Conv1D(4, 3, activation="relu"))


def _functional_convnet():
    L = fastdl.layers
    inp = L.Input((28, 28, 1))
    a = L.MaxPooling2D()(L.Conv2D(8, 3, activation="relu")(inp))   # fuses
    b = L.Conv2D(8, 3, activation="relu")(a)     # read by its pool and a second branch: no
    h = L.Concatenate()([L.Flatten()(L.MaxPooling2D()(b)), L.GlobalAveragePooling2D()(b)])
    return fastdl.Model(inp, L.Dense(10, activation="softmax")(h))


@pytest.mark.parametrize("threads", [1, 2])
def test_functional_training_step_same_bits_fused_and_not(threads, monkeypatch):
    from fastdl.models import functional
    seen = _train_fused_and_plain(
        monkeypatch, threads, _functional_convnet, 2 * 32 + 3,
        lambda: monkeypatch.setattr(functional, "_conv_pool_pairs", lambda *a: {}))
    # only the first pair, on the input images: 3 steps, 2 epochs
    assert seen == ([(32, 28, 28, 1)] * 2 + [(3, 28, 28, 1)]) * 2, seen
