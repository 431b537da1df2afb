"""Argument helpers shared by the convolution and pooling layers."""
from .. import ops


def pair(v, name):
    """int or pair of ints -> (a, b), both positive (ops' one parser)."""
    return ops._pair(v, name)


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
    """Per-axis padding for shape computation: ('same', 'same') or ((t, b), (l, r)),
    from ops' one padding parser."""
    same, (t, b, l, r) = ops._padding(padding)
    return ("same", "same") if same else ((t, b), (l, r))


def padding_arg(padding):
    return padding.lower() if isinstance(padding, str) else padding


def jsonable(v):
    if isinstance(v, (list, tuple)):
        return [jsonable(a) for a in v]
    return v
