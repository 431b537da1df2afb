"""Keras' ``Variable`` and the arrays ``ops.convert_to_tensor`` returns.

Both are NumPy ndarray subclasses, so the C++ kernels take them as they are (the
buffer protocol; no copy, no unwrapping) and every NumPy function works on them.
Each holds, as ``.value``, the plain ndarray that owns its data (the Variable is a
view of it): the differentiable ops compute on that plain array, so their fast
paths (``type(a) is np.ndarray``) apply, and the optimizers' in-place updates
through either object are seen by both.

What the subclass adds is tape awareness. While a GradientTape records and the
array takes part in the recording (a trainable Variable, or anything the tape
watches), Python operators (``w ** 2``, ``x * x``, ``w @ v``, ``-w``, ``w[0]``,
``w.T``) run the fastdl.ops function and are recorded; a NumPy function or ufunc
the tape cannot follow raises, naming it. Everywhere else arithmetic on them
gives plain ndarrays, at NumPy's cost, never new Variables.
"""
import numpy as np

from . import _tape

__all__ = ["Variable", "EagerTensor"]

_nd = np.ndarray


class _Keep:
    __slots__ = ("__array_interface__", "owner")


def _plain(x):
    """x's plain ndarray when x is one of these subclasses, else x."""
    return x.value if isinstance(x, Traceable) else x


def _plain_all(xs):
    return tuple(x.value if isinstance(x, Traceable) else x for x in xs)


class Traceable(np.ndarray):
    """The base of Variable and EagerTensor: tape-aware operators on an ndarray view."""
    __slots__ = ("value",)
    # Operators with a plain ndarray on either side reach our __array_ufunc__ (a subclass is
    # asked first); with a traced Tensor (priority 1000) on the other side, Tensor's run.
    __array_priority__ = 100

    def __array_finalize__(self, obj):
        # A view of one of ours that NumPy made itself (a method not overridden below, such
        # as swapaxes): its `value` is a plain array over the same memory that keeps the
        # owner alive (not this view: that would be a cycle the GC cannot see through).
        if isinstance(obj, Traceable):
            keep = _Keep()
            keep.__array_interface__ = {
                "shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "strides": self.strides,
                "data": (self.__array_interface__["data"][0], not self.flags.writeable)}
            keep.owner = obj.value
            object.__setattr__(self, "value", np.asarray(keep))
            if isinstance(self, Variable):
                # not a variable of its own: a non-trainable view without a layer
                for k, v in (("name", obj.name), ("_path", None), ("_trainable", False),
                             ("_layer", None)):
                    object.__setattr__(self, k, v)

    # ---------------------------------------------------------------- the tape
    def _tracked(self):
        """True when a recording tape follows this array, or a layer's call is captured
        (fastdl/_replay.py: what is computed from a weight is a step of it, not a constant)."""
        tapes = _tape._state.active
        return bool(tapes) and (_tape._track(self, tapes) is not None or
                                _tape._state.capture is not None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # (an in-place write, out=..., is an assignment: never recorded, as assign())
        if _tape._state.active and "out" not in kwargs:
            tapes = _tape._state.active
            capture = _tape._state.capture
            if capture is not None and not (method == "__call__" and not kwargs):
                _tape._side_effect(f"numpy.{ufunc.__name__}.{method} on a variable")
            if any(isinstance(a, (Traceable, _tape.Tensor)) and (
                    _tape._track(a, tapes) is not None or capture is not None) for a in inputs):
                if method == "__call__" and not kwargs:
                    # the fastdl.ops function of the ufunc's name (power, square, exp, ...)
                    fn = getattr(_tape._ops(), _tape._UFUNC_OPS.get(ufunc.__name__,
                                                                   ufunc.__name__), None)
                    if fn is not None:
                        return fn(*inputs)
                if method == "reduce" and ufunc is np.add and "out" not in kwargs and \
                        set(kwargs) <= {"axis", "keepdims", "dtype"} and \
                        kwargs.get("dtype") is None:
                    return _tape._ops().sum(inputs[0], axis=kwargs.get("axis"),
                                            keepdims=bool(kwargs.get("keepdims", False)))
                raise TypeError(
                    f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} cannot "
                    f"be traced by fastdl's autodiff on a value the GradientTape follows (a "
                    f"trainable Variable or a watched array): the gradient would be lost. Use "
                    f"the fastdl.ops function (fastdl.ops."
                    f"{_tape._UFUNC_OPS.get(ufunc.__name__, ufunc.__name__)}) instead")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _plain_all(out)
        res = getattr(ufunc, method)(*_plain_all(inputs), **kwargs)
        if out is not None:
            # in place (w += 1, np.add(a, b, out=w)): the objects written to, as NumPy returns
            return out[0] if len(out) == 1 else tuple(out)
        return res

    def __array_function__(self, func, types, args, kwargs):
        if _tape._state.capture is not None:
            _tape._side_effect(f"numpy.{func.__name__} on a variable")
        if _tape._state.active:
            tapes = _tape._state.active
            for a in _tape._flat(args) + _tape._flat(kwargs):
                if isinstance(a, (Traceable, _tape.Tensor)) and _tape._track(a, tapes) is not None:
                    raise TypeError(
                        f"numpy.{func.__name__} cannot be traced by fastdl's autodiff on a value "
                        f"the GradientTape follows (a trainable Variable or a watched array): "
                        f"the gradient would be lost. Use fastdl.ops.{func.__name__} (or another "
                        f"fastdl.ops function) instead")
        return func(*_unwrap(args), **_unwrap(kwargs))

    # NumPy methods that make new arrays from this one: recorded when the tape follows it,
    # else plain ndarrays (a view of a Variable is not a Variable)
    def __getitem__(self, key):
        if _tape._state.active and self._tracked():
            return _tape._ops().get_item(self, key)
        return self.value[key]

    @property
    def T(self):
        if _tape._state.active and self._tracked():
            return _tape._ops().transpose(self)
        return self.value.T

    def reshape(self, *shape, **kw):
        if _tape._state.active and self._tracked() and not kw:
            return _tape._ops().reshape(self, shape[0] if len(shape) == 1 else shape)
        return self.value.reshape(*shape, **kw)

    def astype(self, dtype, *a, **kw):
        if _tape._state.active and self._tracked() and not a and not kw:
            return _tape._ops().cast(self, dtype)
        return self.value.astype(dtype, *a, **kw)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if _tape._state.active and self._tracked() and dtype is None and out is None and not kw:
            return _tape._ops().sum(self, axis=axis, keepdims=keepdims)
        return self.value.sum(axis=axis, dtype=dtype, out=_plain(out), keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if _tape._state.active and self._tracked() and dtype is None and out is None and not kw:
            return _tape._ops().mean(self, axis=axis, keepdims=keepdims)
        return self.value.mean(axis=axis, dtype=dtype, out=_plain(out), keepdims=keepdims, **kw)

    def __setitem__(self, key, val):
        _tape._weights_written("Variable.__setitem__")
        self.value[key] = _plain(_tape.value(val))

    def copy(self, order="C"):
        return self.value.copy(order)

    def view(self, *a, **kw):
        if not a and not kw:
            return self.value.view()
        return self.value.view(*a, **kw)

    def ravel(self, order="C"):
        return self.value.ravel(order)

    def flatten(self, order="C"):
        return self.value.flatten(order)

    def transpose(self, *axes):
        if _tape._state.active and self._tracked():
            return _tape._ops().transpose(self, axes[0] if len(axes) == 1 else (axes or None))
        return self.value.transpose(*axes)

    def squeeze(self, axis=None):
        return self.value.squeeze(axis)

    def swapaxes(self, a, b):
        return self.value.swapaxes(a, b)

    def __copy__(self):
        return self.value.copy()

    def __deepcopy__(self, memo):
        return self.value.copy()

    def numpy(self):
        """A NumPy copy of the value."""
        return np.array(self.value)

    def __reduce__(self):
        # pickling / deepcopy give plain arrays of the value
        return (np.array, (np.array(self.value),))


def _unwrap(x):
    if isinstance(x, Traceable):
        return x.value
    if type(x) is _tape.Tensor:
        return x.value
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    return x


class EagerTensor(Traceable):
    """What ``ops.convert_to_tensor`` returns for a NumPy value: an ndarray whose Python
    operators are recorded when a tape watches it (``tape.watch(x); y = x * x``)."""
    __slots__ = ()

    def __repr__(self):
        return f"<fastdl.EagerTensor shape={self.shape} dtype={self.dtype} value=\n" \
               f"{self.value!r}>"

    def __str__(self):
        return str(self.value)


def eager(a):
    """The EagerTensor view of the plain ndarray a (no copy)."""
    t = a.view(EagerTensor)
    object.__setattr__(t, "value", a)
    return t


class Variable(Traceable):
    """A Keras 3 ``Variable``: ``Variable(initializer_or_value, shape=None, dtype=None,
    trainable=True, name=None)``.

    It is the weight array itself (an ndarray: kernels and NumPy take it), with
    ``name``, ``path``, ``trainable``, ``value`` (the live plain array), ``numpy()``
    (a copy), ``assign``, ``assign_add`` and ``assign_sub`` (in place). A trainable
    Variable is watched by every GradientTape that watches accessed variables.

    On the host only: a model moved to a CUDA device (``model.to("cuda")``) holds its
    weights as CuPy arrays, without these attributes (the tape follows them by identity);
    moved back to the CPU they are Variables again, with the same names and flags."""
    __slots__ = ("name", "_path", "_trainable", "_layer")

    def __new__(cls, initializer, shape=None, dtype=None, trainable=True, autocast=True,
                aggregation="none", synchronization="auto", name=None):
        from . import _memory, _device, initializers
        if aggregation not in ("none", None, "mean", "sum", "only_first_replica"):
            raise ValueError(f"Variable: invalid aggregation {aggregation!r}")
        if synchronization not in ("auto", "none", "on_read", "on_write", None):
            raise ValueError(f"Variable: invalid synchronization {synchronization!r}")
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(f"Variable: name must be a string without '/', got {name!r}")
        if isinstance(initializer, str) or (callable(initializer) and
                                           not hasattr(initializer, "shape")):
            if shape is None:
                raise ValueError("Variable: with an initializer, shape= is needed (pass a value "
                                 "instead to take its shape)")
            shape = tuple(int(s) for s in shape)
            dt = np.dtype(dtype or np.float32)
            init = initializers.get(initializer)
            val = _device.to_host(_tape.value(init(shape, dt)))
        else:
            val = _device.to_host(_plain(_tape.value(initializer)))
            val = np.asarray(val)
            if dtype is None and val.dtype == np.float64 and not isinstance(initializer, _nd):
                dtype = np.float32   # Python floats -> float32 (Keras' floatx)
            if shape is not None and tuple(val.shape) != tuple(int(s) for s in shape):
                raise ValueError(f"Variable: the value has shape {val.shape}, but shape={shape}")
            dt = np.dtype(dtype or val.dtype)
        base = _memory.copy(np.asarray(val, dtype=dt))
        return _make(base, name or "variable", bool(trainable), None)

    def __init__(self, *a, **kw):
        pass

    # ---------------------------------------------------------------- Keras' attributes
    @property
    def path(self):
        """"<layer name>/<name>" for a layer's weight, else the name."""
        if self._layer is not None:
            return self._layer._weight_path(self)
        return self._path or self.name

    @property
    def trainable(self):
        """Its own flag, and False while its layer is frozen (layer.trainable = False)."""
        return self._trainable and (self._layer is None or self._layer._trainable)

    @trainable.setter
    def trainable(self, flag):
        flag = bool(flag)
        if flag == self._trainable:
            return
        object.__setattr__(self, "_trainable", flag)
        layer = self._layer
        if layer is not None:
            layer._variable_trainable_changed(self, flag)

    def assign(self, value):
        """Copy value (same shape) into the variable, in place; returns the variable."""
        _tape._weights_written("Variable.assign")
        v = _plain(_tape.value(value))
        from . import _device
        if tuple(np.shape(v)) != self.shape:
            raise ValueError(f"Variable {self.path!r}: assign() got a value of shape "
                             f"{tuple(np.shape(v))}, the variable has shape {self.shape}")
        _device.assign(self.value, v)
        return self

    def assign_add(self, value):
        """Add value (broadcasting) in place; returns the variable."""
        _tape._weights_written("Variable.assign_add")
        np.add(self.value, _plain(_tape.value(value)), out=self.value, casting="unsafe")
        return self

    def assign_sub(self, value):
        """Subtract value (broadcasting) in place; returns the variable."""
        _tape._weights_written("Variable.assign_sub")
        np.subtract(self.value, _plain(_tape.value(value)), out=self.value, casting="unsafe")
        return self

    def __repr__(self):
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype.name}, "
                f"value={np.array2string(self.value, threshold=20)}>")

    def __str__(self):
        return self.__repr__()


def _make(base, name, trainable, path, layer=None):
    """A Variable viewing the plain ndarray base."""
    v = base.view(Variable)
    object.__setattr__(v, "value", base)
    object.__setattr__(v, "name", name)
    object.__setattr__(v, "_path", path)
    object.__setattr__(v, "_trainable", trainable)
    object.__setattr__(v, "_layer", layer)
    return v
