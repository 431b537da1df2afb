"""Cached inference plans: predict without the per-call overhead.

``predict`` on a model of built-in layers spends more time in Python than in its
kernels when it is called on one sample (a request served at a time): finding the
model's device and dtype, checking the input, each layer's call and buffer lookup.
An ``InferencePlan`` does that work once per (model, sample shape): it holds, per
number of rows, one function per layer with the layer's weights and output arrays
bound (``Layer._inference_fn``; the layer's ``call(x, training=False)`` for layers
without one), so a call checks the input's type, shape and dtype against the plan
and runs the kernels.

A plan stays valid while no layer structure, weight list, trainable flag or device
changes (the layers' structure version, which all of those bump): weights updated
in place (fit, set_weights, load_weights) are read through the arrays the plan
holds. Anything a plan does not cover (other input types or shapes, callbacks, an
overridden predict_step) takes predict's general path,
which also raises the errors for bad input. Threads calling predict on one model at
once take turns on its plan (its output arrays are shared).

Batches: predict keeps Keras' batch_size semantics and its bits. Where every layer
computes each output row from its input row alone, with the same bits in any batch
of a multiple of batch_size rows (``Layer._rows_keep_bits``: for the GEMM, when
batch_size is a multiple of its micro-tile's rows MR, so that no row falls in a
short edge tile, which sums in another order), the plan runs up to ``CHUNK_ROWS``
rows per kernel call, whole batches, and the last partial batch on its own, as the
general path does. Otherwise (Keras' default batch_size 32 with MR = 6, say) it runs
one batch per kernel call, in a loop with nothing else in it.
"""
import functools
import threading

import numpy as np

from ..layers import layer as layer_mod
from ..layers.layer import _version

# Rows per kernel call of a long predict: large enough that the GEMM runs near its
# peak, small enough that a layer's output stays in the L2 cache for the next layer.
CHUNK_ROWS = 512
_MAX_ROW_COUNTS = 8   # row counts a plan keeps functions (and output arrays) for


class InferencePlan:
    """Inference of ``layers`` (a stack, in order) on host inputs of shape
    (rows,) + ``sample_shape``, cast to ``dtype``."""

    def __init__(self, layers, sample_shape, dtype):
        self.version = _version[0]
        self.sample_shape = tuple(sample_shape)
        self.dtype = np.dtype(dtype)
        self.layers = list(layers)
        self._fns = {}        # rows -> [functions]
        self._keep_bits = {}  # batch size -> whether larger batches give the same bits
        self._lock = threading.Lock()

    def valid_for(self, x):
        return self.version == _version[0] and x.shape[1:] == self.sample_shape

    def _shapes(self, rows):
        """The sample shape each layer takes (None once a shape is unknown)."""
        shape, out = self.sample_shape, []
        for l in self.layers:
            out.append(shape)
            if shape is not None:
                try:
                    shape = tuple(l.compute_output_shape((rows,) + shape)[1:])
                except Exception:
                    shape = None
        return out

    def _functions(self, rows):
        fns = self._fns.get(rows)
        if fns is None:
            if len(self._fns) >= _MAX_ROW_COUNTS:
                self._fns.clear()
            fns = []
            for l, shape in zip(self.layers, self._shapes(rows)):
                f = l._inference_fn(rows, shape) if shape is not None else None
                if f is None:
                    f = functools.partial(l.call, training=False)
                if isinstance(f, tuple):
                    fns.extend(f)
                elif f is not layer_mod.identity:
                    fns.append(f)
            self._fns[rows] = fns
        return fns

    def _chunk(self, bs):
        """Rows per kernel call for batch size bs: a multiple of bs."""
        keep = self._keep_bits.get(bs)
        if keep is None:
            keep = all(shape is not None and l._rows_keep_bits(bs, shape)
                       for l, shape in zip(self.layers, self._shapes(bs)))
            self._keep_bits[bs] = keep
        return bs * max(1, CHUNK_ROWS // bs) if keep else bs

    def _run(self, x):
        for f in self._functions(len(x)):
            x = f(x)
        return x

    def predict(self, x, batch_size, steps):
        """The outputs for x (an ndarray already matched with valid_for) in batches of
        batch_size, or None where predict's general path must run."""
        n = len(x)
        if steps is None and 0 < n <= (batch_size or 32) and x.dtype == self.dtype:
            with self._lock:   # one batch, as it comes (a request served at a time)
                fns = self._fns.get(n) or self._functions(n)
                for f in fns:
                    x = f(x)
                return x.copy()
        bs = int(batch_size or 32)
        if steps is not None:
            n = min(n, int(steps) * bs)
        if bs <= 0 or n <= 0:
            return None
        if x.dtype != self.dtype:
            if x.dtype.kind not in "fiub":
                return None   # the general path says what is wrong
            x = x.astype(self.dtype)
        with self._lock:
            # whole batches, up to a chunk at a time, then the last partial batch alone
            chunk = self._chunk(bs) if x.flags.c_contiguous else bs
            full = n - n % bs
            out = None
            lo = 0
            while lo < n:
                hi = min(lo + chunk, full) if lo < full else n
                y = self._run(x[lo:hi])
                if out is None:
                    out = np.empty((n,) + y.shape[1:], y.dtype)
                out[lo:hi] = y
                lo = hi
            return out


def plan_for(model, x, layers):
    """The model's cached plan for inputs like x, made (and cached) from ``layers``
    when there is none or it went stale; None when layers is None."""
    plan = model.__dict__.get("_inference_plan")
    if plan is not None and plan.valid_for(x):
        return plan
    plan = InferencePlan(layers, x.shape[1:], model.dtype) if layers is not None else None
    model.__dict__["_inference_plan"] = plan
    return plan
