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

Batches: predict keeps Keras' batch_size semantics (steps counts batches; the last
batch is the partial one) and its bits. When every layer computes each output row
from its input row alone (``Layer._rows_independent``), the plan runs up to
``CHUNK_ROWS`` rows, whole batches, per call, and the last partial batch on its own:
the GEMM computes each batch of a call as a product of its own (ops.linear_fn's
group_rows, the groups spread over the threads), so every row has the bits a
batch-by-batch predict gives it (the GEMM's short edge tiles and its direct loop for
tiny products round differently from a larger product), without a Python iteration
and a parallel region per batch of 32.
"""
import functools
import threading

import numpy as np

from ..layers import layer as layer_mod
from ..layers.layer import _version

# Rows per kernel call of a long predict: enough that the GEMM runs near its peak and
# that threads meet rarely; few enough that a layer's output (2048 x 128 floats: 1 MiB)
# stays in cache for the next layer.
CHUNK_ROWS = 2048
_MAX_ROW_COUNTS = 8   # row counts a plan keeps functions (and output arrays) for


class InferencePlan:
    """Inference of ``layers`` (a stack, in order) on host inputs of shape
    (rows,) + ``sample_shape``, cast to ``dtype``."""

    def __init__(self, layers, sample_shape, dtype):
        self.version = _version[0]
        self.sample_shape = tuple(sample_shape)
        self.dtype = np.dtype(dtype)
        self.layers = list(layers)
        self._fns = {}        # (rows, rows per batch) -> [functions]
        self._lock = threading.Lock()

    # A copied or pickled model starts without a plan (it holds functions, a lock and
    # the original's arrays); its first predict makes its own.
    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (_no_plan, ())

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

    def _functions(self, rows, batch):
        key = (rows, batch)
        fns = self._fns.get(key)
        if fns is None:
            if len(self._fns) >= _MAX_ROW_COUNTS:
                self._fns.clear()
            fns = []
            for l, shape in zip(self.layers, self._shapes(rows)):
                f = l._inference_fn(rows, shape, batch) if shape is not None else None
                if f is None:
                    f = functools.partial(l.call, training=False)
                if isinstance(f, tuple):
                    fns.extend(f)
                elif f is not layer_mod.identity:
                    fns.append(f)
            self._fns[key] = fns
        return fns

    def _chunk(self, bs):
        """Rows per kernel call for batch size bs: a multiple of bs."""
        if all(l._rows_independent for l in self.layers):
            return bs * max(1, CHUNK_ROWS // bs)
        return bs

    def _run(self, x, batch):
        for f in self._functions(len(x), batch):
            x = f(x)
        return x

    def predict(self, x, batch_size, steps):
        """The outputs for x (an ndarray already matched with valid_for) in batches of
        batch_size, or None where predict's general path must run."""
        n = len(x)
        if steps is None and 0 < n <= (batch_size or 32) and x.dtype == self.dtype:
            with self._lock:   # one batch, as it comes (a request served at a time)
                fns = self._fns.get((n, n)) or self._functions(n, n)
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
            chunk = self._chunk(bs)
            full = n - n % bs
            out = None
            lo = 0
            while lo < n:
                hi = min(lo + chunk, full) if lo < full else n
                y = self._run(x[lo:hi], bs)
                if out is None:
                    out = np.empty((n,) + y.shape[1:], y.dtype)
                out[lo:hi] = y
                lo = hi
            return out


def _no_plan():
    return None


def plan_for(model, x, layers):
    """The model's cached plan for inputs like x, made (and cached) from ``layers``
    when there is none or it went stale; None when layers is None."""
    plan = model.__dict__.get("_inference_plan")
    if plan is not None and plan.valid_for(x):
        return plan
    plan = InferencePlan(layers, x.shape[1:], model.dtype) if layers is not None else None
    model.__dict__["_inference_plan"] = plan
    return plan
