"""Step-by-step NumPy references for the recurrent kernels (Keras semantics).

Each takes x (N, T, I) and Keras-layout weights and loops over the timesteps in
plain NumPy, in the dtype of its inputs. The backward references walk the steps
in reverse (plain backpropagation through time); the tests also check them,
and the kernels, against finite differences.
"""
import numpy as np


def sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z gives exactly 0
        return 1.0 / (1.0 + np.exp(-z))


# ----------------------------------------------------------------- forward
def simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation="tanh"):
    act = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = act(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        hs.append(h)
    return np.stack(hs, axis=1)


def lstm(x, h0, c0, kernel, recurrent_kernel, bias):
    """(hs, c_T); gates i, f, c~, o in Keras order."""
    U = h0.shape[1]
    h, c, hs = h0, c0, []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f = sigmoid(z[:, :U]), sigmoid(z[:, U:2 * U])
        g, o = np.tanh(z[:, 2 * U:3 * U]), sigmoid(z[:, 3 * U:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, axis=1), c


def gru(x, h0, kernel, recurrent_kernel, bias):
    """Keras GRU with reset_after=True; bias (2, 3U): input bias, recurrent bias."""
    U = h0.shape[1]
    h, hs = h0, []
    for t in range(x.shape[1]):
        xp = x[:, t] @ kernel + bias[0]
        hp = h @ recurrent_kernel + bias[1]
        z = sigmoid(xp[:, :U] + hp[:, :U])
        r = sigmoid(xp[:, U:2 * U] + hp[:, U:2 * U])
        hh = np.tanh(xp[:, 2 * U:] + r * hp[:, 2 * U:])
        h = z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, axis=1)


# ----------------------------------------------------------------- backward
def _dh_at(dhs, t, T):
    """Gradient reaching h_t from the loss: dhs is (N,T,U) or (N,U) (last step only)."""
    if dhs.ndim == 3:
        return dhs[:, t]
    return dhs if t == T - 1 else np.zeros_like(dhs)


def simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, bias, activation="tanh"):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias)."""
    T = x.shape[1]
    hs = simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation)
    dx = np.zeros_like(x)
    dW, dR, db = np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros_like(bias)
    dh = np.zeros_like(h0)
    for t in reversed(range(T)):
        h = hs[:, t]
        hprev = h0 if t == 0 else hs[:, t - 1]
        dh = dh + _dh_at(dhs, t, T)
        dz = dh * ((1 - h * h) if activation == "tanh" else (h > 0))
        dx[:, t] = dz @ kernel.T
        dW += x[:, t].T @ dz
        dR += hprev.T @ dz
        db += dz.sum(0)
        dh = dz @ recurrent_kernel.T
    return dx, dh, dW, dR, db


def lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, bias):
    """(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dc_T may be None."""
    N, T, _ = x.shape
    U = h0.shape[1]
    h, c, saved = h0, c0, []
    for t in range(T):  # forward again, keeping every step
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f = sigmoid(z[:, :U]), sigmoid(z[:, U:2 * U])
        g, o = np.tanh(z[:, 2 * U:3 * U]), sigmoid(z[:, 3 * U:])
        saved.append((h, c, i, f, g, o))
        c = f * c + i * g
        h = o * np.tanh(c)
    dx = np.zeros_like(x)
    dW, dR, db = np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros_like(bias)
    dh = np.zeros_like(h0)
    dc = np.zeros_like(c0) if dc_T is None else dc_T.copy()
    for t in reversed(range(T)):
        hprev, cprev, i, f, g, o = saved[t]
        c = f * cprev + i * g
        tc = np.tanh(c)
        dh = dh + _dh_at(dhs, t, T)
        dc = dc + dh * o * (1 - tc * tc)
        dz = np.concatenate([dc * g * i * (1 - i), dc * cprev * f * (1 - f),
                             dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
        dx[:, t] = dz @ kernel.T
        dW += x[:, t].T @ dz
        dR += hprev.T @ dz
        db += dz.sum(0)
        dh = dz @ recurrent_kernel.T
        dc = dc * f
    return dx, dh, dc, dW, dR, db


def gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias)."""
    N, T, _ = x.shape
    U = h0.shape[1]
    h, saved = h0, []
    for t in range(T):
        xp = x[:, t] @ kernel + bias[0]
        hp = h @ recurrent_kernel + bias[1]
        z = sigmoid(xp[:, :U] + hp[:, :U])
        r = sigmoid(xp[:, U:2 * U] + hp[:, U:2 * U])
        hh = np.tanh(xp[:, 2 * U:] + r * hp[:, 2 * U:])
        saved.append((h, z, r, hh, hp[:, 2 * U:]))
        h = z * h + (1 - z) * hh
    dx = np.zeros_like(x)
    dW, dR, db = np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros_like(bias)
    dh = np.zeros_like(h0)
    for t in reversed(range(T)):
        hprev, z, r, hh, hrec = saved[t]
        dh = dh + _dh_at(dhs, t, T)
        dz = dh * (hprev - hh) * z * (1 - z)
        dhh = dh * (1 - z) * (1 - hh * hh)
        dr = dhh * hrec * r * (1 - r)
        dgx = np.concatenate([dz, dr, dhh], axis=1)
        dgh = np.concatenate([dz, dr, dhh * r], axis=1)
        dx[:, t] = dgx @ kernel.T
        dW += x[:, t].T @ dgx
        dR += hprev.T @ dgh
        db[0] += dgx.sum(0)
        db[1] += dgh.sum(0)
        dh = dh * z + dgh @ recurrent_kernel.T
    return dx, dh, dW, dR, db
