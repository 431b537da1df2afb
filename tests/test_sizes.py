"""Sizes past 2**31: 64-bit index math, or a clean refusal; never memory corruption.

Two tools keep these cheap:
- zero-stride views (numpy.lib.stride_tricks.as_strided / broadcast_to) give any shape for no
  memory; they test that size products are computed in 64 bits and that products overflowing
  int64 are refused with ValueError before anything is allocated;
- a big np.zeros buffer is only reserved, not backed by memory, until it is written (calloc maps
  untouched pages to the shared zero page): views into it with element offsets past 2**31 test
  the kernels' index arithmetic while touching only the few pages the test writes. Transparent
  huge pages are switched off for these buffers so that each written element costs 4 KiB, not
  2 MiB. Where the machine refuses to reserve the address space, the test is skipped.
"""
import contextlib

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from fastdl import ops

import ref_conv

BIG = 2**31 + 2**21   # elements: past int32, a little past 2**31


@contextlib.contextmanager
def sparse_zeros(n, dtype=np.float32):
    """np.zeros(n) that is only reserved address space until written."""
    mad = getattr(np._core.multiarray, "_set_madvise_hugepage", None)
    old = mad(False) if mad else None
    try:
        try:
            z = np.zeros(n, dtype)
        except MemoryError:
            pytest.skip(f"cannot reserve {n * np.dtype(dtype).itemsize >> 30} GiB of address space")
        yield z
    finally:
        if mad:
            mad(old)
        z = None


def huge_view(shape, dtype=np.float32, value=1.0):
    """A read-only array of any shape that costs one element of memory."""
    return as_strided(np.full(1, value, dtype), shape=shape, strides=(0,) * len(shape),
                      writeable=False)


# ----------------------------------------------------------------- GEMM
@pytest.mark.parametrize("m,k,n", [(8, 8, 8), (37, 41, 39), (37, 33, 600)])
@pytest.mark.parametrize("trans", [False, True])
def test_gemm_offsets_past_2_31(m, k, n, trans):
    """A, B and out rows about 2**31 / 36 elements apart in one reserved buffer: element offsets
    pass 2**31 in every operand. The shapes take the tiny direct loop, the unpacked-A path and
    the packed path (many column panels)."""
    rows = (k if trans else m, k, m)
    row = 2**31 // (min(rows) - 1) + 64
    assert all((r - 1) * row > 2**31 for r in rows)
    third = row // 3
    rng = np.random.default_rng(0)
    with sparse_zeros(max(rows) * row + 4096) as z:
        def rows_view(offset, r, c):
            return as_strided(z[offset:], shape=(r, c), strides=(row * 4, 4))
        av, bv = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        if trans:   # a stored as (k, m) and used transposed
            a = rows_view(0, k, m)
            a[...] = av.T
        else:
            a = rows_view(0, m, k)
            a[...] = av
        b = rows_view(third, k, n)
        b[...] = bv
        out = rows_view(2 * third, m, n)
        out[...] = 7.0
        r = ops.gemm(a, b, out, alpha=1.0, beta=0.5, trans_a=trans, out=out)
        assert r is out
        want = (av @ bv) + 0.5 * 7.0
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
        # nothing around out's rows was written
        for i in (0, m - 1):
            o = 2 * third + i * row
            assert not z[o + n: o + n + 256].any() and not z[o - 256: o].any()


def test_gemm_m_times_k_past_2_31():
    """op(a) with m*k = 2**31 + 2**15 elements (a zero-row-stride view: 128 KiB of memory),
    n = 1; the exact integer result checks every row."""
    m, k = 2**16 + 1, 2**15
    base = (np.arange(k) % 3).astype(np.float32)          # sum = k // 3 * 3 ... exact in f32
    a = as_strided(base, shape=(m, k), strides=(0, 4))
    b = np.ones((k, 1), np.float32)
    y = ops.gemm(a, b)
    assert y.shape == (m, 1)
    assert np.all(y == base.sum(dtype=np.float64))


def test_gemm_huge_shapes_refused_cleanly(dev):
    # (dev: on both compiled modules, the CUDA one where usable)
    a = dev(huge_view((2**40, 1)))
    b = dev(huge_view((1, 2**40)))
    with pytest.raises(ValueError, match="overflow"):   # the 2**80-element output
        ops.gemm(a, b)
    with pytest.raises((ValueError, MemoryError)):
        ops.gemm(dev(huge_view((2**31, 2))), dev(huge_view((2, 2**31))))
    with pytest.raises(ValueError):   # mismatched k, even when huge
        ops.gemm(dev(huge_view((2, 2**40))), dev(huge_view((2**40 + 1, 2))))


# ----------------------------------------------------------------- convolution and pooling
def _samples(x, KH, KW, strides, F=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((KH, KW, x.shape[3], F)).astype(np.float32)


@pytest.mark.parametrize("case", ["one_image", "many_images"])
def test_conv_and_pool_inputs_past_2_31(case):
    """x with more than 2**31 elements (reserved, only the sampled pixels written): the kernels'
    offsets n*H*W*C + ih*W*C + iw*C pass 2**31; results match the reference on the pixels."""
    if case == "one_image":        # ih*W*C past 2**31
        N, H, W, C = 1, 2**16, BIG // 2**16 // 2, 2
        strides, KH, KW = (2**15, 2**13), 2, 3
    else:                          # n*H*W*C past 2**31
        N, H, W, C = 2**12, 2**9, BIG // 2**12 // 2**9, 1
        strides, KH, KW = (2**8, 2**9), 2, 2
    total = N * H * W * C
    assert total > 2**31 and H * W * C < 2**40
    with sparse_zeros(total) as z:
        x = z.reshape(N, H, W, C)
        rng = np.random.default_rng(1)
        # write every pixel a window reads (few pages)
        OH = (H - KH) // strides[0] + 1
        OW = (W - KW) // strides[1] + 1
        sel_n = np.arange(N) if case == "one_image" else np.array([0, 1, N // 2, N - 1])
        for n in sel_n:
            for oh in range(OH):
                r0 = oh * strides[0]
                for ow in range(OW):
                    c0 = ow * strides[1]
                    x[n, r0:r0 + KH, c0:c0 + KW, :] = rng.standard_normal((KH, KW, C))
        w = _samples(x, KH, KW, strides)
        b = np.array([0.5, -0.25], np.float32)
        y = ops.conv2d(x, w, b, strides=strides)
        ym = ops.max_pool2d(x, (KH, KW), strides)
        ya = ops.avg_pool2d(x, (KH, KW), strides)
        assert y.shape == (N, OH, OW, 2) and ym.shape == ya.shape == (N, OH, OW, C)
        for n in sel_n:
            # the windows side by side in a compact array; stride = window gives the same outputs
            xs = np.zeros((1, OH * KH, OW * KW, C))
            for oh in range(OH):
                for ow in range(OW):
                    r0, c0 = oh * strides[0], ow * strides[1]
                    xs[0, oh * KH:(oh + 1) * KH, ow * KW:(ow + 1) * KW] = x[n, r0:r0 + KH, c0:c0 + KW]
            np.testing.assert_allclose(y[n:n + 1], ref_conv.conv2d(xs, w, b, (KH, KW)), rtol=1e-5,
                                       atol=1e-5)
            np.testing.assert_allclose(ym[n:n + 1], ref_conv.max_pool2d(xs, (KH, KW)), rtol=1e-6,
                                       atol=1e-6)
            np.testing.assert_allclose(ya[n:n + 1], ref_conv.avg_pool2d(xs, (KH, KW)), rtol=1e-5,
                                       atol=1e-6)
        if case == "many_images":   # images not sampled read zeros
            assert not y[2, :, :, :].any() or np.allclose(y[2], b)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward", "max_pool2d", "avg_pool2d",
                                "max_pool2d_backward", "avg_pool2d_backward"])
def test_conv_and_pool_output_overflow_refused_before_allocating(dev, op):
    """Output sizes past int64 (from zero-stride views of 2**48 elements) are a ValueError raised
    before any copy or allocation (on both compiled modules)."""
    x = dev(huge_view((2**40, 2**4, 2**4, 1)))
    w = dev(huge_view((1, 1, 1, 2**20)))           # 2**48 * 2**20 outputs
    with pytest.raises(ValueError, match="overflow"):
        if op == "conv2d":
            ops.conv2d(x, w)
        elif op == "conv2d_backward":
            ops.conv2d_backward(dev(huge_view((2**40, 2**4, 2**4, 2**2))), x, w)  # x, w decide
        else:
            # pooling: padding (just below the window) turns 1x1 images into 2**21 x 2**21
            xx = dev(huge_view((2**40, 1, 1, 2**20)))
            args = (xx, xx) if op.endswith("backward") else (xx,)
            p = 2**21 - 1
            getattr(ops, op)(*args, pool_size=2**21, strides=1, padding=((p, p), (p, p)))


def test_conv_geometry_overflow_refused(dev):
    """Strides, dilations and paddings whose arithmetic would overflow int64 are a ValueError
    (they used to be signed-overflow undefined behaviour in the geometry), on both modules."""
    x = dev(np.ones((1, 5, 5, 1), np.float32))
    w = dev(np.ones((3, 3, 1, 1), np.float32))
    for kw in [dict(dilation_rate=2**62), dict(strides=2**63 - 1, padding="same"),
               dict(padding=((2**63 - 1, 2**63 - 1), (0, 0))), dict(padding=2**62),
               dict(dilation_rate=(1, 2**62), padding="same")]:
        with pytest.raises(ValueError):
            ops.conv2d(x, w, **kw)
        with pytest.raises(ValueError):
            ops.conv2d_backward(dev(np.ones((1, 1, 1, 1), np.float32)), x, w, **kw)
    for kw in [dict(pool_size=2**63 - 1, strides=2**63 - 1, padding="same"),
               dict(pool_size=3, strides=2**63 - 1, padding="same")]:
        with pytest.raises(ValueError):
            ops.max_pool2d(x, **kw)
    # huge but representable: one output pixel, computed
    if dev.name == "cpu":  # the CUDA pooling kernel walks every tap of the window, 2**80 here
        y = ops.max_pool2d(x, pool_size=2**40, strides=2**40, padding="same")
        assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 1
    y = dev.host(ops.conv2d(x, w, strides=2**40, padding="same"))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 9   # no padding needed: the top-left 3x3


# ----------------------------------------------------------------- recurrent
@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_recurrent_output_overflow_refused_before_allocating(dev, cell):
    """N*T*(gates*U + I + U) past int64, from zero-stride views: ValueError, nothing copied."""
    G = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    N, T, I, U = 2**40, 2**20, 1, 2**4
    x = dev(huge_view((N, T, I)))
    h0 = dev(huge_view((N, U)))
    k = dev(np.ones((I, G * U), np.float32))
    r = dev(np.ones((U, G * U), np.float32))
    b = dev(np.zeros((2, G * U) if cell == "gru" else (G * U,), np.float32))
    with pytest.raises(ValueError):
        if cell == "simple_rnn":
            ops.simple_rnn(x, h0, k, r, b)
        elif cell == "lstm":
            ops.lstm(x, h0, h0, k, r, b)
        else:
            ops.gru(x, h0, k, r, b)


def test_recurrent_batch_times_steps_past_2_31_is_computed():
    """N*T*4U past 2**31 is fine when it fits: here N*T = 2**20 steps of a 1-unit LSTM from a
    zero-stride input view would need 5 * 2**20 cache floats only; check a small slice."""
    N, T, I, U = 2**12, 2**8, 1, 1
    x = huge_view((N, T, I), value=0.5)
    h0 = np.zeros((N, U), np.float32)
    k = np.full((I, 4 * U), 0.3, np.float32)
    r = np.full((U, 4 * U), -0.2, np.float32)
    b = np.zeros(4 * U, np.float32)
    hs, cT = ops.lstm(x, h0, h0, k, r, b)
    assert hs.shape == (N, T, U)
    assert np.all(hs == hs[:1])     # every sequence is the same


@pytest.mark.parametrize("C", [1, 3, 8])
@pytest.mark.parametrize("kw", [dict(dilation_rate=2**40, padding="same"),
                                dict(dilation_rate=2**62, padding="same"),
                                dict(padding=((0, 0), (2**40, 2**40)), strides=(1, 2**41)),
                                dict(strides=(2**40, 1), padding="same")])
def test_conv_huge_dilation_and_padding_computed_without_huge_buffers(C, kw):
    """Legal but huge dilations/paddings: the taps land in padding, so the output is the bias
    (or the few taps inside x). The direct kernels copy bands of padded input rows, sized by
    these parameters: where that scratch cannot exist, a MemoryError (it used to overflow:
    a segfault); otherwise the right values."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, C))
    w = rng.standard_normal((2, 2, C, 3))
    b = np.array([0.5, -1.0, 2.0])
    geo = ref_conv._geometry(x, 2, 2, kw.get("strides", 1), kw.get("padding", "valid"),
                             kw.get("dilation_rate", 1))
    dy = rng.standard_normal((2, geo[-2], geo[-1], 3))
    try:
        y = ops.conv2d(x, w, b, **kw)
    except MemoryError:
        for need_dx in (True, False):
            with pytest.raises(MemoryError):
                ops.conv2d_backward(dy, x, w, need_dx=need_dx, **kw)
        return
    dx, dw, db = ops.conv2d_backward(dy, x, w, **kw)
    _, dw2, _ = ops.conv2d_backward(dy, x, w, need_dx=False, **kw)
    if kw.get("strides") == (2**40, 1):       # one output row: the top-left taps of rows 0..1 (same padding 0)
        want = ref_conv.conv2d(x[:, :2], w, b, 1, ((0, 0), (0, 1)))
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
        return
    assert np.all(y == b)                  # every tap reads padding
    assert not dx.any() and not dw.any() and not dw2.any()
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)))
