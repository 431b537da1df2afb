"""A stand-in for CuPy on NumPy, for running fastdl's CUDA tests against the CPU
emulation of the kernels (see README.md). Arrays are NumPy arrays of a subclass
defined here (so fastdl sees a 'cupy' array) exposing __cuda_array_interface__
with host pointers. New arrays from empty() are filled with NaN, so a kernel
that forgets to write an output element is caught."""
import numpy as np

float32, float64, int32, int64 = np.float32, np.float64, np.int32, np.int64
nan = np.nan


class ndarray(np.ndarray):
    @property
    def __cuda_array_interface__(self):
        ai = self.__array_interface__
        return {"shape": ai["shape"], "typestr": ai["typestr"], "data": ai["data"],
                "strides": ai["strides"], "version": 3, "stream": 1}


def _wrap(a):
    return np.asarray(a).view(ndarray)


def asarray(a, dtype=None):
    return _wrap(np.array(a, dtype=dtype, copy=True))


def asnumpy(a):
    return np.array(a, copy=True).view(np.ndarray)


def empty(shape, dtype=np.float64):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return _wrap(np.full(shape, np.nan, dtype))
    return _wrap(np.zeros(shape, dtype))


def zeros(shape, dtype=np.float64):
    return _wrap(np.zeros(shape, dtype))


def ones(shape, dtype=np.float64):
    return _wrap(np.ones(shape, dtype))


def full(shape, value, dtype=None):
    return _wrap(np.full(shape, value, dtype))


def ascontiguousarray(a, dtype=None):
    return _wrap(np.ascontiguousarray(a, dtype=dtype))


def copyto(dst, src):
    np.copyto(dst, src)


class _Stream:
    ptr = 0


class cuda:  # noqa: N801 (mirrors cupy.cuda)
    @staticmethod
    def get_current_stream():
        return _Stream()


def __getattr__(name):
    """Any other NumPy function (cupy mirrors NumPy's API): computed by NumPy, array
    results returned as this module's arrays."""
    f = getattr(np, name)
    if not callable(f) or isinstance(f, type):
        return f

    def on_device(*args, **kwargs):
        out = f(*args, **kwargs)
        if isinstance(out, np.ndarray):
            return out.view(ndarray)
        if isinstance(out, (list, tuple)):
            return type(out)(o.view(ndarray) if isinstance(o, np.ndarray) else o for o in out)
        return out
    on_device.__name__ = name
    return on_device
