import numpy as np
import pytest

import fastdl
from fastdl import ops
import ref_conv as ref
from helpers import numeric_gradient, run_at_simd_levels

# (x shape, w shape (KH, KW, C, F), strides, padding, dilation)
CASES = [
    ((2, 7, 9, 3), (3, 3, 3, 4), 1, "valid", 1),
    ((2, 7, 9, 3), (3, 3, 3, 4), 2, "same", 1),           # stride > 1 with 'same'
    ((1, 8, 8, 2), (3, 2, 2, 5), (2, 3), "SAME", 1),        # odd sizes, upper-case word
    ((3, 9, 11, 2), (3, 3, 2, 3), 1, "same", 2),            # dilation
    ((2, 10, 7, 3), (2, 3, 3, 2), (1, 2), "valid", (2, 1)),
    ((2, 6, 6, 4), (1, 1, 4, 5), 1, "valid", 1),            # 1x1 stride 1: no im2col
    ((2, 6, 7, 4), (1, 1, 4, 5), 2, "valid", 1),            # 1x1 strided
    ((2, 6, 6, 4), (1, 1, 4, 5), 1, 1, 1),                  # 1x1 padded
    ((1, 5, 5, 1), (3, 3, 1, 6), 1, "valid", 1),            # C = 1, N = 1
    ((2, 6, 7, 3), (3, 3, 3, 2), 1, ((1, 2), (0, 3)), 1),   # asymmetric explicit padding
    ((2, 5, 5, 3), (3, 3, 3, 2), 1, 2, 1),                  # int padding
    ((2, 5, 6, 3), (3, 3, 3, 2), 2, (1, 2), 1),             # (ph, pw) padding
    ((2, 3, 3, 2), (5, 5, 2, 3), 1, "same", 1),             # kernel larger than x, padded
    ((1, 13, 7, 5), (7, 1, 5, 3), (3, 1), "same", 1),
    # C > 4: the im2col + GEMM path (smaller C takes the small-K kernels)
    ((2, 9, 11, 6), (3, 3, 6, 5), 2, "same", 1),
    ((2, 10, 9, 5), (3, 2, 5, 4), (1, 2), ((2, 1), (0, 1)), (2, 1)),
    ((3, 7, 8, 8), (2, 2, 8, 17), 1, "valid", 1),
    ((2, 6, 6, 4), (5, 5, 4, 3), 1, "same", 1),              # K = 100: GEMM path
    # fewer filters than a vector (an autoencoder's output layer): 'auto' takes the GEMM for
    # y and dw (one column of w: the one-row kernels) and dx as a direct convolution of dy
    ((2, 9, 7, 11), (3, 3, 11, 1), 1, "same", 1),
    ((3, 6, 5, 9), (3, 3, 9, 3), 1, "same", 1),
    # unpadded, 8 or more channels: 'direct' takes dx by the dx kernel (each dy row times
    # w^T added into dx in place); strides, dilation, channel tails, one output pixel
    ((2, 11, 9, 37), (3, 3, 37, 6), (2, 1), "valid", (1, 2)),
    ((1, 3, 3, 9), (3, 3, 9, 2), 1, "valid", 1),
    ((2, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 1),        # the MNIST convnet's second layer
]
# Every case runs with each algorithm: the card's im2col + GEMM, the direct
# kernels, and whichever 'auto' picks.
ALGORITHMS = ["auto", "direct", "im2col"]
IDS = [f"{c[0]}-{c[1]}-s{c[2]}-{c[3]}-d{c[4]}" for c in CASES]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def kw(strides, padding, dilation):
    return dict(strides=strides, padding=padding, dilation_rate=dilation)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference(case, dtype, algorithm, rng):
    xs, ws, s, p, d = case
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[3]).astype(dtype)
    y = ops.conv2d(x, w, b, algorithm=algorithm, **kw(s, p, d))
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, s, p, d), **TOL[dtype])
    y0 = ops.conv2d(x, w, algorithm=algorithm, **kw(s, p, d))
    np.testing.assert_allclose(y0, ref.conv2d(x, w, None, s, p, d), **TOL[dtype])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_reference(case, dtype, algorithm, rng):
    xs, ws, s, p, d = case
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    yshape = ref.conv2d(x, w, None, s, p, d).shape
    dy = rng.standard_normal(yshape).astype(dtype)
    dx, dw, db = ops.conv2d_backward(dy, x, w, algorithm=algorithm, **kw(s, p, d))
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, s, p, d)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (ws[3],)
    np.testing.assert_allclose(dx, rdx, **TOL[dtype])
    np.testing.assert_allclose(dw, rdw, **TOL[dtype])
    np.testing.assert_allclose(db, rdb, **TOL[dtype])
    none, dw2, db2 = ops.conv2d_backward(dy, x, w, need_dx=False, algorithm=algorithm,
                                         **kw(s, p, d))
    assert none is None
    np.testing.assert_allclose(dw2, rdw, **TOL[dtype])  # may take another (small-K) path
    np.testing.assert_allclose(db2, rdb, **TOL[dtype])


@pytest.mark.parametrize("pixels", [1, 2, 3, 5, 7, 8, 11, 13, 14])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 6])
def test_direct_register_block_tails(channels, pixels, rng):
    # The direct kernels take pixels (forward) and taps (dw) in register blocks of
    # 6 (4 pixels below 16 taps), then 4 (pixels), 3, 2 and 1, the forward pass's
    # remainders of 1 or 2 with a block of 6 before them as 4 + 3 and 4 + 4, and
    # 5 as 3 + 2: a 1x5 window over C channels has
    # K = 5C taps (every remainder mod 6, below and above 16), one image row of
    # `pixels` outputs is one band; dw below 16 taps takes 3 taps by 4 vectors of
    # filters, then 2 vectors, 1 and single filters (37 = 2 x 16 + 4 + 1 in float64
    # at AVX2). Each output sums its terms in the same order whatever the blocking,
    # so the result is the reference's, and the same as with a batch of more images
    # (other bands, other blocks).
    x = rng.standard_normal((1, 1, pixels + 4, channels))
    w = rng.standard_normal((1, 5, channels, 37))
    b = rng.standard_normal(37)
    y = ops.conv2d(x, w, b, activation="relu", algorithm="direct")
    np.testing.assert_allclose(y, np.maximum(ref.conv2d(x, w, b, 1, "valid", 1), 0),
                               rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    _, dw, db = ops.conv2d_backward(dy, x, w, need_dx=False, algorithm="direct")
    _, rdw, rdb = ref.conv2d_backward(dy, x, w, 1, "valid", 1)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)
    x3 = np.concatenate([rng.standard_normal(x.shape), x, rng.standard_normal(x.shape)])
    np.testing.assert_array_equal(ops.conv2d(x3, w, b, activation="relu", algorithm="direct")[1],
                                  y[0])


@pytest.mark.parametrize("pixels", [1, 2, 3, 5, 7, 8, 11, 13, 14])
@pytest.mark.parametrize("channels", [8, 9, 16, 24, 37])
def test_direct_dx_register_block_tails(channels, pixels, rng):
    # The dx kernel of unpadded layers takes pixels in register blocks as the
    # forward kernel does (6, then 4, 3, 2 and 1), and channels in blocks of two
    # vectors, one, then a plain tail: one image row of `pixels` outputs; C from
    # one float vector (8) to 37 (every tail).
    x = rng.standard_normal((2, 2, pixels + 2, channels))
    w = rng.standard_normal((2, 3, channels, 5))
    dy = rng.standard_normal((2, 1, pixels, 5))
    dx, _, _ = ops.conv2d_backward(dy, x, w, need_dw=False, algorithm="direct")
    rdx, _, _ = ref.conv2d_backward(dy, x, w, 1, "valid", 1)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    dx32, _, _ = ops.conv2d_backward(dy.astype(np.float32), x.astype(np.float32),
                                     w.astype(np.float32), need_dw=False, algorithm="direct")
    np.testing.assert_allclose(dx32, rdx, rtol=1e-4, atol=1e-4)


def test_fused_relu(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = ops.conv2d(x, w, b, padding="same", activation="relu")
    np.testing.assert_allclose(y, np.maximum(ref.conv2d(x, w, b, 1, "same"), 0), rtol=2e-4,
                               atol=2e-4)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 5, 6])
def test_many_chunks_and_threads(threads, n, padding, algorithm, rng):
    # Big enough for several bands, and several im2col chunks per image group;
    # batches that split evenly (6), unevenly (5) and not at all (1) across the
    # threads ('valid', direct: dx by the dx kernel when the images split over the
    # threads, else by dy . w^T and col2im with the threads inside the GEMM).
    x = rng.standard_normal((n, 20, 21, 16))
    w = rng.standard_normal((3, 3, 16, 8))
    b = rng.standard_normal(8)
    oh, ow = (20, 21) if padding == "same" else (18, 19)
    dy = rng.standard_normal((n, oh, ow, 8))
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        y = ops.conv2d(x, w, b, padding=padding, algorithm=algorithm)
        dx, dw, db = ops.conv2d_backward(dy, x, w, padding=padding, algorithm=algorithm)
    finally:
        fastdl.set_num_threads(old)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, 1, padding), rtol=1e-10, atol=1e-10)
    rdx, rdw, rdb = ref.conv2d_backward(dy, x, w, 1, padding)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-9)


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((2, 9, 16, 3))
    x = base[:, ::2, 1::2, :]                                   # strided view
    w = np.ascontiguousarray(rng.standard_normal((3, 3, 4, 3)).transpose(0, 1, 3, 2))
    wt = rng.standard_normal((3, 3, 4, 3)).transpose(0, 1, 3, 2)  # transposed view
    xc = x.copy()
    for ww in (w, wt):
        y = ops.conv2d(x, ww, padding="same")
        np.testing.assert_allclose(y, ref.conv2d(xc, ww, None, 1, "same"), rtol=1e-10, atol=1e-10)
        dy = rng.standard_normal(y.shape)[:, :, ::-1, :]          # negative strides
        got = ops.conv2d_backward(dy, x, ww, padding="same")
        want = ref.conv2d_backward(dy, xc, ww, 1, "same")
        for g_, r_ in zip(got, want):
            np.testing.assert_allclose(g_, r_, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(x, xc)  # inputs are not modified


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
def test_empty_batch_unpadded_many_channels(algorithm):
    # the shape the dx kernel takes (unpadded, C >= 8), with no images
    x = np.zeros((0, 5, 5, 8), np.float32)
    w = np.ones((3, 3, 8, 4), np.float32)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 3, 3, 4), np.float32), x, w,
                                     algorithm=algorithm)
    assert dx.shape == (0, 5, 5, 8) and not dw.any() and not db.any()


@pytest.mark.parametrize("need_dx", [True, False])
def test_empty_batch(need_dx):
    x = np.zeros((0, 5, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 4), np.float32)
    y = ops.conv2d(x, w, np.ones(4, np.float32), padding="same")
    assert y.shape == (0, 5, 5, 4) and y.dtype == np.float32
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 3, 3, 4), np.float32), x, w, need_dx=need_dx)
    assert (dx is None) if not need_dx else dx.shape == (0, 5, 5, 3)
    assert dw.shape == w.shape and not dw.any()
    assert db.shape == (4,) and not db.any()


@pytest.mark.parametrize("case", [
    ((2, 5, 6, 3), (3, 2, 3, 4), 1, "same", 1),
    ((1, 7, 6, 2), (3, 3, 2, 3), 2, ((1, 0), (2, 1)), 1),
    ((2, 7, 7, 2), (2, 2, 2, 2), 1, "valid", 2),
    ((2, 4, 5, 3), (1, 1, 3, 2), 1, "valid", 1),
    ((2, 6, 7, 9), (3, 2, 9, 3), (1, 2), "valid", (2, 1)),
], ids=["same", "stride2-asym", "dilation2", "pointwise", "dx-kernel"])
def test_gradients_finite_differences(case, rng):
    xs, ws, s, p, d = case
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[3])
    r = rng.standard_normal(ops.conv2d(x, w, b, **kw(s, p, d)).shape)

    def loss():
        return float((ops.conv2d(x, w, b, **kw(s, p, d)) * r).sum())

    dx, dw, db = ops.conv2d_backward(r, x, w, **kw(s, p, d))
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, numeric_gradient(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(loss, b), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------- bad input
# On both compiled modules (dev: NumPy arrays for fastdl._C, CuPy arrays for fastdl._cuda).
def _xw(dev, dtype=np.float32):
    return dev(np.zeros((2, 5, 5, 3), dtype)), dev(np.zeros((3, 3, 3, 4), dtype))


def _z(dev, *shape, dtype=np.float32):
    return dev(np.zeros(shape, dtype))


def test_kernel_larger_than_padded_input(dev):
    x, _ = _xw(dev)
    with pytest.raises(ValueError, match=r"larger than the padded input.*\(2, 5, 5, 3\)"):
        ops.conv2d(x, _z(dev, 6, 3, 3, 4))
    with pytest.raises(ValueError, match="dilated"):
        ops.conv2d(x, _z(dev, 3, 3, 3, 4), dilation_rate=3)
    ops.conv2d(x, _z(dev, 6, 3, 3, 4), padding=1)  # fits once padded


@pytest.mark.parametrize("bad", [dict(strides=0), dict(strides=(1, -1)), dict(dilation_rate=0)])
def test_non_positive_strides_or_dilation(dev, bad):
    x, w = _xw(dev)
    with pytest.raises(ValueError, match="positive"):
        ops.conv2d(x, w, **bad)
    with pytest.raises(ValueError, match="positive"):
        ops.conv2d_backward(_z(dev, 2, 3, 3, 4), x, w, **bad)


@pytest.mark.parametrize("bad", [dict(strides=1.5), dict(strides=(1, 2, 3)), dict(padding=1.0),
                                 dict(padding=((1, 2), 3))])
def test_bad_argument_types(dev, bad):
    x, w = _xw(dev)
    with pytest.raises(TypeError):
        ops.conv2d(x, w, **bad)


def test_unknown_algorithm():
    x, w = _xw(lambda a: a)
    for call in (lambda: ops.conv2d(x, w, algorithm="winograd"),
                 lambda: ops.conv2d_backward(np.zeros((1, 1, 1, 1), np.float32), x, w,
                                             algorithm="winograd")):
        with pytest.raises(ValueError, match="winograd"):
            call()


def test_unknown_padding_word_and_negative_padding(dev):
    x, w = _xw(dev)
    with pytest.raises(ValueError, match="padding"):
        ops.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="non-negative"):
        ops.conv2d(x, w, padding=-1)


def test_channel_mismatch(dev):
    x, _ = _xw(dev)
    with pytest.raises(ValueError, match=r"3 channels.*\(2, 5, 5, 3\).*\(3, 3, 2, 4\)"):
        ops.conv2d(x, _z(dev, 3, 3, 2, 4))


def test_wrong_rank(dev):
    x, w = _xw(dev)
    with pytest.raises(ValueError, match="4-D"):
        ops.conv2d(x[0], w)
    with pytest.raises(ValueError, match="4-D"):
        ops.conv2d(x, w[0])


def test_bias_and_dy_shapes(dev):
    x, w = _xw(dev)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        ops.conv2d(x, w, _z(dev, 3))
    with pytest.raises(ValueError, match=r"dy must have the output shape \(2, 3, 3, 4\)"):
        ops.conv2d_backward(_z(dev, 2, 5, 5, 4), x, w)


def test_dtypes(dev):
    x, w = _xw(dev)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.conv2d(x.astype(np.int32), w.astype(np.int32))
    with pytest.raises(TypeError, match="dtype"):
        ops.conv2d(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="dtype"):
        ops.conv2d(x, w, _z(dev, 4, dtype=np.float64))
    with pytest.raises(TypeError, match="dtype"):
        ops.conv2d_backward(_z(dev, 2, 3, 3, 4, dtype=np.float64), x, w)
    with pytest.raises(TypeError, match=dev.not_an_array("x")):
        ops.conv2d(x.tolist(), w)


# ----------------------------------------------------------------- SIMD levels
_LEVEL_SCRIPT = r"""
import sys, numpy as np
from fastdl import ops
rng = np.random.default_rng(7)
out = {}
# Direct kernels: filter counts that hit the two-vector, one-vector and plain
# tails of the float and double blocks; padding, stride, relu; dx as a direct
# convolution (stride 1, 'same'), through col2im, and by the dx kernel (unpadded,
# C >= 8: one, two vectors and tails of channels, strides).
for i, (xs, ws, s, p) in enumerate([((3, 9, 10, 1), (3, 3, 1, 32), 1, "valid"),
                                    ((2, 8, 7, 3), (3, 3, 3, 53), 2, "same"),
                                    ((2, 6, 6, 2), (2, 3, 2, 7), 1, ((1, 0), (2, 1))),
                                    ((2, 7, 9, 16), (3, 3, 16, 40), 1, "same"),
                                    ((1, 2, 17, 5), (1, 5, 5, 20), 1, "valid"),  # block tails
                                    ((2, 9, 8, 37), (3, 3, 37, 5), (2, 1), "valid"),
                                    ((1, 5, 6, 8), (2, 2, 8, 3), 1, "valid")]):
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[3]).astype(dt)
        dy = None
        for a in ("direct", "im2col"):
            y = ops.conv2d(x, w, b, strides=s, padding=p, activation="relu", algorithm=a)
            dy = rng.standard_normal(y.shape).astype(dt) if dy is None else dy
            dx, dw, db = ops.conv2d_backward(dy, x, w, strides=s, padding=p, algorithm=a)
            _, dw1, _ = ops.conv2d_backward(dy, x, w, strides=s, padding=p, need_dx=False,
                                            algorithm=a)
            for name, v in (("y", y), ("dx", dx), ("dw", dw), ("db", db), ("dw1", dw1)):
                out[f"{name}{i}{dt.__name__}{a}"] = v
np.savez(sys.argv[1], **out)
"""


def test_simd_levels_match_generic(tmp_path):
    results = run_at_simd_levels(tmp_path, _LEVEL_SCRIPT)
    base = results["generic"]
    for level, res in results.items():
        for k, v in res.items():
            tol = dict(rtol=1e-4, atol=1e-4) if "float32" in k else dict(rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(v, base[k], err_msg=f"{level} {k}", **tol)


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
def test_scratch_memory_is_bounded(algorithm):
    # The patch matrix of this layer would be 100 MB; chunking keeps the
    # scratch (patches, GEMM packing, per-thread partial sums) under 64 MiB.
    from conftest import run_python
    code = r"""
import resource, numpy as np
from fastdl import ops
a = "ALGORITHM"
x = np.ones((128, 28, 28, 32), np.float32)
w = np.ones((3, 3, 32, 64), np.float32)
dy = np.ones((128, 26, 26, 64), np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
y = ops.conv2d(x, w, algorithm=a)
dx, dw, db = ops.conv2d_backward(dy, x, w, algorithm=a)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
outputs = y.nbytes + dx.nbytes + dw.nbytes + db.nbytes
print(after - before - outputs)
"""
    r = run_python(code.replace("ALGORITHM", algorithm))
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) < 64 * 2**20
