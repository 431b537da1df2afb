"""NumPy references for the activation, softmax, loss and optimizer kernels."""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def sparse_xent(logits, labels):
    lp = log_softmax(logits.astype(np.float64))
    n = len(labels)
    loss = -lp[np.arange(n), labels].mean()
    d = np.exp(lp)
    d[np.arange(n), labels] -= 1
    return loss, d / n


def adam(p, g, m, v, t, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    p = p - lr * wd * p
    m = m + (g - m) * (1 - b1)
    v = v + (g * g - v) * (1 - b2)
    a = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return p - a * m / (np.sqrt(v) + eps), m, v


def sgd(p, g, m, lr=0.01, momentum=0.0, nesterov=False, wd=0.0):
    p = p - lr * wd * p
    if momentum == 0:
        return p - lr * g, m
    m = momentum * m - lr * g
    return (p + momentum * m - lr * g if nesterov else p + m), m


def rmsprop(p, g, v, mom, lr=0.001, rho=0.9, momentum=0.0, eps=1e-7):
    v = rho * v + (1 - rho) * g * g
    inc = lr * g / np.sqrt(v + eps)
    if momentum > 0:
        mom = momentum * mom + inc
        return p - mom, v, mom
    return p - inc, v, mom


def numeric_grad(f, x, idx_list, h=1e-6):
    """Central differences of scalar f() w.r.t. x at the flat indices given."""
    flat = x.reshape(-1)
    out = []
    for i in idx_list:
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * h))
    return np.array(out)
