"""The one place that knows NumPy from CuPy.

Layers, models, optimizers and the trainer ask this module for the array
module of an array, for host copies and for allocators on a device; none of
them checks array types itself.
"""
import sys

import numpy as np

from . import _memory


def is_device(a):
    """True for a GPU array: a CuPy array, or anything exposing ``__cuda_array_interface__``."""
    t = type(a)
    return t is not np.ndarray and (t.__module__.split(".", 1)[0] == "cupy" or
                                    hasattr(a, "__cuda_array_interface__"))


def xp(a):
    """numpy, or the module (cupy) of a device array."""
    if type(a) is np.ndarray or not is_device(a):
        return np
    return sys.modules[type(a).__module__.split(".", 1)[0]]


def to_host(a):
    """A NumPy array with a's values (a itself when it already is one)."""
    if type(a) is np.ndarray:
        return a
    get = getattr(a, "get", None)
    return get() if callable(get) else np.asarray(a)


def allocator(probe):
    """(shape, dtype) -> an uninitialised array on the device of ``probe``
    (64-byte aligned NumPy arrays on the host)."""
    if not is_device(probe):
        return _memory.empty
    mod = xp(probe)
    return lambda shape, dtype: mod.empty(shape, dtype)


def mover(device):
    """A function moving an array to ``device`` ('cpu' or 'cuda'; arrays already there pass)."""
    if device == "cpu":
        return to_host
    import cupy

    def to_gpu(a):
        return a if is_device(a) else cupy.asarray(a)
    return to_gpu


def parse(device):
    """'cpu' or 'cuda' from what a user may write ('gpu', 'cuda:0', ...)."""
    d = str(device).lower()
    if d in ("cuda", "gpu") or d.startswith("cuda:") or d.startswith("gpu:"):
        return "cuda"
    if d == "cpu" or d.startswith("cpu:"):
        return "cpu"
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")


def assign(dst, src):
    """Copy src's values into the live array dst (any devices)."""
    if type(dst) is np.ndarray:
        np.copyto(dst, to_host(src), casting="unsafe")
    else:
        dst[...] = xp(dst).asarray(src, dtype=dst.dtype)


def as_batch(x, dtype=None):
    """A NumPy or device array from what a user passes as a batch."""
    if type(x) is np.ndarray or is_device(x):
        return x
    x = np.asarray(x)
    if x.dtype.kind not in "f" and dtype is not None:
        x = x.astype(dtype)
    return x


def has_kernels(a):
    """fastdl's compiled kernels take a's kind of array: NumPy always, device arrays when
    the CUDA module is usable."""
    if type(a) is np.ndarray:
        return True
    if not is_device(a):
        return False
    from . import ops
    return ops._cuda_module() is not None
