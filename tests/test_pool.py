import numpy as np
import pytest

import fastdl
from fastdl import ops
import ref_conv as ref
from helpers import numeric_gradient, run_at_simd_levels, with_threads

# (x shape, pool_size, strides, padding)
CASES = [
    ((2, 6, 8, 3), 2, None, "valid"),
    ((2, 7, 9, 3), 2, None, "valid"),            # odd sizes: last row/column unused
    ((2, 9, 5, 3), 2, None, "same"),             # odd sizes, padded at the bottom/right
    ((3, 5, 11, 17), 3, None, "valid"),          # two unused rows and columns, prime C
    ((2, 7, 9, 3), 3, 2, "same"),                # overlapping windows, 'same'
    ((1, 5, 5, 1), (2, 3), (1, 2), "SAME"),      # C = 1, N = 1
    ((3, 8, 6, 5), 3, 1, "valid"),               # stride 1, heavy overlap
    ((2, 7, 6, 4), 2, 3, "valid"),               # stride > pool: gaps
    ((2, 6, 7, 2), 3, 2, ((1, 2), (0, 1))),      # asymmetric explicit padding
    ((2, 5, 5, 3), 2, 1, 1),                     # int padding
    ((0, 6, 6, 3), 2, None, "valid"),            # empty batch
    ((2, 7, 9, 19), 2, None, "valid"),           # 2x2 tiles: vectors of channels and a tail
    ((1, 4, 6, 32), 2, 2, "valid"),              # 2x2 tiles: whole vectors only
]
IDS = [f"{c[0]}-p{c[1]}-s{c[2]}-{c[3]}" for c in CASES]
TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def kw(pool, strides, padding):
    return dict(pool_size=pool, strides=strides, padding=padding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool_matches_reference(case, dtype, rng):
    xs, pool, s, p = case
    x = rng.standard_normal(xs).astype(dtype)
    y = ops.max_pool2d(x, pool, s, p)
    want = ref.max_pool2d(x, pool, s, p)
    assert y.dtype == dtype and y.shape == want.shape
    np.testing.assert_array_equal(y, want)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(dy, x, **kw(pool, s, p))
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, ref.max_pool2d_backward(dy, x, pool, s, p), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_max_pool_backward_through_relu(case, dtype, threads, rng):
    # relu=True: x is a ReLU's output (many zeros, windows of only zeros, ties at
    # zero); the result equals the plain backward masked by x > 0, bit for bit.
    xs, pool, s, p = case
    x = np.maximum(np.round(rng.standard_normal(xs) * 2), 0).astype(dtype)
    y = ops.max_pool2d(x, pool, s, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        got = ops.max_pool2d_backward(dy, x, **kw(pool, s, p), relu=True)
        plain = ops.max_pool2d_backward(dy, x, **kw(pool, s, p))
    finally:
        fastdl.set_num_threads(old)
    want = ref.max_pool2d_backward(dy, x, pool, s, p) * (x > 0)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, plain * (x > 0))
    np.testing.assert_allclose(got, want, **TOL[dtype])


def test_max_pool_backward_through_relu_zero_window():
    # A window of zeros (a ReLU that was off everywhere) passes nothing with
    # relu=True; without it the first zero takes dy.
    x = np.array([[0, 0, 3, 1], [0, 0, 2, 0]], np.float32).reshape(1, 2, 4, 1)
    dy = np.array([5, 7], np.float32).reshape(1, 1, 2, 1)
    plain = ops.max_pool2d_backward(dy, x)
    got = ops.max_pool2d_backward(dy, x, relu=True)
    np.testing.assert_array_equal(plain.ravel(), [5, 0, 7, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got.ravel(), [0, 0, 7, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_max_pool_argmax(case, dtype, threads, rng):
    # return_argmax: the same y, the codes of the reference; the backward pass from
    # them gives the bits of the backward pass from x, plain and through a ReLU.
    # Rounded values (ties), a ReLU's zeros (windows not positive) and NaNs.
    xs, pool, s, p = case
    x = np.round(rng.standard_normal(xs) * 2).astype(dtype)
    x.flat[::11] = np.nan
    for xin in (x, np.maximum(x, 0)):
        y, codes = with_threads(threads, lambda: ops.max_pool2d(xin, pool, s, p,
                                                                  return_argmax=True))
        np.testing.assert_array_equal(y, ops.max_pool2d(xin, pool, s, p))
        assert codes.dtype == np.uint8 and codes.shape == y.shape
        np.testing.assert_array_equal(codes, ref.max_pool2d_argmax(xin, pool, s, p))
        dy = rng.standard_normal(y.shape).astype(dtype)
        for relu in (False, True):
            got = with_threads(threads, lambda: ops.max_pool2d_backward(
                dy, xin, **kw(pool, s, p), relu=relu, argmax=codes))
            want = ops.max_pool2d_backward(dy, xin, **kw(pool, s, p), relu=relu)
            assert got.dtype == dtype and got.shape == xin.shape
            np.testing.assert_array_equal(got, want)


def test_max_pool_argmax_codes():
    # Tap numbers count the whole window (padding included), row-major; the flags.
    x = np.array([[1, 5, 0, -2, np.nan, 1],
                  [5, 2, 0, -1, 3, 9]], np.float32).reshape(1, 2, 6, 1)
    y, codes = ops.max_pool2d(x, 2, return_argmax=True)
    np.testing.assert_array_equal(y.ravel(), [5, 0, np.nan])
    np.testing.assert_array_equal(codes.ravel(), [1, 128, 255])   # tie: first; 0: flagged
    _, codes = ops.max_pool2d(x[:, :, :3], 2, padding="same", return_argmax=True)
    np.testing.assert_array_equal(codes.ravel(), [1, 128])  # window (0, 2): taps 0 and 2 tie
    _, codes = ops.max_pool2d(x[:, :, :3], 2, strides=1, padding=((1, 0), (1, 0)),
                              return_argmax=True)
    np.testing.assert_array_equal(codes.ravel(), [3, 3, 2, 3, 1, 0])  # padded: taps 0-2 absent
    # The backward pass reads the codes, not x: any x of the shape gives the same dx.
    dy = np.array([1, 2, 3], np.float32).reshape(1, 1, 3, 1)
    _, codes = ops.max_pool2d(x, 2, return_argmax=True)
    dx = ops.max_pool2d_backward(dy, np.zeros_like(x), argmax=codes)
    np.testing.assert_array_equal(dx.ravel(), [0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    dx = ops.max_pool2d_backward(dy, np.zeros_like(x), argmax=codes, relu=True)
    np.testing.assert_array_equal(dx.ravel(), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("args", [(2, None, "valid"), (3, 2, "same"), (2, 1, ((1, 0), (0, 1)))])
def test_max_pool_argmax_finite_differences(args, rng):
    pool, s, p = args
    x = rng.permutation(2 * 5 * 6 * 3).reshape(2, 5, 6, 3) / 7.0 - 2.0
    r = rng.standard_normal(ops.max_pool2d(x, pool, s, p).shape)
    _, codes = ops.max_pool2d(x, pool, s, p, return_argmax=True)
    num = numeric_gradient(lambda: float((ops.max_pool2d(x, pool, s, p) * r).sum()), x)
    np.testing.assert_allclose(ops.max_pool2d_backward(r, x, **kw(pool, s, p), argmax=codes),
                               num, rtol=1e-6, atol=1e-7)
    # through a ReLU: the gradient of relu then pool at the pre-activation x
    xr = np.maximum(x, 0)
    num = numeric_gradient(lambda: float((ops.max_pool2d(np.maximum(x, 0), pool, s, p) * r).sum()),
                           x)
    _, codes = ops.max_pool2d(xr, pool, s, p, return_argmax=True)
    np.testing.assert_allclose(ops.max_pool2d_backward(r, xr, **kw(pool, s, p), relu=True,
                                                       argmax=codes),
                               num, rtol=1e-6, atol=1e-7)


def test_max_pool_argmax_non_contiguous(rng):
    base = rng.standard_normal((2, 12, 10, 6))
    x = base[:, ::2, :, ::2]
    y, codes = ops.max_pool2d(x, 2, return_argmax=True)
    np.testing.assert_array_equal(codes, ref.max_pool2d_argmax(x.copy(), 2))
    dy = rng.standard_normal((2, 3, 5, 3))[:, ::-1]
    wide = np.zeros(codes.shape[:3] + (6,), np.uint8)
    wide[..., ::2] = codes
    np.testing.assert_array_equal(
        ops.max_pool2d_backward(dy, x, pool_size=2, argmax=wide[..., ::2]),
        ops.max_pool2d_backward(dy, x, pool_size=2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool_matches_reference(case, dtype, rng):
    xs, pool, s, p = case
    x = rng.standard_normal(xs).astype(dtype)
    y = ops.avg_pool2d(x, pool, s, p)
    want = ref.avg_pool2d(x, pool, s, p)
    assert y.dtype == dtype and y.shape == want.shape
    np.testing.assert_allclose(y, want, **TOL[dtype])
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.avg_pool2d_backward(dy, x, **kw(pool, s, p))
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, ref.avg_pool2d_backward(dy, x, pool, s, p), **TOL[dtype])


def test_avg_pool_does_not_count_padding():
    x = np.ones((1, 3, 3, 1), np.float32)
    y = ops.avg_pool2d(x, 2, 2, "same")   # windows at the bottom/right edge hang over
    np.testing.assert_array_equal(y, np.ones((1, 2, 2, 1), np.float32))


def test_max_pool_ties_go_to_first_maximum():
    # Every window is constant: TensorFlow gives the gradient to the first tap.
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[..., 1] = 7.0
    dy = np.arange(1, 9, dtype=np.float32).reshape(1, 2, 2, 2)
    dx = ops.max_pool2d_backward(dy, x, pool_size=2)
    want = np.zeros_like(x)
    want[0, ::2, ::2, :] = dy[0]
    np.testing.assert_array_equal(dx, want)
    # A tie between two later taps of the window: the first of them wins.
    x = np.array([[1., 5.], [5., 2.]], np.float32).reshape(1, 2, 2, 1)
    dx = ops.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), x, pool_size=2)
    np.testing.assert_array_equal(dx.ravel(), [0, 1, 0, 0])
    # Overlapping windows (stride 1) accumulate into a shared maximum.
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 1.0
    dx = ops.max_pool2d_backward(np.ones((1, 2, 2, 1)), x, pool_size=2, strides=1)
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_pool_threads(threads, rng):
    x = rng.standard_normal((5, 13, 11, 8))
    dy = rng.standard_normal((5, 7, 6, 8))
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        got = [ops.max_pool2d(x, 3, 2, "same"), ops.max_pool2d_backward(dy, x, pool_size=3, strides=2, padding="same"),
               ops.avg_pool2d(x, 3, 2, "same"), ops.avg_pool2d_backward(dy, x, pool_size=3, strides=2, padding="same")]
    finally:
        fastdl.set_num_threads(old)
    want = [ref.max_pool2d(x, 3, 2, "same"), ref.max_pool2d_backward(dy, x, 3, 2, "same"),
            ref.avg_pool2d(x, 3, 2, "same"), ref.avg_pool2d_backward(dy, x, 3, 2, "same")]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_non_contiguous_input(rng):
    base = rng.standard_normal((2, 12, 10, 6))
    x = base[:, ::2, :, ::2]
    xc = x.copy()
    np.testing.assert_array_equal(ops.max_pool2d(x, 2), ref.max_pool2d(xc, 2))
    dy = rng.standard_normal((2, 3, 5, 3))[:, ::-1]
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, pool_size=2),
                               ref.max_pool2d_backward(dy, xc, 2), rtol=1e-12)
    np.testing.assert_allclose(ops.avg_pool2d_backward(dy, x, pool_size=2),
                               ref.avg_pool2d_backward(dy, xc, 2), rtol=1e-12)
    np.testing.assert_array_equal(x, xc)


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("args", [(2, None, "valid"), (3, 2, "same"), (2, 1, ((1, 0), (0, 1)))])
def test_pool_gradients_finite_differences(op, args, rng):
    pool, s, p = args
    # Distinct values, so the max is not at a tie that a small step could flip.
    x = rng.permutation(2 * 5 * 6 * 3).reshape(2, 5, 6, 3) / 7.0
    fwd = getattr(ops, f"{op}_pool2d")
    bwd = getattr(ops, f"{op}_pool2d_backward")
    r = rng.standard_normal(fwd(x, pool, s, p).shape)

    def loss():
        return float((fwd(x, pool, s, p) * r).sum())

    np.testing.assert_allclose(bwd(r, x, **kw(pool, s, p)), numeric_gradient(loss, x),
                               rtol=1e-6, atol=1e-7)


def test_global_avg_pool(rng):
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
        y = ops.global_avg_pool2d(x)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, x.mean(axis=(1, 2)), **TOL[dtype])
        dy = rng.standard_normal((3, 4)).astype(dtype)
        dx = ops.global_avg_pool2d_backward(dy, x)
        np.testing.assert_allclose(dx, np.broadcast_to(dy[:, None, None, :] / 35, x.shape),
                                   **TOL[dtype])
    x = rng.standard_normal((2, 3, 4, 5))
    r = rng.standard_normal((2, 5))
    num = numeric_gradient(lambda: float((ops.global_avg_pool2d(x) * r).sum()), x)
    np.testing.assert_allclose(ops.global_avg_pool2d_backward(r, x), num, rtol=1e-6, atol=1e-7)
    e = np.zeros((0, 3, 3, 2), np.float32)
    assert ops.global_avg_pool2d(e).shape == (0, 2)
    assert ops.global_avg_pool2d_backward(np.zeros((0, 2), np.float32), e).shape == e.shape


# ----------------------------------------------------------------- bad input
# On both compiled modules (dev: NumPy arrays for fastdl._C, CuPy arrays for fastdl._cuda).
def test_pool_bad_input(dev):
    x = dev(np.zeros((2, 5, 5, 3), np.float32))

    def z(*shape, dtype=np.float32):
        return dev(np.zeros(shape, dtype))

    with pytest.raises(ValueError, match=r"larger than the padded input.*\(2, 5, 5, 3\)"):
        ops.max_pool2d(x, 6)
    with pytest.raises(ValueError, match="positive"):
        ops.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="positive"):
        ops.avg_pool2d(x, 2, strides=(0, 1))
    with pytest.raises(ValueError, match="padding"):
        ops.max_pool2d(x, 2, padding="causal")
    with pytest.raises(ValueError, match="smaller than pool_size"):
        ops.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="4-D"):
        ops.max_pool2d(x[0], 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.avg_pool2d(x.astype(np.int64), 2)
    with pytest.raises(TypeError, match="dtype"):
        ops.max_pool2d_backward(z(2, 2, 2, 3, dtype=np.float64), x)
    with pytest.raises(ValueError, match=r"dy must have the output shape \(2, 2, 2, 3\)"):
        ops.max_pool2d_backward(z(2, 2, 3, 3), x)
    with pytest.raises(ValueError, match=r"dy must have the output shape"):
        ops.avg_pool2d_backward(z(2, 2, 2), x)
    with pytest.raises(ValueError, match="4-D"):
        ops.global_avg_pool2d(x[0])
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\)"):
        ops.global_avg_pool2d_backward(z(2, 4), x)
    with pytest.raises(TypeError, match="dtype"):
        ops.global_avg_pool2d_backward(z(2, 3, dtype=np.float64), x)
    with pytest.raises(ValueError, match="at least one pixel"):
        ops.global_avg_pool2d(z(2, 0, 5, 3))
    if dev.name != "cpu":
        with pytest.raises(NotImplementedError, match="CPU only"):
            ops.max_pool2d(x, 2, return_argmax=True)
        return
    codes = np.zeros((2, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match=r"at most 127 taps, got \(12, 11\)"):
        ops.max_pool2d(np.zeros((1, 12, 11, 1), np.float32), (12, 11), return_argmax=True)
    with pytest.raises(ValueError, match=r"at most 127 taps"):
        ops.max_pool2d_backward(np.zeros((1, 1, 1, 1), np.float32),
                                np.zeros((1, 12, 11, 1), np.float32), pool_size=(12, 11),
                                argmax=np.zeros((1, 1, 1, 1), np.uint8))
    with pytest.raises(TypeError, match="argmax must be uint8"):
        ops.max_pool2d_backward(z(2, 2, 2, 3), x, argmax=codes.astype(np.int32))
    with pytest.raises(ValueError, match=r"argmax must have the output shape \(2, 2, 2, 3\)"):
        ops.max_pool2d_backward(z(2, 2, 2, 3), x, argmax=codes[:1])
    with pytest.raises(TypeError, match="argmax"):
        ops.max_pool2d_backward(z(2, 2, 2, 3), x, argmax=[1, 2])


# ----------------------------------------------------------------- SIMD levels
_LEVEL_SCRIPT = r"""
import sys, numpy as np
from fastdl import ops
rng = np.random.default_rng(3)
out = {}
for i, (xs, pool, s, p) in enumerate([((2, 8, 8, 37), 2, None, "valid"),
                                      ((2, 9, 7, 19), 3, 2, "same"),
                                      ((1, 6, 6, 5), 2, 1, "valid"),
                                      ((2, 7, 9, 19), 2, None, "valid")]):
    for dt in (np.float32, np.float64):
        # Rounded values: plenty of ties inside windows.
        x = np.round(rng.standard_normal(xs) * 2).astype(dt)
        y = ops.max_pool2d(x, pool, s, p)
        dy = rng.standard_normal(y.shape).astype(dt)
        out[f"y{i}{dt.__name__}"] = y
        out[f"dx{i}{dt.__name__}"] = ops.max_pool2d_backward(dy, x, pool_size=pool, strides=s, padding=p)
        xr = np.maximum(x, 0)  # a ReLU's output: whole windows of zeros
        out[f"dxr{i}{dt.__name__}"] = ops.max_pool2d_backward(dy, xr, pool_size=pool, strides=s,
                                                              padding=p, relu=True)
        x[0, 0, 0, :3] = np.nan
        for name, xin in (("a", x), ("ar", np.maximum(x, 0))):
            y, codes = ops.max_pool2d(xin, pool, s, p, return_argmax=True)
            out[f"y{name}{i}{dt.__name__}"] = y
            out[f"codes{name}{i}{dt.__name__}"] = codes
            for relu in (False, True):
                out[f"dx{name}{relu}{i}{dt.__name__}"] = ops.max_pool2d_backward(
                    dy, xin, pool_size=pool, strides=s, padding=p, relu=relu, argmax=codes)
np.savez(sys.argv[1], **out)
"""


def test_simd_levels_match_generic(tmp_path):
    results = run_at_simd_levels(tmp_path, _LEVEL_SCRIPT)
    for level, res in results.items():
        for k, v in res.items():
            np.testing.assert_array_equal(v, results["generic"][k], err_msg=f"{level} {k}")
