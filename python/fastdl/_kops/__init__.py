"""The differentiable NumPy-like ``keras.ops`` functions, gathered into ``fastdl.ops``.

Split as Keras splits them: ``numpy`` (element-wise, reductions, shapes, indexing,
creation), ``nn`` (activations, softmax, cross-entropies, one_hot), ``math`` (erf,
top_k, norm, core helpers such as convert_to_tensor). ``fastdl.ops`` ends with
``from ._kops import *``: every name in ``__all__`` becomes an ``ops`` attribute.
The names that are also Python builtins (``sum``, ``max``, ``abs``, ...) are served by
the module ``__getattr__`` this package exports, so that the kernel code in ``ops.py``
keeps calling the builtins.
"""
import builtins as _builtins

from . import math as _math
from . import nn as _nn
from . import numpy as _numpy

_BUILTIN_NAMED = {"abs", "all", "any", "max", "min", "round", "sum", "slice", "map"}

_TABLE = {}
for _mod in (_numpy, _math, _nn):  # later modules win: nn's tanh runs the C++ kernel
    for _name, _obj in vars(_mod).items():
        if _name.startswith("_") or not callable(_obj) or isinstance(_obj, type):
            continue
        if getattr(_obj, "__module__", None) is None:
            continue
        if _obj.__module__.startswith(__name__) or _name in ("true_divide", "absolute", "amax",
                                                           "amin", "swish", "hard_swish"):
            _TABLE[_name] = _obj
for _name in ("xp_of", "to_array", "operand", "float_of", "standardize_dtype", "is_array",
              "normalize_axis", "expand_reduced", "sum_to", "op_needs", "constant",
              "no_gradient_guard", "is_np_float", "is_float", "primitive", "value", "record"):
    _TABLE.pop(_name, None)

KERAS_OPS = tuple(sorted(_TABLE))

from .. import _tape as _tape_module  # noqa: E402
_tape_module._bind_operators(dict(_TABLE))

globals().update({k: v for k, v in _TABLE.items() if k not in _BUILTIN_NAMED})


def __getattr__(name):
    """Module __getattr__ for ``fastdl.ops``: the keras.ops functions named like builtins."""
    if name in _BUILTIN_NAMED:
        return _TABLE[name]
    raise AttributeError(f"module 'fastdl.ops' has no attribute {name!r}")


def __dir__():
    import sys
    ops = sys.modules.get(__name__.rsplit(".", 1)[0] + ".ops")
    names = set(vars(ops)) if ops is not None else set()
    return sorted(names | set(_TABLE))


__all__ = [k for k in KERAS_OPS if k not in _BUILTIN_NAMED] + ["__getattr__", "__dir__",
                                                               "KERAS_OPS"]
del _builtins
