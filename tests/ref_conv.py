"""Plain NumPy references for convolution and pooling (channels-last), the
oracles of test_conv.py and test_pool.py. Written for clarity: loops over the
window taps (convolution) or the output pixels (pooling), never im2col."""
import math

import numpy as np


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def pads_for(H, W, KH, KW, strides, padding, dilation=1):
    """(top, bottom, left, right) for a Keras padding spec."""
    sh, sw = pair(strides)
    dh, dw = pair(dilation)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0, 0, 0)
        out = []
        for n, k, s, d in ((H, KH, sh, dh), (W, KW, sw, dw)):
            o = math.ceil(n / s)
            total = max((o - 1) * s + (k - 1) * d + 1 - n, 0)
            out += [total // 2, total - total // 2]
        return tuple(out)
    if isinstance(padding, int):
        return (padding,) * 4
    a, b = padding
    if isinstance(a, int):
        return (a, a, b, b)
    return (a[0], a[1], b[0], b[1])


def _geometry(x, KH, KW, strides, padding, dilation):
    N, H, W, C = x.shape
    sh, sw = pair(strides)
    dh, dw = pair(dilation)
    pt, pb, pl, pr = pads_for(H, W, KH, KW, strides, padding, dilation)
    OH = (H + pt + pb - (KH - 1) * dh - 1) // sh + 1
    OW = (W + pl + pr - (KW - 1) * dw - 1) // sw + 1
    return sh, sw, dh, dw, (pt, pb, pl, pr), OH, OW


def conv2d(x, w, b=None, strides=1, padding="valid", dilation=1):
    KH, KW, C, F = w.shape
    sh, sw, dh, dw, (pt, pb, pl, pr), OH, OW = _geometry(x, KH, KW, strides, padding, dilation)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((x.shape[0], OH, OW, F), dtype=np.float64)
    for kh in range(KH):
        for kw in range(KW):
            xs = xp[:, kh * dh: kh * dh + (OH - 1) * sh + 1: sh,
                    kw * dw: kw * dw + (OW - 1) * sw + 1: sw, :]
            y += xs.astype(np.float64) @ w[kh, kw].astype(np.float64)
    if b is not None:
        y += b
    return y


def conv2d_backward(dy, x, w, strides=1, padding="valid", dilation=1):
    KH, KW, C, F = w.shape
    N, H, W, _ = x.shape
    sh, sw, dh, dw, (pt, pb, pl, pr), OH, OW = _geometry(x, KH, KW, strides, padding, dilation)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))).astype(np.float64)
    dxp = np.zeros_like(xp)
    dwk = np.zeros((KH, KW, C, F))
    dy = dy.astype(np.float64)
    for kh in range(KH):
        for kw in range(KW):
            sl = (slice(None), slice(kh * dh, kh * dh + (OH - 1) * sh + 1, sh),
                  slice(kw * dw, kw * dw + (OW - 1) * sw + 1, sw), slice(None))
            dwk[kh, kw] = xp[sl].reshape(-1, C).T @ dy.reshape(-1, F)
            dxp[sl] += dy @ w[kh, kw].T.astype(np.float64)
    dx = dxp[:, pt:pt + H, pl:pl + W, :]
    return dx, dwk, dy.sum(axis=(0, 1, 2))


def _block_diagonal(w):
    """Depthwise kernel (KH,KW,C,M) as the conv2d kernel (KH,KW,C,C*M) it equals."""
    KH, KW, C, M = w.shape
    full = np.zeros((KH, KW, C, C * M))
    for c in range(C):
        full[:, :, c, c * M:(c + 1) * M] = w[:, :, c, :]
    return full


def depthwise_conv2d(x, w, b=None, strides=1, padding="valid", dilation=1):
    """Depthwise convolution as conv2d with a block-diagonal kernel."""
    return conv2d(x, _block_diagonal(w), b, strides, padding, dilation)


def depthwise_conv2d_backward(dy, x, w, strides=1, padding="valid", dilation=1):
    C, M = w.shape[2:]
    dx, dfull, db = conv2d_backward(dy, x, _block_diagonal(w), strides, padding, dilation)
    dw = np.stack([dfull[:, :, c, c * M:(c + 1) * M] for c in range(C)], axis=2)
    return dx, dw, db


def _windows(x, pool, strides, padding):
    """Yields (oh, ow, rows, cols) with the window's in-bounds input ranges."""
    KH, KW = pair(pool)
    strides = pair(pool if strides is None else strides)
    N, H, W, C = x.shape
    sh, sw, _, _, (pt, pb, pl, pr), OH, OW = _geometry(x, KH, KW, strides, padding, 1)
    for oh in range(OH):
        for ow in range(OW):
            r0, c0 = oh * sh - pt, ow * sw - pl
            rows = range(max(r0, 0), min(r0 + KH, H))
            cols = range(max(c0, 0), min(c0 + KW, W))
            yield oh, ow, rows, cols
    return OH, OW


def _out_shape(x, pool, strides, padding):
    KH, KW = pair(pool)
    strides = pair(pool if strides is None else strides)
    _, _, _, _, _, OH, OW = _geometry(x, KH, KW, strides, padding, 1)
    return (x.shape[0], OH, OW, x.shape[3])


def max_pool2d(x, pool=2, strides=None, padding="valid"):
    y = np.empty(_out_shape(x, pool, strides, padding), x.dtype)
    for oh, ow, rows, cols in _windows(x, pool, strides, padding):
        y[:, oh, ow, :] = x[:, rows.start:rows.stop, cols.start:cols.stop, :].max(axis=(1, 2))
    return y


def max_pool2d_backward(dy, x, pool=2, strides=None, padding="valid"):
    """Each dy goes to the first (row-major) maximum of its window."""
    N, H, W, C = x.shape
    dx = np.zeros(x.shape, np.float64)
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for oh, ow, rows, cols in _windows(x, pool, strides, padding):
        win = x[:, rows.start:rows.stop, cols.start:cols.stop, :].reshape(N, len(rows) * len(cols), C)
        first = win.argmax(axis=1)  # argmax returns the first maximum
        r = rows.start + first // len(cols)
        c = cols.start + first % len(cols)
        np.add.at(dx, (n_idx, r, c, c_idx), dy[:, oh, ow, :])
    return dx


def max_pool2d_argmax(x, pool=2, strides=None, padding="valid"):
    """The uint8 codes of max_pool2d(..., return_argmax=True): the tap kh * KW + kw of
    each window's first maximum (a running maximum over the taps in row-major order,
    replaced only by a larger value, so a NaN counts only as the first tap), +128
    where that maximum is not positive, 255 where it is NaN."""
    KH, KW = pair(pool)
    st = pair(pool if strides is None else strides)
    sh, sw, _, _, (pt, pb, pl, pr), OH, OW = _geometry(x, KH, KW, st, padding, 1)
    codes = np.empty(_out_shape(x, pool, strides, padding), np.uint8)
    for oh, ow, rows, cols in _windows(x, pool, strides, padding):
        r0, c0 = oh * sh - pt, ow * sw - pl
        m = tap = None
        for r in rows:
            for c in cols:
                v = x[:, r, c, :]
                t = (r - r0) * KW + (c - c0)
                if m is None:
                    m, tap = v.copy(), np.full(v.shape, t)
                else:
                    gt = v > m
                    m = np.where(gt, v, m)
                    tap = np.where(gt, t, tap)
        code = tap + np.where(m > 0, 0, 128)
        codes[:, oh, ow, :] = np.where(np.isnan(m), 255, code)
    return codes


def avg_pool2d(x, pool=2, strides=None, padding="valid"):
    y = np.empty(_out_shape(x, pool, strides, padding), np.float64)
    for oh, ow, rows, cols in _windows(x, pool, strides, padding):
        y[:, oh, ow, :] = x[:, rows.start:rows.stop, cols.start:cols.stop, :].mean(axis=(1, 2))
    return y


def avg_pool2d_backward(dy, x, pool=2, strides=None, padding="valid"):
    dx = np.zeros(x.shape, np.float64)
    for oh, ow, rows, cols in _windows(x, pool, strides, padding):
        cnt = len(rows) * len(cols)
        dx[:, rows.start:rows.stop, cols.start:cols.stop, :] += (dy[:, oh, ow, :] / cnt)[:, None, None, :]
    return dx
