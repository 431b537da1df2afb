"""Plain NumPy references for the CUDA kernel tests (tests/test_cuda.py).

Written for clarity, not speed: loops over window taps and time steps.
"""
import numpy as np


# ----------------------------------------------------------------- geometry
def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_pad(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, H, W, kh, kw, sh, sw, dh=1, dw=1):
    """((top, bottom), (left, right)) for any padding form."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0), (0, 0)
        return same_pad(H, kh, sh, dh), same_pad(W, kw, sw, dw)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    ph, pw = padding
    ph = (ph, ph) if isinstance(ph, int) else tuple(ph)
    pw = (pw, pw) if isinstance(pw, int) else tuple(pw)
    return ph, pw


def out_size(size, k, s, d, lo, hi):
    return (size + lo + hi - ((k - 1) * d + 1)) // s + 1


# ----------------------------------------------------------------- conv2d
def conv2d(x, w, b=None, strides=1, padding="valid", dilation_rate=1):
    N, H, W, C = x.shape
    KH, KW, _, F = w.shape
    sh, sw = pair(strides)
    dh, dw = pair(dilation_rate)
    (pt, pb), (pl, pr) = resolve_padding(padding, H, W, KH, KW, sh, sw, dh, dw)
    OH, OW = out_size(H, KH, sh, dh, pt, pb), out_size(W, KW, sw, dw, pl, pr)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((N, OH, OW, F), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dh, kw * dw
            patch = xp[:, h0:h0 + (OH - 1) * sh + 1:sh, w0:w0 + (OW - 1) * sw + 1:sw, :]
            y += patch @ w[kh, kw]
    if b is not None:
        y += b
    return y


def conv2d_backward(dy, x, w, strides=1, padding="valid", dilation_rate=1):
    N, H, W, C = x.shape
    KH, KW, _, F = w.shape
    sh, sw = pair(strides)
    dh, dw_ = pair(dilation_rate)
    (pt, pb), (pl, pr) = resolve_padding(padding, H, W, KH, KW, sh, sw, dh, dw_)
    OH, OW = dy.shape[1:3]
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dh, kw * dw_
            sl = (slice(None), slice(h0, h0 + (OH - 1) * sh + 1, sh),
                  slice(w0, w0 + (OW - 1) * sw + 1, sw), slice(None))
            dw[kh, kw] = np.einsum("nhwc,nhwf->cf", xp[sl], dy)
            dxp[sl] += dy @ w[kh, kw].T
    dx = dxp[:, pt:pt + H, pl:pl + W, :]
    return dx, dw, dy.sum(axis=(0, 1, 2))


# ----------------------------------------------------------------- pooling
def _windows(x, pool_size, strides, padding):
    N, H, W, C = x.shape
    kh, kw = pair(pool_size)
    sh, sw = pair(strides if strides is not None else pool_size)
    (pt, pb), (pl, pr) = resolve_padding(padding, H, W, kh, kw, sh, sw)
    OH, OW = out_size(H, kh, sh, 1, pt, pb), out_size(W, kw, sw, 1, pl, pr)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - pt, ow * sw - pl
            taps = [(h, w) for h in range(h0, h0 + kh) for w in range(w0, w0 + kw)
                    if 0 <= h < H and 0 <= w < W]
            yield oh, ow, taps, (OH, OW)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    y = None
    for oh, ow, taps, (OH, OW) in _windows(x, pool_size, strides, padding):
        if y is None:
            y = np.zeros((x.shape[0], OH, OW, x.shape[3]), x.dtype)
        if taps:
            y[:, oh, ow, :] = np.max([x[:, h, w, :] for h, w in taps], axis=0)
    return y


def max_pool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    dx = np.zeros_like(x)
    N, _, _, C = x.shape
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for oh, ow, taps, _ in _windows(x, pool_size, strides, padding):
        if not taps:
            continue
        vals = np.stack([x[:, h, w, :] for h, w in taps])  # (taps, N, C)
        first = np.argmax(vals, axis=0)                      # first maximum
        hs = np.array([t[0] for t in taps])[first]
        ws = np.array([t[1] for t in taps])[first]
        np.add.at(dx, (n_idx, hs, ws, c_idx), dy[:, oh, ow, :])
    return dx


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    y = None
    for oh, ow, taps, (OH, OW) in _windows(x, pool_size, strides, padding):
        if y is None:
            y = np.zeros((x.shape[0], OH, OW, x.shape[3]), x.dtype)
        if taps:
            y[:, oh, ow, :] = np.mean([x[:, h, w, :] for h, w in taps], axis=0)
    return y


def avg_pool2d_backward(dy, x, pool_size=2, strides=None, padding="valid"):
    dx = np.zeros_like(x)
    for oh, ow, taps, _ in _windows(x, pool_size, strides, padding):
        for h, w in taps:
            dx[:, h, w, :] += dy[:, oh, ow, :] / len(taps)
    return dx


# ----------------------------------------------------------------- activations and losses
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def sparse_softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    lp = log_softmax(logits.astype(np.float64))
    loss = -lp[np.arange(n), labels].mean()
    d = np.exp(lp)
    d[np.arange(n), labels] -= 1.0
    return loss, (d / n).astype(logits.dtype)


# ----------------------------------------------------------------- optimizers (Keras 3)
def sgd(p, g, m, lr, momentum=0.0, nesterov=False, weight_decay=None):
    p = p - p * (weight_decay or 0.0) * lr
    if momentum:
        m = momentum * m - lr * g
        p = p + (momentum * m - lr * g if nesterov else m)
    else:
        p = p - lr * g
    return p, m


def adam(p, g, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay=None):
    p = p - p * (weight_decay or 0.0) * lr
    lr_t = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    return p - lr_t * m / (np.sqrt(v) + epsilon), m, v


def rmsprop(p, g, v, mom, lr, rho, momentum, epsilon, weight_decay=None):
    p = p - p * (weight_decay or 0.0) * lr
    v = rho * v + (1 - rho) * g * g
    inc = lr * g / np.sqrt(v + epsilon)
    if momentum > 0:
        mom = momentum * mom + inc
        return p - mom, v, mom
    return p - inc, v, mom


# ----------------------------------------------------------------- recurrent layers (Keras)
_ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": sigmoid,
        "linear": lambda z: z}


def simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation="tanh"):
    N, T, _ = x.shape
    h = h0
    hs = []
    for t in range(T):
        z = x[:, t] @ kernel + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        h = _ACT[activation](z)
        hs.append(h)
    return np.stack(hs, axis=1) if hs else np.zeros((N, 0, kernel.shape[1]), x.dtype)


def lstm(x, h0, c0, kernel, recurrent_kernel, bias):
    U = h0.shape[1]
    h, c = h0, c0
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        i, f, g, o = (z[:, k * U:(k + 1) * U] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        hs.append(h)
    return np.stack(hs, axis=1), c


def gru(x, h0, kernel, recurrent_kernel, bias):
    U = h0.shape[1]
    b_in = bias[0] if bias is not None else 0
    b_rec = bias[1] if bias is not None else 0
    h = h0
    hs = []
    for t in range(x.shape[1]):
        xz = x[:, t] @ kernel + b_in
        rz = h @ recurrent_kernel + b_rec
        z = sigmoid(xz[:, :U] + rz[:, :U])
        r = sigmoid(xz[:, U:2 * U] + rz[:, U:2 * U])
        hh = np.tanh(xz[:, 2 * U:] + r * rz[:, 2 * U:])
        h = z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, axis=1)
