"""The differentiable keras.ops functions, checked like PyTorch's OpInfo tests.

One table: each entry names an op, the function under test, a NumPy reference and sample
inputs (float64, seeded: broadcasting pairs, every reduction axis with and without
keepdims, size-1 and prime sizes, empty arrays where meaningful). For each sample:
* forward: the op on raw arrays, outside any tape, equals the NumPy reference;
* gradient: d(sum(out * w)) / d(input) from a GradientTape (tape.watch on the inputs,
  output_gradients=w) equals central finite differences in float64.
Ops without a gradient are checked to return constants under a tape.
"""
import functools

import numpy as np
import pytest

from fastdl import ops
from fastdl._tape import GradientTape, Tensor

EPS = 1e-6
ATOL = 1e-6
RTOL = 1e-5


# ------------------------------------------------------------------ sample makers
def _rng(seed):
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return np.asarray(_rng(seed).standard_normal(shape))


def pos(*shape, seed=0):
    return np.asarray(_rng(seed).uniform(0.5, 2.0, shape))


def unit(*shape, seed=0):
    return np.asarray(_rng(seed).uniform(-0.85, 0.85, shape))


def away0(*shape, seed=0):
    r = _rng(seed)
    return np.asarray(r.uniform(0.2, 2.0, shape) * r.choice([-1.0, 1.0], shape))


def prob(*shape, seed=0):
    return np.asarray(_rng(seed).uniform(0.05, 0.95, shape))


UNARY_SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (0, 3)]


class OpInfo:
    def __init__(self, name, fn, ref, samples, grad=True, atol=ATOL, rtol=RTOL, eps=EPS):
        self.name, self.fn, self.ref, self.samples = name, fn, ref, samples
        self.grad, self.atol, self.rtol, self.eps = grad, atol, rtol, eps

    def __repr__(self):
        return self.name


def unary(name, fn, ref, maker=normal, shapes=UNARY_SHAPES, **kw):
    return OpInfo(name, fn, ref, [((maker(*s, seed=i),), {}) for i, s in enumerate(shapes)], **kw)


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 5), (3, 1)), ((1,), (7,)),
                   ((), (2, 3)), ((5, 1), (1, 5)), ((0, 3), (3,))]


def binary(name, fn, ref, maker1=normal, maker2=normal, pairs=BROADCAST_PAIRS, scalar=2.5, **kw):
    samples = [((maker1(*a, seed=i), maker2(*b, seed=100 + i)), {})
               for i, (a, b) in enumerate(pairs)]
    if scalar is not None:  # a Python scalar operand (a constant)
        samples.append(((maker1(3, 2, seed=50), scalar), {}))
        samples.append(((scalar, maker2(2, 3, seed=51)), {}))
    return OpInfo(name, fn, ref, samples, **kw)


REDUCE_AXES = [(None, False), (None, True), (0, False), (1, True), (-1, False), (2, True),
               ((0, 2), False), ((0, 2), True)]


def reduction(name, fn, ref, maker=normal, shape=(2, 3, 5), single=True, **kw):
    samples = [((maker(*shape, seed=i),), {"axis": a, "keepdims": k})
               for i, (a, k) in enumerate(REDUCE_AXES)]
    samples.append(((maker(7, seed=20),), {"axis": None, "keepdims": False}))
    if single:  # a reduction over one element (std's gradient there is NaN, as in JAX)
        samples.append(((maker(1, 1, seed=21),), {"axis": 1, "keepdims": False}))
    return OpInfo(name, fn, ref, samples, **kw)


# ------------------------------------------------------------------ NumPy references
def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return np.log(np_softmax(x, axis))


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis) if axis is not None else r.reshape(())


def np_erf(x):
    import math
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def np_gelu(x, approximate=True):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np_erf(x / np.sqrt(2)))


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def np_bce(t, o, from_logits=False):
    if from_logits:
        o = np_sigmoid(o)
    o = np.clip(o, 1e-7, 1 - 1e-7)
    return -(t * np.log(o) + (1 - t) * np.log(1 - o))


def np_cce(t, o, from_logits=False, axis=-1):
    if from_logits:
        return -(t * np_log_softmax(o, axis)).sum(axis)
    o = o / o.sum(axis, keepdims=True)
    return -(t * np.log(np.clip(o, 1e-7, 1 - 1e-7))).sum(axis)


LABELS = np.array([2, 0, 1, 2])


def np_scce(o, from_logits=False, axis=-1):
    oh = np.moveaxis(np.eye(o.shape[axis])[LABELS], -1, axis)
    return np_cce(oh, o, from_logits, axis)


def _nd_ref(fn2d):
    """A 2-D channels-last reference made to take 1-D inputs and channels_first."""
    def ref(x, *args, strides=None, padding="valid", data_format=None, dilation_rate=None,
            **kw):
        import ref_conv
        cf = data_format == "channels_first"
        if cf:
            x = np.moveaxis(x, 1, -1)
        one = x.ndim == 3

        def two(v):
            return None if v is None else ((1, v) if isinstance(v, int) else (1,) + tuple(v))
        if one:
            x = x[:, None]
            args = tuple(a[None] if isinstance(a, np.ndarray) else two(a) for a in args)
            strides, dilation_rate = two(strides), two(dilation_rate)
        extra = {"dilation": dilation_rate or 1} if dilation_rate is not None or fn2d is \
            ref_conv.conv2d else {}
        if fn2d is ref_conv.conv2d:
            y = fn2d(x, *args, strides=strides or 1, padding=padding, **extra)
        else:
            y = fn2d(x, *args, strides=strides, padding=padding)
        y = y[:, 0] if one else y
        return np.moveaxis(y, -1, 1) if cf else y
    return ref


def _ref_conv(name):
    def ref(*args, **kw):
        import ref_conv
        return _nd_ref(getattr(ref_conv, name))(*args, **kw)
    return ref


def _flat_out(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


# ------------------------------------------------------------------ the table
OPS = [
    # element-wise binary, broadcasting
    binary("add", ops.add, np.add),
    binary("subtract", ops.subtract, np.subtract),
    binary("multiply", ops.multiply, np.multiply),
    binary("divide", ops.divide, np.divide, maker2=away0),
    binary("true_divide", ops.true_divide, np.true_divide, maker2=away0),
    binary("power", ops.power, np.power, maker1=pos),
    binary("maximum", ops.maximum, np.maximum, scalar=0.3),
    binary("minimum", ops.minimum, np.minimum, scalar=0.3),
    binary("logaddexp", ops.logaddexp, np.logaddexp),
    binary("arctan2", ops.arctan2, np.arctan2, maker2=away0),
    binary("hypot", ops.hypot, np.hypot, maker1=away0, maker2=away0),
    binary("squared_difference", ops.squared_difference, lambda a, b: (a - b) ** 2),
    # element-wise unary
    unary("negative", ops.negative, np.negative),
    unary("exp", ops.exp, np.exp),
    unary("exp2", ops.exp2, np.exp2),
    unary("expm1", ops.expm1, np.expm1),
    unary("log", ops.log, np.log, pos),
    unary("log2", ops.log2, np.log2, pos),
    unary("log10", ops.log10, np.log10, pos),
    unary("log1p", ops.log1p, np.log1p, pos),
    unary("sqrt", ops.sqrt, np.sqrt, pos),
    unary("rsqrt", ops.rsqrt, lambda x: 1 / np.sqrt(x), pos),
    unary("reciprocal", ops.reciprocal, np.reciprocal, away0),
    unary("square", ops.square, np.square),
    unary("abs", ops.abs, np.abs, away0),
    unary("absolute", ops.absolute, np.abs, away0),
    unary("sin", ops.sin, np.sin),
    unary("cos", ops.cos, np.cos),
    unary("tan", ops.tan, np.tan, unit),
    unary("arcsin", ops.arcsin, np.arcsin, unit),
    unary("arccos", ops.arccos, np.arccos, unit),
    unary("arctan", ops.arctan, np.arctan),
    unary("sinh", ops.sinh, np.sinh),
    unary("cosh", ops.cosh, np.cosh),
    unary("tanh", ops.tanh, np.tanh),
    unary("arcsinh", ops.arcsinh, np.arcsinh),
    unary("arccosh", ops.arccosh, np.arccosh, lambda *s, seed=0: np.asarray(pos(*s, seed=seed) + 1.0)),
    unary("arctanh", ops.arctanh, np.arctanh, unit),
    unary("erf", ops.erf, np_erf),
    unary("nan_to_num", ops.nan_to_num, np.nan_to_num),
    # activations
    unary("relu", ops.relu, lambda x: np.maximum(x, 0), away0),
    unary("relu6", ops.relu6, lambda x: np.clip(x, 0, 6), lambda *s, seed=0: np.asarray(away0(*s, seed=seed) * 4)),
    unary("sigmoid", ops.sigmoid, np_sigmoid),
    unary("softplus", ops.softplus, lambda x: np.log1p(np.exp(x))),
    unary("softsign", ops.softsign, lambda x: x / (1 + np.abs(x)), away0),
    unary("silu", ops.silu, lambda x: x * np_sigmoid(x)),
    unary("swish", ops.swish, lambda x: x * np_sigmoid(x)),
    unary("log_sigmoid", ops.log_sigmoid, lambda x: np.log(np_sigmoid(x))),
    unary("gelu", ops.gelu, np_gelu),
    unary("gelu_exact", functools.partial(ops.gelu, approximate=False),
          functools.partial(np_gelu, approximate=False)),
    unary("elu", ops.elu, np_elu, away0),
    unary("elu_alpha", functools.partial(ops.elu, alpha=0.5), functools.partial(np_elu, alpha=0.5),
          away0),
    unary("selu", ops.selu, lambda x: 1.0507009873554805 * np_elu(x, 1.6732632423543772), away0),
    unary("leaky_relu", ops.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), away0),
    unary("hard_sigmoid", ops.hard_sigmoid, lambda x: np.clip(x + 3, 0, 6) / 6),
    unary("hard_silu", ops.hard_silu, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    OpInfo("softmax", ops.softmax, np_softmax,
           [((normal(3, 5, seed=1),), {}), ((normal(3, 5, seed=2),), {"axis": 0}),
            ((normal(2, 3, 4, seed=3),), {"axis": 1}), ((normal(1, seed=4),), {}),
            ((normal(2, 3, 4, seed=5) * 30,), {"axis": -1})]),
    OpInfo("log_softmax", ops.log_softmax, np_log_softmax,
           [((normal(3, 5, seed=1),), {}), ((normal(3, 5, seed=2),), {"axis": 0}),
            ((normal(2, 3, 4, seed=3),), {"axis": 1}), ((normal(1, seed=4),), {})]),
    OpInfo("glu", ops.glu, lambda x: x[..., :2] * np_sigmoid(x[..., 2:]),
           [((normal(3, 4, seed=1),), {})]),
    # reductions
    reduction("sum", ops.sum, np.sum),
    reduction("mean", ops.mean, np.mean),
    reduction("max", ops.max, np.max),
    reduction("min", ops.min, np.min),
    reduction("prod", ops.prod, np.prod),
    reduction("var", ops.var, np.var),
    reduction("std", ops.std, np.std, single=False),
    reduction("logsumexp", ops.logsumexp, np_logsumexp),
    OpInfo("prod_with_zero", ops.prod, np.prod,
           [((np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0]]),), {"axis": 1}),
            ((np.array([[1.5, 0.0, 2.0], [0.0, 0.5, 3.0]]),), {})]),
    OpInfo("sum_empty", ops.sum, np.sum, [((np.zeros((0, 3)),), {"axis": 0})]),
    OpInfo("mean_empty_rows", ops.mean, np.mean, [((np.zeros((0, 3)),), {"axis": 1})]),
    OpInfo("cumsum", ops.cumsum, lambda x, axis=None: np.cumsum(x, axis=axis),
           [((normal(3, 4, seed=1),), {"axis": 0}), ((normal(3, 4, seed=2),), {"axis": 1}),
            ((normal(3, 4, seed=3),), {}), ((normal(5, seed=4),), {"axis": -1})]),
    OpInfo("average", ops.average, lambda x, axis=None, weights=None: np.average(x, axis, weights),
           [((normal(3, 4, seed=1),), {"axis": 1, "weights": pos(4, seed=2)}),
            ((normal(3, 4, seed=3),), {"axis": None})]),
    OpInfo("norm", ops.norm, np.linalg.norm,
           [((normal(5, seed=1),), {}), ((normal(3, 4, seed=2),), {}),
            ((away0(3, 4, seed=3),), {"ord": 1, "axis": 1}),
            ((normal(3, 4, seed=4),), {"ord": np.inf, "axis": 0, "keepdims": True}),
            ((away0(6, seed=5),), {"ord": 3}), ((normal(6, seed=6),), {"ord": 2, "axis": 0}),
            ((normal(3, 4, seed=7),), {"ord": "fro"}),
            ((away0(3, 4, seed=8),), {"ord": 1}), ((away0(3, 4, seed=9),), {"ord": np.inf}),
            ((away0(2, 3, 4, seed=10),), {"ord": -np.inf, "axis": (1, 2)})]),
    # products
    OpInfo("matmul", ops.matmul, np.matmul,
           [((normal(3, 4, seed=1), normal(4, 5, seed=2)), {}),
            ((normal(2, 3, 4, seed=3), normal(4, 5, seed=4)), {}),
            ((normal(4, seed=5), normal(4, 5, seed=6)), {}),
            ((normal(3, 4, seed=7), normal(4, seed=8)), {}),
            ((normal(4, seed=9), normal(4, seed=10)), {}),
            ((normal(2, 1, 3, 4, seed=11), normal(5, 4, 2, seed=12)), {}),
            ((normal(1, 7, seed=13), normal(7, 1, seed=14)), {}),
            ((normal(3, 4, seed=15), normal(2, 4, 5, seed=16)), {}),
            ((normal(0, 4, seed=17), normal(4, 3, seed=18)), {})]),
    OpInfo("dot", ops.dot, np.dot,
           [((normal(3, 4, seed=1), normal(4, 5, seed=2)), {}),
            ((normal(4, seed=3), normal(4, seed=4)), {}),
            ((normal(2, 3, 4, seed=5), normal(2, 4, 3, seed=6)), {}),
            ((np.array(1.5), normal(2, 3, seed=7)), {})]),
    OpInfo("tensordot", ops.tensordot, np.tensordot,
           [((normal(2, 3, 4, seed=1), normal(3, 4, 5, seed=2)), {}),
            ((normal(2, 3, 4, seed=3), normal(4, 2, seed=4)), {"axes": ([0, 2], [1, 0])}),
            ((normal(3, 4, seed=5), normal(4, 5, seed=6)), {"axes": 1})]),
    OpInfo("einsum", lambda a, b: ops.einsum("bij,bjk->bik", a, b),
           lambda a, b: np.einsum("bij,bjk->bik", a, b),
           [((normal(2, 3, 4, seed=1), normal(2, 4, 5, seed=2)), {})]),
    OpInfo("einsum_sum_only_index", lambda a, b: ops.einsum("ij,k->i", a, b),
           lambda a, b: np.einsum("ij,k->i", a, b),
           [((normal(2, 3, seed=1), normal(4, seed=2)), {})]),
    OpInfo("einsum_implicit", lambda a, b: ops.einsum("ij,jk", a, b),
           lambda a, b: np.einsum("ij,jk", a, b),
           [((normal(2, 3, seed=1), normal(3, 4, seed=2)), {})]),
    OpInfo("outer", ops.outer, np.outer, [((normal(3, seed=1), normal(4, seed=2)), {})]),
    OpInfo("inner", ops.inner, np.inner, [((normal(2, 3, seed=1), normal(4, 3, seed=2)), {})]),
    OpInfo("vdot", ops.vdot, np.vdot, [((normal(2, 3, seed=1), normal(2, 3, seed=2)), {})]),
    # shapes and layout
    OpInfo("reshape", ops.reshape, np.reshape,
           [((normal(2, 3, 4, seed=1), (6, 4)), {}), ((normal(2, 3, seed=2), (-1,)), {}),
            ((normal(7, seed=3), (7, 1, 1)), {}), ((normal(0, 3, seed=4), (3, 0)), {})]),
    OpInfo("transpose", ops.transpose, np.transpose,
           [((normal(2, 3, 4, seed=1),), {}), ((normal(2, 3, 4, seed=2), (1, 2, 0)), {}),
            ((normal(5, seed=3),), {})]),
    OpInfo("moveaxis", ops.moveaxis, np.moveaxis,
           [((normal(2, 3, 4, seed=1), 0, -1), {}), ((normal(2, 3, 4, seed=2), [0, 1], [2, 0]), {})]),
    OpInfo("swapaxes", ops.swapaxes, np.swapaxes, [((normal(2, 3, 4, seed=1), 0, 2), {})]),
    OpInfo("expand_dims", ops.expand_dims, np.expand_dims,
           [((normal(2, 3, seed=1), 0), {}), ((normal(2, 3, seed=2), -1), {}),
            ((normal(2, 3, seed=3), (0, 2)), {})]),
    OpInfo("squeeze", ops.squeeze, np.squeeze,
           [((normal(1, 3, 1, seed=1),), {}), ((normal(1, 3, 1, seed=2),), {"axis": 2})]),
    OpInfo("broadcast_to", ops.broadcast_to, np.broadcast_to,
           [((normal(3, 1, seed=1), (2, 3, 5)), {}), ((normal(1, seed=2), (4,)), {})]),
    OpInfo("tile", ops.tile, np.tile,
           [((normal(2, 3, seed=1), (2, 3)), {}), ((normal(3, seed=2), (2, 1, 2)), {}),
            ((normal(2, 3, seed=3), 2), {})]),
    OpInfo("repeat", ops.repeat, np.repeat,
           [((normal(2, 3, seed=1), 2), {}), ((normal(2, 3, seed=2), 3), {"axis": 1}),
            ((normal(3, 2, seed=3), [1, 0, 2]), {"axis": 0})]),
    OpInfo("flip", ops.flip, np.flip,
           [((normal(2, 3, seed=1),), {}), ((normal(2, 3, seed=2),), {"axis": 1})]),
    OpInfo("roll", ops.roll, np.roll,
           [((normal(2, 3, seed=1), 1), {}), ((normal(2, 5, seed=2), -2), {"axis": 1})]),
    OpInfo("concatenate", lambda a, b, axis=0: ops.concatenate([a, b], axis=axis),
           lambda a, b, axis=0: np.concatenate([a, b], axis=axis),
           [((normal(2, 3, seed=1), normal(4, 3, seed=2)), {}),
            ((normal(2, 3, seed=3), normal(2, 1, seed=4)), {"axis": 1}),
            ((normal(0, 3, seed=5), normal(2, 3, seed=6)), {})]),
    OpInfo("stack", lambda a, b, axis=0: ops.stack([a, b], axis=axis),
           lambda a, b, axis=0: np.stack([a, b], axis=axis),
           [((normal(2, 3, seed=1), normal(2, 3, seed=2)), {}),
            ((normal(2, 3, seed=3), normal(2, 3, seed=4)), {"axis": -1})]),
    OpInfo("split", ops.split, np.split,
           [((normal(6, 2, seed=1), 3), {}), ((normal(2, 7, seed=2), [2, 3]), {"axis": 1})]),
    OpInfo("unstack", ops.unstack, lambda x, axis=0: list(np.moveaxis(x, axis, 0)),
           [((normal(3, 2, seed=1),), {}), ((normal(3, 2, seed=2),), {"axis": 1})]),
    OpInfo("pad", ops.pad, np.pad,
           [((normal(2, 3, seed=1), ((1, 2), (0, 1))), {}),
            ((normal(2, 3, seed=2), 1), {"constant_values": 2.0}),
            ((normal(4, 5, seed=3), ((2, 1), (3, 2))), {"mode": "reflect"}),
            ((normal(3, 4, seed=4), ((1, 2), (2, 1))), {"mode": "symmetric"}),
            ((normal(3, 4, seed=5), 2), {"mode": "edge"}),
            ((normal(3, 4, seed=6), ((1, 2), (2, 1))), {"mode": "wrap"})]),
    OpInfo("tril", ops.tril, np.tril, [((normal(3, 4, seed=1),), {}), ((normal(3, 4, seed=2), -1), {})]),
    OpInfo("triu", ops.triu, np.triu, [((normal(3, 4, seed=1),), {}), ((normal(3, 4, seed=2), 1), {})]),
    OpInfo("diagonal", ops.diagonal, np.diagonal,
           [((normal(3, 4, seed=1),), {}), ((normal(3, 4, seed=2), 1), {}),
            ((normal(2, 3, 3, seed=3), 0, 1, 2), {})]),
    OpInfo("trace", ops.trace, np.trace, [((normal(3, 4, seed=1),), {})]),
    OpInfo("diag", ops.diag, np.diag,
           [((normal(3, seed=1),), {}), ((normal(3, seed=2), 1), {}), ((normal(3, seed=3), -2), {}),
            ((normal(3, 3, seed=4),), {})]),
    # indexing
    OpInfo("get_item", ops.get_item, lambda x, key: x[key],
           [((normal(4, 5, seed=1), (1, slice(None, None, 2))), {}),
            ((normal(4, 5, seed=2), (Ellipsis, None, -1)), {}),
            ((normal(4, 5, seed=3), np.array([0, 0, 3, 1])), {}),
            ((normal(4, 5, seed=4), (np.array([1, 1]), np.array([2, 2]))), {}),
            ((normal(4, 5, seed=5), normal(4, 5, seed=55) > 0), {}),
            ((normal(4, 5, seed=6), (slice(3, 0, -1), [4, 0, 4])), {})]),
    OpInfo("take", ops.take, np.take,
           [((normal(4, 5, seed=1), np.array([0, 3, 3, 19])), {}),
            ((normal(4, 5, seed=2), np.array([[1, 1], [0, 3]])), {"axis": 0}),
            ((normal(4, 5, seed=3), np.array([4, -1])), {"axis": 1})]),
    OpInfo("take_along_axis", ops.take_along_axis, np.take_along_axis,
           [((normal(3, 4, seed=1), np.array([[0, 0], [3, 1], [2, 2]])), {"axis": 1}),
            ((normal(3, 4, seed=2), np.array([[0, 2, 2, 1]])), {"axis": 0})]),
    OpInfo("slice", ops.slice, lambda x, s, n: x[s[0]:s[0] + n[0], s[1]:s[1] + n[1]],
           [((normal(4, 5, seed=1), (1, 2), (2, 3)), {})]),
    OpInfo("slice_update", lambda x, u: ops.slice_update(x, (1, 2), u),
           lambda x, u: np.concatenate([x[:1], np.concatenate([x[1:3, :2], u, x[1:3, 5:]], 1),
                                        x[3:]], 0),
           [((normal(4, 5, seed=1), normal(2, 3, seed=2)), {})]),
    OpInfo("where", lambda a, b: ops.where(normal(3, 4, seed=9) > 0, a, b),
           lambda a, b: np.where(normal(3, 4, seed=9) > 0, a, b),
           [((normal(3, 4, seed=1), normal(3, 4, seed=2)), {}),
            ((normal(4, seed=3), normal(3, 1, seed=4)), {}), ((normal(3, 4, seed=5), 0.5), {})]),
    OpInfo("clip", ops.clip, np.clip,
           [((normal(3, 4, seed=1), -0.5, 0.7), {}), ((normal(6, seed=2), None, 0.1), {})]),
    OpInfo("sort", ops.sort, np.sort,
           [((normal(3, 4, seed=1),), {}), ((normal(3, 4, seed=2),), {"axis": 0})]),
    OpInfo("top_k_values", lambda x, k: ops.top_k(x, k)[0],
           lambda x, k: -np.sort(-x, axis=-1)[..., :k], [((normal(3, 5, seed=1), 2), {})]),
    OpInfo("cast", lambda x: ops.cast(x, "float64"), lambda x: x, [((normal(3, seed=1),), {})]),
    # losses and normalisation
    OpInfo("binary_crossentropy", ops.binary_crossentropy, np_bce,
           [((prob(3, 4, seed=1), prob(3, 4, seed=2)), {}),
            ((prob(3, 4, seed=3), normal(3, 4, seed=4)), {"from_logits": True}),
            ((np.array([0.0, 1.0, 1.0]), np.array([0.3, 0.6, 0.99])), {})]),
    OpInfo("categorical_crossentropy", ops.categorical_crossentropy, np_cce,
           [((np_softmax(normal(4, 3, seed=1)), pos(4, 3, seed=2)), {}),
            ((np_softmax(normal(4, 3, seed=3)), normal(4, 3, seed=4)), {"from_logits": True}),
            ((np_softmax(normal(4, 3, seed=5), 0), normal(4, 3, seed=6)),
             {"from_logits": True, "axis": 0})]),
    OpInfo("sparse_categorical_crossentropy",
           lambda o, **kw: ops.sparse_categorical_crossentropy(LABELS, o, **kw), np_scce,
           [((pos(4, 3, seed=1),), {}), ((normal(4, 3, seed=2),), {"from_logits": True}),
            ((normal(3, 4, seed=3),), {"from_logits": True, "axis": 0})]),
    OpInfo("moments", lambda x, axes: ops.moments(x, axes),
           lambda x, axes: (np.mean(x, axis=tuple(axes)), np.var(x, axis=tuple(axes))),
           [((normal(3, 4, 2, seed=1), [0, 2]), {})]),
    OpInfo("normalize", ops.normalize,
           lambda x, axis=-1: x / np.linalg.norm(x, axis=axis, keepdims=True),
           [((normal(3, 4, seed=1),), {}), ((normal(3, 4, seed=2),), {"axis": 0})]),
    OpInfo("batch_normalization",
           lambda x, m, v, o, s: ops.batch_normalization(x, m, v, axis=-1, offset=o, scale=s),
           lambda x, m, v, o, s: (x - m) / np.sqrt(v + 1e-3) * s + o,
           [((normal(5, 3, seed=1), normal(3, seed=2), pos(3, seed=3), normal(3, seed=4),
              normal(3, seed=5)), {})]),
    # more activations
    unary("hard_tanh", ops.hard_tanh, lambda x: np.clip(x, -1, 1),
          lambda *s, seed=0: np.asarray(away0(*s, seed=seed) * 1.3)),
    unary("celu", ops.celu, lambda x: np.maximum(x, 0) + np.minimum(0, np.expm1(x)), away0),
    unary("squareplus", ops.squareplus, lambda x: (x + np.sqrt(x * x + 4)) / 2),
    unary("tanh_shrink", ops.tanh_shrink, lambda x: x - np.tanh(x)),
    unary("soft_shrink", ops.soft_shrink,
          lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
          lambda *s, seed=0: np.asarray(away0(*s, seed=seed) + np.sign(away0(*s, seed=seed)) * 0.4)),
    unary("sparse_plus", ops.sparse_plus,
          lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
          lambda *s, seed=0: np.asarray(unit(*s, seed=seed) * 1.1)),
    # convolution and pooling on the C++ kernels
    OpInfo("conv", ops.conv, _ref_conv("conv2d"),
           [((normal(2, 5, 6, 3, seed=1), normal(3, 2, 3, 4, seed=2)), {}),
            ((normal(1, 7, 5, 2, seed=3), normal(3, 3, 2, 2, seed=4)),
             {"strides": 2, "padding": "same"}),
            ((normal(2, 7, 3, seed=5), normal(3, 3, 2, seed=6)), {"dilation_rate": 2}),
            ((normal(1, 2, 5, 5, seed=7), normal(2, 2, 2, 3, seed=8)),
             {"data_format": "channels_first"})]),
    OpInfo("conv_transpose", ops.conv_transpose, None,
           [((normal(2, 3, 4, 3, seed=1), normal(3, 2, 2, 3, seed=2)), {}),
            ((normal(1, 3, 3, 2, seed=3), normal(3, 3, 4, 2, seed=4)),
             {"strides": 2, "padding": "same"}),
            ((normal(1, 3, 3, 2, seed=5), normal(2, 2, 1, 2, seed=6)), {"strides": 3}),
            ((normal(2, 5, 3, seed=7), normal(3, 2, 3, seed=8)), {"dilation_rate": 2})]),
    OpInfo("max_pool", ops.max_pool, _ref_conv("max_pool2d"),
           [((normal(2, 4, 6, 3, seed=1), 2), {}),
            ((normal(1, 5, 5, 2, seed=2), 3), {"strides": 2, "padding": "same"}),
            ((normal(2, 8, 3, seed=3), 2), {})]),
    OpInfo("average_pool", ops.average_pool, _ref_conv("avg_pool2d"),
           [((normal(2, 4, 6, 3, seed=1), 2), {}),
            ((normal(1, 5, 5, 2, seed=2), (2, 3)), {"strides": 1, "padding": "same"}),
            ((normal(2, 8, 3, seed=3), 3), {"strides": 2})]),
    # linalg
    OpInfo("inv", ops.inv, np.linalg.inv,
           [((normal(3, 3, seed=1) + 3 * np.eye(3),), {}),
            ((normal(2, 4, 4, seed=2) + 4 * np.eye(4),), {})]),
    OpInfo("det", ops.det, np.linalg.det,
           [((normal(3, 3, seed=1),), {}), ((normal(2, 2, 2, seed=2),), {})]),
    OpInfo("solve", ops.solve, np.linalg.solve,
           [((normal(3, 3, seed=1) + 3 * np.eye(3), normal(3, 2, seed=2)), {})]),
    # scatter / segments / median
    OpInfo("scatter", lambda v: ops.scatter(np.array([[0, 1], [2, 0], [0, 1]]), v, (3, 2)),
           lambda v: np.add.at(z := np.zeros((3, 2)), (np.array([0, 2, 0]), np.array([1, 0, 1])), v) or z,
           [((normal(3, seed=1),), {})]),
    OpInfo("scatter_update",
           lambda x, u: ops.scatter_update(x, np.array([[0, 1], [2, 0]]), u),
           lambda x, u: np.where(np.isin(np.arange(6).reshape(3, 2), [1, 4]),
                                 np.array([[0, u[0]], [0, 0], [u[1], 0]]), x),
           [((normal(3, 2, seed=1), normal(2, seed=2)), {})]),
    OpInfo("segment_sum", lambda d: ops.segment_sum(d, np.array([0, 0, 2, 1]), 4),
           lambda d: np.stack([d[:2].sum(0), d[3], d[2], np.zeros(d.shape[1:])]),
           [((normal(4, 3, seed=1),), {})]),
    OpInfo("median", ops.median, np.median,
           [((normal(5, seed=1),), {}), ((normal(3, 4, seed=2),), {"axis": 1}),
            ((normal(3, 4, seed=3),), {"axis": 0, "keepdims": True})]),
]

# Ops without a gradient: their outputs are constants for the tape.
NOGRAD = [
    ("sign", ops.sign, np.sign, (normal(3, 4),)),
    ("round", ops.round, np.round, (normal(3, 4) * 3,)),
    ("floor", ops.floor, np.floor, (normal(3, 4) * 3,)),
    ("ceil", ops.ceil, np.ceil, (normal(3, 4) * 3,)),
    ("trunc", ops.trunc, np.trunc, (normal(3, 4) * 3,)),
    ("argmax", ops.argmax, np.argmax, (normal(3, 4),)),
    ("argmax_axis", lambda x: ops.argmax(x, axis=1), lambda x: np.argmax(x, 1), (normal(3, 4),)),
    ("argmin", lambda x: ops.argmin(x, axis=0), lambda x: np.argmin(x, 0), (normal(3, 4),)),
    ("argsort", ops.argsort, np.argsort, (normal(3, 4),)),
    ("equal", ops.equal, np.equal, (np.array([1.0, 2.0]), np.array([1.0, 3.0]))),
    ("not_equal", ops.not_equal, np.not_equal, (np.array([1.0, 2.0]), np.array([1.0, 3.0]))),
    ("greater", ops.greater, np.greater, (normal(3), normal(3, seed=1))),
    ("greater_equal", ops.greater_equal, np.greater_equal, (normal(3), normal(3, seed=1))),
    ("less", ops.less, np.less, (normal(3), normal(3, seed=1))),
    ("less_equal", ops.less_equal, np.less_equal, (normal(3), normal(3, seed=1))),
    ("any", ops.any, np.any, (normal(3) > 0,)),
    ("all", lambda x: ops.all(x, axis=0), lambda x: np.all(x, 0), (normal(3, 2) > 0,)),
    ("isnan", ops.isnan, np.isnan, (np.array([0.0, np.nan, np.inf]),)),
    ("isinf", ops.isinf, np.isinf, (np.array([0.0, np.nan, np.inf]),)),
    ("isfinite", ops.isfinite, np.isfinite, (np.array([0.0, np.nan, np.inf]),)),
    ("logical_and", ops.logical_and, np.logical_and, (normal(4) > 0, normal(4, seed=1) > 0)),
    ("logical_or", ops.logical_or, np.logical_or, (normal(4) > 0, normal(4, seed=1) > 0)),
    ("logical_xor", ops.logical_xor, np.logical_xor, (normal(4) > 0, normal(4, seed=1) > 0)),
    ("logical_not", ops.logical_not, np.logical_not, (normal(4) > 0,)),
    ("count_nonzero", ops.count_nonzero, np.count_nonzero, (np.array([0.0, 1.0, 2.0]),)),
    ("floor_divide", ops.floor_divide, np.floor_divide, (normal(4) * 5, away0(4))),
    ("one_hot", lambda x: ops.one_hot(x, 4), lambda x: np.eye(4)[x], (np.array([0, 3, 1]),)),
]


def _call(info, args, kwargs):
    return info.fn(*args, **kwargs)


def _weights(out, seed=123):
    return [np.asarray(_rng(seed + i).standard_normal(np.shape(o))) for i, o in enumerate(out)]


def _objective(info, args, kwargs, ws):
    outs = _flat_out(_call(info, args, kwargs))
    return sum(float(np.sum(np.asarray(o, dtype=np.float64) * w)) for o, w in zip(outs, ws))


def _cases():
    for info in OPS:
        for i, (args, kwargs) in enumerate(info.samples):
            yield pytest.param(info, args, kwargs, id=f"{info.name}-{i}")


@pytest.mark.parametrize("info,args,kwargs", [c for c in _cases() if c.values[0].ref is not None])
def test_forward_matches_numpy(info, args, kwargs):
    got = _flat_out(_call(info, args, kwargs))
    want = _flat_out(info.ref(*args, **kwargs))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert not isinstance(g, Tensor)  # outside a tape: raw arrays
        g = np.asarray(g)
        assert g.shape == np.shape(w), (g.shape, np.shape(w))
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("info,args,kwargs", [c for c in _cases() if c.values[0].grad])
def test_gradient_matches_finite_differences(info, args, kwargs):
    diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype == np.float64]
    assert diff, "a gradient sample needs a float64 array argument"
    args = list(args)
    outs0 = _flat_out(_call(info, args, kwargs))
    ws = _weights(outs0)
    with GradientTape() as tape:
        tape.watch([args[i] for i in diff])
        outs = _flat_out(_call(info, args, kwargs))
        if len(outs) == 1:
            target, og = outs[0], ws[0]
        else:
            target = ops.sum(ops.stack([ops.sum(ops.multiply(o, w)) for o, w in zip(outs, ws)]))
            og = None
    if args and all(a.size == 0 for a in (args[i] for i in diff)):
        return  # nothing to differentiate (empty inputs): forward checked above
    grads = tape.gradient(target, [args[i] for i in diff], output_gradients=og)
    for i, g in zip(diff, grads):
        x = args[i]
        num = np.zeros_like(x)
        flat = x.reshape(-1)
        for j in range(x.size):
            old = flat[j]
            flat[j] = old + info.eps
            fp = _objective(info, args, kwargs, ws)
            flat[j] = old - info.eps
            fm = _objective(info, args, kwargs, ws)
            flat[j] = old
            num.reshape(-1)[j] = (fp - fm) / (2 * info.eps)
        if x.size and not np.any(num):
            assert g is None or not np.any(g), f"{info.name}: argument {i}: spurious gradient"
            continue
        assert g is not None, f"{info.name}: argument {i} got no gradient"
        g = np.asarray(g)
        assert g.shape == x.shape and g.dtype == x.dtype, (g.shape, g.dtype, x.shape)
        np.testing.assert_allclose(g, num, rtol=info.rtol, atol=info.atol,
                                   err_msg=f"{info.name}: argument {i}")


@pytest.mark.parametrize("name,fn,ref,args", NOGRAD, ids=[n[0] for n in NOGRAD])
def test_no_gradient_ops_return_constants(name, fn, ref, args):
    np.testing.assert_array_equal(np.asarray(fn(*args)), ref(*args))
    args = [np.array(a) for a in args]
    with GradientTape() as tape:
        tape.watch(args)
        traced = [ops.multiply(a, 1) if a.dtype.kind == "f" else a for a in args]
        out = fn(*traced)
    assert not isinstance(out, Tensor)
    np.testing.assert_array_equal(np.asarray(out), ref(*args))


def test_gradient_of_ops_with_a_constant_output_is_none():
    x = normal(3, 4)
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(ops.sign(x), 2.0))
    assert not isinstance(y, Tensor)  # nothing traced reached the output


def test_ops_without_gradient_raise_under_a_tape():
    x = normal(4)
    with GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(NotImplementedError, match="cumprod"):
            ops.cumprod(ops.multiply(x, 1.0))
        with pytest.raises(NotImplementedError, match="norm"):
            ops.norm(ops.reshape(ops.multiply(x, 1.0), (2, 2)), ord="nuc")
    np.testing.assert_allclose(ops.cumprod(x), np.cumprod(x))  # fine outside


def test_maximum_ties_go_to_first_argument():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.sum(ops.maximum(a, b))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(ga, [1, 0])
    np.testing.assert_array_equal(gb, [0, 1])


def test_max_ties_share_the_gradient():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.max(x, axis=1))
    np.testing.assert_array_equal(tape.gradient(y, x), [[0, 0.5, 0.5], [1, 0, 0]])


def test_relu_gradient_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.relu(x))
    np.testing.assert_array_equal(tape.gradient(y, x), [0, 0, 1])


# ------------------------------------------------------------------ dtypes and inputs
def test_python_scalars_and_lists_are_accepted():
    np.testing.assert_allclose(ops.add([1.0, 2.0], 3.0), [4.0, 5.0])
    assert ops.add([1.0, 2.0], 3.0).dtype == np.float32          # Python floats: float32
    assert ops.convert_to_tensor([1, 2]).dtype == np.int32
    assert ops.convert_to_tensor(np.arange(3.0)).dtype == np.float64
    x = np.ones(3, np.float32)
    assert ops.multiply(x, 2.5).dtype == np.float32              # weak Python scalars
    assert ops.exp(np.arange(3)).dtype == np.float32              # int -> floatx
    assert ops.mean(np.arange(4)).dtype == np.float32


def test_float32_matmul_uses_the_kernel_and_matches_numpy():
    rng = _rng(3)
    a = rng.standard_normal((33, 17)).astype(np.float32)
    b = rng.standard_normal((17, 29)).astype(np.float32)
    np.testing.assert_allclose(ops.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.sum(ops.matmul(a, b))
    ga, gb = tape.gradient(y, [a, b])
    assert ga.dtype == np.float32 and gb.dtype == np.float32
    np.testing.assert_allclose(ga, np.ones((33, 29), np.float32) @ b.T, rtol=1e-5)
    np.testing.assert_allclose(gb, a.T @ np.ones((33, 29), np.float32), rtol=1e-5, atol=1e-5)


def test_float32_gradient_of_float64_constant_mix_keeps_float32():
    w = np.ones(3, np.float32)
    with GradientTape() as tape:
        tape.watch(w)
        y = ops.sum(ops.multiply(w, np.arange(3.0)))  # float64 constant
    g = tape.gradient(y, w)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [0, 1, 2])


def test_creation_ops():
    assert ops.ones((2, 3)).dtype == np.float32 and ops.ones((2, 3)).shape == (2, 3)
    assert ops.zeros(4, dtype="int32").dtype == np.int32
    np.testing.assert_array_equal(ops.full((2,), 7.0), [7, 7])
    assert ops.full((2,), 7.0).dtype == np.float32
    x = np.ones((2, 2), np.float64)
    assert ops.zeros_like(x).dtype == np.float64 and ops.ones_like(x, "float32").dtype == np.float32
    np.testing.assert_array_equal(ops.full_like(x, 3), np.full((2, 2), 3.0))
    assert ops.arange(5).dtype == np.int32 and ops.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(ops.arange(1, 7, 2), [1, 3, 5])
    np.testing.assert_allclose(ops.linspace(0, 1, 5), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(ops.eye(3, 4, k=1), np.eye(3, 4, 1))
    assert ops.eye(3).dtype == np.float32
    np.testing.assert_array_equal(ops.identity(2), np.eye(2))
    np.testing.assert_array_equal(ops.tri(3), np.tri(3))


def test_one_hot_keras_semantics():
    oh = ops.one_hot(np.array([[0, 2], [1, -1]]), 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh[1, 1], [0, 0, 0])        # out of range: zeros
    np.testing.assert_array_equal(ops.one_hot(np.array([1, 0]), 2, axis=0), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(ops.multi_hot(np.array([[0, 2], [1, 1]]), 3),
                                  [[1, 0, 1], [0, 1, 0]])


def test_core_helpers():
    x = np.arange(6.0).reshape(2, 3)
    assert ops.shape(x) == (2, 3)
    assert ops.convert_to_numpy(x) is x or np.array_equal(ops.convert_to_numpy(x), x)
    assert ops.stop_gradient(x) is x
    assert ops.cast(x, "int32").dtype == np.int32
    assert ops.ndim(x) == 2 and ops.size(x) == 6
    v, i = ops.top_k(np.array([[1.0, 5.0, 3.0]]), 2)
    np.testing.assert_array_equal(v, [[5, 3]])
    np.testing.assert_array_equal(i, [[1, 2]])
    np.testing.assert_array_equal(ops.in_top_k(np.array([1, 0]),
                                               np.array([[1.0, 5.0, 3.0], [1.0, 5.0, 3.0]]), 2),
                                  [True, False])
    assert ops.cond(True, lambda: 1, lambda: 2) == 1
    assert ops.fori_loop(0, 3, lambda i, v: v + i, 0) == 3
    assert ops.while_loop(lambda v: v < 10, lambda v: v * 2, 1) == 16
    np.testing.assert_array_equal(ops.vectorized_map(lambda r: ops.sum(r), x), [3, 12])
    np.testing.assert_array_equal(ops.where(np.array([0, 1, 1]))[0], [1, 2])


def test_builtin_named_ops_do_not_shadow_builtins_in_kernel_module():
    import fastdl.ops as m
    assert m.sum is not sum and m.max is not max and m.abs is not abs and m.all is not all
    assert "sum" not in vars(m)  # served by the module __getattr__
    # the kernel argument parsing that uses the builtins keeps working
    np.testing.assert_array_equal(ops.max_pool2d(np.ones((1, 4, 4, 1), np.float32), (2, 2)),
                                  np.ones((1, 2, 2, 1), np.float32))
    assert "matmul" in dir(m) and "sum" in dir(m)


def test_crossentropy_matches_keras_reference_values():
    # values computed with Keras 3's formulas (clipping at 1e-7)
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    o = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_allclose(ops.categorical_crossentropy(t, o), [-np.log(0.8), -np.log(0.6)])
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(np.array([1, 0]), o),
                               [-np.log(0.8), -np.log(0.6)])
    np.testing.assert_allclose(ops.binary_crossentropy(np.array([1.0]), np.array([1.0])),
                               [-np.log(1 - 1e-7)], rtol=1e-6)
    np.testing.assert_allclose(ops.sparse_categorical_crossentropy(np.array([[1], [0]]), o),
                               [-np.log(0.8), -np.log(0.6)])


def test_custom_gradient_keras_form():
    @ops.custom_gradient
    def log1pexp(x):
        e = ops.exp(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))
        return ops.log(1 + e), grad

    x = np.array([0.5, 100.0, -3.0])
    np.testing.assert_allclose(log1pexp(x)[[0, 2]], np.log1p(np.exp(x[[0, 2]])))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(log1pexp(x), 2.0))
        g = tape.gradient(y, x)        # inside the with-block, as TensorFlow allows
    np.testing.assert_allclose(g, 2 / (1 + np.exp(-x)))


def test_erfinv_and_control_flow():
    y = np.array([-0.9, -0.2, 0.0, 0.5, 0.99])
    np.testing.assert_allclose(table_erf(ops.erfinv(y)), y, rtol=1e-10, atol=1e-12)
    with GradientTape() as tape:
        tape.watch(y)
        s = ops.sum(ops.erfinv(y))
    x = ops.erfinv(y)
    np.testing.assert_allclose(tape.gradient(s, y), np.sqrt(np.pi) / 2 * np.exp(x * x))
    assert ops.switch(5, [lambda v: v + 1, lambda v: v * 10], 2) == 20
    carry, ys = ops.scan(lambda c, v: (c + v, c * v), 0.0, np.array([1.0, 2.0, 3.0]))
    assert carry == 6.0
    np.testing.assert_array_equal(ys, [0.0, 2.0, 9.0])
    w = np.array([2.0])
    with GradientTape() as tape:
        tape.watch(w)
        c, _ = ops.scan(lambda c, v: (ops.multiply(c, w), None), np.array([1.0]), length=3)
        total = ops.sum(c)
    np.testing.assert_allclose(tape.gradient(total, w), [3 * 4.0])   # d w^3 / dw


def table_erf(x):
    return np_erf(x)


def test_crossentropy_shape_checks():
    with pytest.raises(ValueError, match="same shape"):
        ops.binary_crossentropy(np.ones((3, 1)), np.ones(3) * 0.5)
    with pytest.raises(ValueError, match="same shape"):
        ops.categorical_crossentropy(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="does not match"):
        ops.sparse_categorical_crossentropy(np.ones((3, 2), int), np.ones((3, 4)))


@pytest.mark.parametrize("kw", [{}, {"strides": 2, "padding": "same"}, {"strides": 3},
                                {"strides": (2, 1), "padding": "same"}])
def test_conv_transpose_is_the_adjoint_of_conv(kw):
    """<conv_transpose(y, w), x> == <y, conv(x, w)> for every x of the output's shape."""
    y = normal(2, 3, 4, 3, seed=1)
    w = normal(3, 3, 2, 3, seed=2)
    t = ops.conv_transpose(y, w, **kw)
    x = normal(*t.shape, seed=3)
    c = ops.conv(x, w, **kw)
    assert c.shape == y.shape
    np.testing.assert_allclose(np.sum(t * x), np.sum(y * c), rtol=1e-10)
