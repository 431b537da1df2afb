"""Symbolic tensors for the functional API: what ``Input`` returns and what a
layer returns when it is called on symbolic tensors.

A ``KerasTensor`` has a shape (batch dimension first, ``None`` where unknown),
a dtype, and the history that made it: the ``Node`` (one call of one layer on
symbolic inputs) and which of that node's outputs it is. A functional
``Model(inputs, outputs)`` walks these histories back from its outputs.
"""
import itertools

import numpy as np

from ._tape import Operators

_uid = itertools.count()


class KerasTensor(Operators):
    def __init__(self, shape, dtype="float32", name=None, node=None, index=0):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.node = node      # the Node whose output this is
        self.index = index    # which output of that node
        self._id = next(_uid)

    ndim = property(lambda self: len(self.shape))

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}, name={self.name}>"

    def __hash__(self):
        return self._id

    def __len__(self):
        raise TypeError("a symbolic tensor has no len(); use its .shape")

    def __bool__(self):
        raise TypeError("a symbolic tensor (from keras.Input) has no truth value while the model "
                        "is being built; use fastdl.ops.where or write a layer")

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a symbolic tensor (from keras.Input) holds no values: NumPy functions "
                        "cannot run on it. Use fastdl.ops functions or layers on it")


class Node:
    """One call of a layer on symbolic tensors: its inputs (the structure the
    layer was called with, flattened) and its output KerasTensors."""

    def __init__(self, layer, inputs, structure, outputs, kwargs):
        self.layer = layer
        self.inputs = inputs          # flat list of KerasTensor
        self.structure = structure    # how to rebuild the call's first argument from values
        self.outputs = outputs        # flat list of KerasTensor
        self.kwargs = kwargs          # static keyword arguments of the call


def flatten(x):
    if isinstance(x, dict):
        return [b for k in x for b in flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [b for v in x for b in flatten(v)]
    return [x]


def pack_like(structure, flat):
    """Rebuild ``structure`` (nested lists/tuples/dicts) with the values of ``flat`` in order."""
    it = iter(flat)

    def rebuild(s):
        if isinstance(s, dict):
            return {k: rebuild(s[k]) for k in s}
        if isinstance(s, (list, tuple)):
            return type(s)(rebuild(v) for v in s)
        return next(it)
    return rebuild(structure)


_CONTAINERS = (list, tuple, dict)


def any_symbolic(*xs):
    for x in xs:
        t = type(x)
        if t is KerasTensor:
            return True
        if t in _CONTAINERS and any(type(a) is KerasTensor for a in flatten(x)):
            return True
    return False
