"""The keras.ops functions are array-library agnostic: CuPy arrays in, CuPy arrays out.

Without a GPU this runs the OpInfo table (test_autodiff_ops) through a stand-in `cupy`
module whose arrays are a NumPy subclass living in a module named 'cupy': every op must
pick its array module from its inputs (never fall back to NumPy for the result), and
forward values and tape gradients must equal the NumPy ones. Ops that run fastdl's C++/CUDA
kernels (conv, pools) are exercised by test_cuda.py on a real GPU instead.
"""
import sys
import types

import numpy as np
import pytest

from fastdl import ops
from fastdl._tape import GradientTape

import test_autodiff_ops as table

KERNEL_OPS = {"conv", "conv_transpose", "max_pool", "average_pool"}


def _make_fake_cupy():
    cp = types.ModuleType("cupy")

    def check(values):
        # like CuPy: a NumPy array (not a scalar) mixed into a device operation is an error
        for x in values:
            if isinstance(x, (tuple, list)):
                check(x)
            elif type(x) is np.ndarray and x.ndim > 0:
                raise TypeError("fake cupy: a NumPy array was mixed into a device operation")

    class ndarray(np.ndarray):
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            check(inputs)
            check(kwargs.get("out", ()))
            host = tuple(x.view(np.ndarray) if isinstance(x, ndarray) else x for x in inputs)
            if "out" in kwargs:
                kwargs["out"] = tuple(o.view(np.ndarray) for o in kwargs["out"])
            return wrap(getattr(ufunc, method)(*host, **kwargs))
    ndarray.__module__ = "cupy"

    def wrap(x):
        if isinstance(x, np.ndarray) and not isinstance(x, ndarray):
            return x.view(ndarray)
        if isinstance(x, np.generic):
            return np.asarray(x).view(ndarray)
        if isinstance(x, tuple):
            return tuple(wrap(e) for e in x)
        if isinstance(x, list):
            return [wrap(e) for e in x]
        return x

    def wrapped(fn):
        def call(*a, **k):
            check(a)
            check(list(k.values()))
            return wrap(fn(*a, **k))
        return call

    def module_getattr(name):
        obj = getattr(np, name)
        if isinstance(obj, np.ufunc) or isinstance(obj, type) or not callable(obj):
            return obj
        return wrapped(obj)
    cp.__getattr__ = module_getattr
    cp.ndarray = ndarray
    cp.asarray = lambda a, dtype=None: np.asarray(a, dtype).view(ndarray)
    cp.asnumpy = lambda a: np.asarray(a).view(np.ndarray)
    cp.linalg = types.SimpleNamespace(**{n: wrapped(getattr(np.linalg, n)) for n in
                                         ("inv", "det", "solve", "norm", "cholesky", "qr", "svd",
                                          "eig", "eigh", "slogdet")})
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = wrapped(lambda a, idx, v: np.add.at(a, idx, v))
    cupyx.scatter_max = wrapped(lambda a, idx, v: np.maximum.at(a, idx, v))
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = wrapped(table.np_erf)
    scipy_mod = types.ModuleType("cupyx.scipy")
    scipy_mod.special = special
    cupyx.scipy = scipy_mod
    return cp, cupyx, {"cupyx.scipy": scipy_mod, "cupyx.scipy.special": special}, ndarray


@pytest.fixture
def fake_cupy(monkeypatch):
    real = sys.modules.get("cupy")
    if real is not None and hasattr(real, "cuda") and hasattr(real.cuda, "runtime"):
        pytest.skip("real CuPy is loaded; test_cuda.py covers it")
    cp, cupyx, subs, ndarray = _make_fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    for k, v in subs.items():
        monkeypatch.setitem(sys.modules, k, v)
    return cp, ndarray


def _cases():
    for info in table.OPS:
        if info.name in KERNEL_OPS:
            continue
        for i, (args, kwargs) in enumerate(info.samples):
            if any(isinstance(a, np.ndarray) and a.size == 0 for a in args):
                continue  # empty inputs: covered on the host
            yield pytest.param(info, args, kwargs, id=f"{info.name}-{i}")


def _to_dev(cp, a):
    return cp.asarray(a) if isinstance(a, np.ndarray) else a


def _grads(info, args, kwargs, ws):
    diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    with GradientTape() as tape:
        tape.watch([args[i] for i in diff])
        outs = table._flat_out(info.fn(*args, **kwargs))
        target = ops.sum(ops.stack([ops.sum(ops.multiply(o, w)) for o, w in zip(outs, ws)]))
    if not hasattr(target, "node"):
        return outs, []
    return outs, tape.gradient(target, [args[i] for i in diff])


@pytest.mark.parametrize("info,args,kwargs", list(_cases()))
def test_op_keeps_device_arrays(fake_cupy, info, args, kwargs):
    cp, dev_type = fake_cupy
    host_outs = table._flat_out(info.fn(*args, **kwargs))
    ws = [np.asarray(table._rng(7 + i).standard_normal(np.shape(o)))
          for i, o in enumerate(host_outs)]
    dargs = [_to_dev(cp, a) for a in args]
    outs, grads = _grads(info, dargs, kwargs, [cp.asarray(w) for w in ws])
    _, host_grads = _grads(info, list(args), kwargs, ws)
    for o, h in zip(outs, host_outs):
        o = getattr(o, "value", o)
        assert type(o) is dev_type, f"{info.name}: output left the device ({type(o)})"
        np.testing.assert_allclose(np.asarray(o), h, rtol=1e-10, atol=1e-12)
    assert len(grads) == len(host_grads)
    for g, h in zip(grads, host_grads):
        if h is None:
            assert g is None
            continue
        assert type(g) is dev_type, f"{info.name}: gradient left the device ({type(g)})"
        np.testing.assert_allclose(np.asarray(g), h, rtol=1e-9, atol=1e-12)
