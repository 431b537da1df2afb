"""Argument helpers shared by the convolution and pooling layers."""
import numpy as np

from .. import ops


def pair(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return t



def need_op(name):
    if not hasattr(ops, name):
        raise NotImplementedError(f"fastdl.ops.{name} is not available in this build")
    return getattr(ops, name)


def conv_out(n, k, s, d, pad):
    """Output length along one axis for padding 'valid'/'same' or explicit (before, after)."""
    if n is None:
        return None
    eff = d * (k - 1) + 1
    if pad == "same":
        return -(-n // s)
    if pad == "valid":
        return (n - eff) // s + 1 if n >= eff else 0
    lo, hi = pad
    return (n + lo + hi - eff) // s + 1


def norm_padding(padding):
    """Per-axis padding for shape computation: 'valid'/'same' or ((t,b),(l,r))."""
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same' (or explicit amounts), got {padding!r}")
        return p, p
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 2, (int(padding),) * 2
    a, b = padding
    if isinstance(a, (int, np.integer)):
        return (int(a), int(a)), (int(b), int(b))
    return tuple(int(v) for v in a), tuple(int(v) for v in b)


def padding_arg(padding):
    return padding.lower() if isinstance(padding, str) else padding


def jsonable(v):
    if isinstance(v, (list, tuple)):
        return [jsonable(a) for a in v]
    return v
