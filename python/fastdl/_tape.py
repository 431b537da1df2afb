"""Reverse-mode automatic differentiation: the tape behind ``GradientTape`` and ``fit``.

The design, in the spirit of PyTorch's autograd and TensorFlow's tape:

* While a ``GradientTape`` records, every differentiable operation whose inputs
  depend on something the tape watches returns a :class:`Tensor`: the value (a
  NumPy or CuPy array) plus a ``Node`` that knows its parents and its
  vector-Jacobian product (vjp). Operations on values that depend on nothing
  watched return plain arrays, at plain NumPy cost.
* What a tape watches: the trainable weights of layers (every array that
  ``Layer.add_weight`` created trainable is registered as a *variable*) and
  whatever ``tape.watch(x)`` names. A watched raw array that reaches an
  operation becomes a leaf Tensor, one per array and recording.
* Primitive operations are written once with :func:`primitive`: a forward on raw
  arrays and a vjp. Built-in layers record themselves as a single node whose vjp
  is their fused C++ backward pass (``Layer.__call__`` does it), so a model made
  of built-in layers costs one node per layer.
* Anything the tape cannot follow is an error, never a silent zero gradient:
  NumPy functions and ufuncs applied to a Tensor while it is being recorded
  (``__array_function__``/``__array_ufunc__``), converting it to a NumPy array
  (``__array__``), and in-place writes (``__setitem__``).
"""
import heapq
import itertools
import threading
import weakref

import numpy as np

__all__ = ["Tensor", "GradientTape", "primitive", "record", "recording", "value", "is_tensor",
           "register_variable", "stop_gradient"]

class _State(threading.local):
    """Per thread: the tapes entered, the ones recording now, whether any watches trainable
    weights. Class attributes are the defaults, so reading them never raises (cheap)."""
    tapes = None
    active = ()
    auto = False
    capture = None   # the fastdl._replay.Capture following a layer's call, if any


_state = _State()


def _tapes():
    t = getattr(_state, "tapes", None)
    if t is None:
        t = _state.tapes = []
    return t


def recording():
    """True while a GradientTape records on this thread."""
    return bool(_state.active)


def _refresh():
    """Recompute this thread's recording tapes (after a tape starts, stops or pauses)."""
    tapes = tuple(t for t in _tapes() if t._recording)
    _state.active = tapes
    _state.auto = any(t._auto for t in tapes)


# ------------------------------------------------------------------ variables
# TensorFlow's tape watches the trainable variables a computation reads; ours watches
# every trainable fastdl.Variable, and the arrays registered here: id(array) -> array
# for trainable weights that are not Variables (device arrays). Layers register those
# when they create or move them and drop them when replaced.
_variables = {}


def register_variable(a):
    _variables[id(a)] = a
    return a


def unregister_variable(a):
    if _variables.get(id(a)) is a:
        del _variables[id(a)]


# ------------------------------------------------------------------ tensors
# id -> weak reference of the gradients a tape returned while another tape recorded
_nested_results = {}


_seq = itertools.count()   # creation order: consumers are always made after what they use


class Node:
    __slots__ = ("parents", "vjp", "name", "logits", "_seq")

    def __init__(self, parents, vjp, name):
        self.parents = parents  # tuple of Tensor or None (constants)
        self.vjp = vjp          # g -> tuple of gradients (or None), one per parent
        self.name = name
        self._seq = next(_seq)
        self.logits = None      # (activation name, logits Tensor) for a layer's output
                                # activation: a loss may fuse with it (losses.Loss)


class Operators:
    """Python operators through fastdl.ops, for the traced values of the tape (Tensor) and
    the symbolic ones of the functional API (KerasTensor): the ops record or build nodes."""
    __slots__ = ()

    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().subtract(self, o)
    def __rsub__(self, o): return _ops().subtract(o, self)
    def __mul__(self, o): return _ops().multiply(self, o)
    def __rmul__(self, o): return _ops().multiply(o, self)
    def __truediv__(self, o): return _ops().divide(self, o)
    def __rtruediv__(self, o): return _ops().divide(o, self)
    def __matmul__(self, o): return _ops().matmul(self, o)
    def __rmatmul__(self, o): return _ops().matmul(o, self)
    def __pow__(self, o): return _ops().power(self, o)
    def __rpow__(self, o): return _ops().power(o, self)
    def __neg__(self): return _ops().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops().abs(self)
    def __getitem__(self, key): return _ops().get_item(self, key)

    @property
    def T(self):
        return _ops().transpose(self)

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 else shape)


class Tensor(Operators):
    """A value computed under a GradientTape, with the node that computed it.

    It behaves like the array it holds for shapes, dtypes and Python operators;
    ``fastdl.ops`` functions accept it. ``.numpy()`` gives the value."""
    __slots__ = ("value", "node", "_tapes", "_seq", "_soft", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, value, node, tapes, soft=False):
        self.value = value
        self.node = node      # None for a leaf
        self._tapes = tapes   # the tapes that were recording when it was made
        self._seq = next(_seq)
        # a soft leaf stands for a raw input while a layer's call is captured
        # (fastdl._replay): NumPy may use it as the raw array it is, which only makes the
        # capture unusable, where a traced value would be refused
        self._soft = soft

    # ---------------------------------------------------------- array-like
    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)

    def __len__(self):
        return len(self.value)

    def numpy(self):
        _escape(self, "numpy()")
        return _host(self.value)

    def __repr__(self):
        return f"<fastdl.Tensor shape={self.shape} dtype={self.dtype} value=\n{self.value!r}>"

    def __float__(self):
        _escape(self, "float()")
        return float(self.value)

    def __int__(self):
        _escape(self, "int()")
        return int(self.value)

    def __bool__(self):
        _escape(self, "bool()")
        return bool(self.value)

    def __format__(self, spec):
        _escape(self, "format()")
        return format(self.value.item() if self.value.size == 1 else self.value, spec)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _live(self):
        for t in self._tapes:
            if t._recording:
                return True
        return False

    # Outside its recording a Tensor is just its value; inside, NumPy would
    # compute past the tape, so that is refused with the name of the function.
    def __array__(self, dtype=None, copy=None):
        if self._soft:
            _escape(self, "a NumPy conversion")
        elif self._live():
            raise TypeError(
                "a traced fastdl.Tensor cannot be converted to a NumPy array while its "
                "GradientTape is recording: the gradient would be lost there. Use fastdl.ops "
                "functions on it (or fastdl.ops.stop_gradient / .numpy() for a constant)")
        v = _host(self.value)
        return v if dtype is None else v.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import ops
        if method == "__call__" and not kwargs:
            fn = _UFUNC_OPS.get(ufunc.__name__)
            if fn is not None:
                return getattr(ops, fn)(*inputs)
        if any(isinstance(a, Tensor) and a._live() and not _soft_use(a, ufunc.__name__)
               for a in inputs):
            raise TypeError(
                f"numpy.{ufunc.__name__} cannot be traced by fastdl's autodiff: the gradient would "
                f"be lost. Use the fastdl.ops function of the same name (fastdl.ops."
                f"{_UFUNC_OPS.get(ufunc.__name__, ufunc.__name__)}) inside a traced call")
        inputs = tuple(value(a) for a in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if any(isinstance(a, Tensor) and a._live() and not _soft_use(a, func.__name__)
               for a in _flat(args) + _flat(kwargs)):
            raise TypeError(
                f"numpy.{func.__name__} cannot be traced by fastdl's autodiff: the gradient would "
                f"be lost. Use fastdl.ops.{func.__name__} (or another fastdl.ops function) on "
                f"traced values")
        return func(*_unwrap(args), **_unwrap(kwargs))

    def __setitem__(self, key, val):
        if _soft_use(self, "an in-place write"):
            self.value[key] = value(val)
            return
        raise TypeError("a traced fastdl.Tensor cannot be written in place (x[...] = v): the "
                        "autodiff cannot follow in-place writes. Build a new value instead, e.g. "
                        "with fastdl.ops.where or fastdl.ops.concatenate")

    # comparisons have no gradient: they give plain boolean arrays
    def __lt__(self, o): return _escape(self, "<") or self.value < value(o)
    def __le__(self, o): return _escape(self, "<=") or self.value <= value(o)
    def __gt__(self, o): return _escape(self, ">") or self.value > value(o)
    def __ge__(self, o): return _escape(self, ">=") or self.value >= value(o)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype):
        return _ops().cast(self, dtype)


def _bind_operators(f):
    """Tensor's operators straight to the differentiable functions f (a name -> function
    table of fastdl._kops): a traced value is never symbolic, so the functional API's check
    in fastdl.ops is skipped on this hot path."""
    add, sub, mul, div, mm, pw = (f[n] for n in ("add", "subtract", "multiply", "divide",
                                                 "matmul", "power"))
    neg, ab, item = f["negative"], f["abs"], f["get_item"]
    T = Tensor
    T.__add__ = lambda self, o: add(self, o)
    T.__radd__ = lambda self, o: add(o, self)
    T.__sub__ = lambda self, o: sub(self, o)
    T.__rsub__ = lambda self, o: sub(o, self)
    T.__mul__ = lambda self, o: mul(self, o)
    T.__rmul__ = lambda self, o: mul(o, self)
    T.__truediv__ = lambda self, o: div(self, o)
    T.__rtruediv__ = lambda self, o: div(o, self)
    T.__matmul__ = lambda self, o: mm(self, o)
    T.__rmatmul__ = lambda self, o: mm(o, self)
    T.__pow__ = lambda self, o: pw(self, o)
    T.__rpow__ = lambda self, o: pw(o, self)
    T.__neg__ = lambda self: neg(self)
    T.__abs__ = lambda self: ab(self)
    T.__getitem__ = lambda self, key: item(self, key)


_UFUNC_OPS = {"add": "add", "subtract": "subtract", "multiply": "multiply",
              "true_divide": "divide", "divide": "divide", "matmul": "matmul", "power": "power",
              "negative": "negative",
              # no gradient: `numpy_array < tensor` gives the boolean array `tensor > ...` gives
              "less": "less", "less_equal": "less_equal", "greater": "greater",
              "greater_equal": "greater_equal", "equal": "equal", "not_equal": "not_equal"}


_OPS = []


def _ops():
    if not _OPS:
        from . import ops
        _OPS.append(ops)
    return _OPS[0]


def _flat(x):
    if isinstance(x, dict):
        return [b for v in x.values() for b in _flat(v)]
    if isinstance(x, (list, tuple)):
        return [b for v in x for b in _flat(v)]
    return [x]


def _unwrap(x):
    if isinstance(x, Tensor):
        return x.value
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    return x


from ._device import to_host as _host  # noqa: E402


def value(x):
    """The raw array of a Tensor, the plain ndarray of a Variable or EagerTensor; anything
    else unchanged."""
    t = type(x)
    if t is Tensor or t is Variable or t is EagerTensor:
        return x.value
    return x


def is_tensor(x):
    return isinstance(x, Tensor)


# ------------------------------------------------------------------ recording
def _active():
    return _state.active


def _track(x, tapes):
    """x as a participant of the recording: a Tensor, a leaf for a watched array, or None
    (a constant: nothing under the tape depends on it)."""
    if type(x) is Tensor:
        if x._tapes is tapes or x._live():   # (made in this very recording: the common case)
            return x
        x = x.value  # a Tensor of a finished recording is a constant (or a watched array)
    key = id(x)
    if len(tapes) == 1:   # the common case, without the bookkeeping of nested tapes
        t = tapes[0]
        hit = t._leaves.get(key)
        if hit is not None:
            return hit[1]
        if key in t._watched or (t._auto and ((type(x) is Variable and x._trainable) or
                                              _variables.get(key) is x)):
            leaf = Tensor(value(x), None, tapes)
            t._leaves[key] = (x, leaf)
            return leaf
        return None
    hit = None
    for t in tapes:
        hit = t._leaves.get(key)
        if hit is not None:
            break
    if hit is not None and len(tapes) == 1:
        return hit[1]
    auto = _state.auto and ((type(x) is Variable and x._trainable) or _variables.get(key) is x)
    watchers = [t for t in tapes if key in t._watched or (auto and t._auto)]
    if hit is not None:
        # one leaf per array: a tape that watches it too (an inner tape opened after an
        # outer one first met the array) shares the leaf
        for w in watchers:
            w._leaves.setdefault(key, hit)
        return hit[1]
    if not watchers:
        return None
    leaf = Tensor(value(x), None, tuple(tapes))
    for t in watchers:
        t._leaves[key] = (x, leaf)
    return leaf


def needs_grad(x):
    """True when x takes part in the current recording (a gradient may flow into it)."""
    tapes = _active()
    return bool(tapes) and _track(x, tapes) is not None


def leaf(a):
    """The traced value standing for a watched array in the current recording, or None."""
    tapes = _active()
    return _track(a, tapes) if tapes else None


def record(name, out_values, inputs, vjp, redo=None):
    """Record one operation computed outside the tape.

    out_values: the raw output array, or a tuple of them; inputs: the operation's
    differentiable inputs (Tensors, raw arrays, anything); vjp(gs) -> one gradient
    (or None) per input, where gs is the output gradient (a tuple for a tuple of
    outputs, None entries for outputs that got none). Returns the outputs as
    Tensors when some input depends on a watched value, else the raw outputs.
    redo: (forward, vjp, kwargs, takes_needs) for operations that can be run again on new
    values (primitive, op_needs): what a layer's captured call replays (fastdl._replay)."""
    tapes = _state.active
    if not tapes:
        return out_values
    tracked = []
    live = False
    for x in inputs:
        if type(x) is Tensor and x._tapes is tapes:
            tracked.append(x)
            live = True
        else:
            t = _track(x, tapes)
            tracked.append(t)
            live = live or t is not None
    if not live:
        c = _state.capture
        if c is not None and c.follows(inputs):
            # computed from a weight the tape does not follow (a frozen layer) or from such
            # a result: a step of the captured call all the same, never a frozen constant;
            # a soft leaf, so that what is computed from it is seen too
            res = tuple(Tensor(v, None, tapes, True) for v in out_values) \
                if type(out_values) is tuple else Tensor(out_values, None, tapes, True)
            c.add(name, redo, inputs, res)
            return res
        return out_values
    tracked = tuple(tracked)
    if type(out_values) is tuple:
        node = Node(tracked, vjp, name)
        res = tuple(Tensor(v, node, tapes) for v in out_values)
        for i, o in enumerate(res):
            o.node = _Select(node, i, len(res))
    else:
        res = Tensor(out_values, Node(tracked, vjp, name), tapes)
    if _state.capture is not None:
        _state.capture.add(name, redo, inputs, res)
    return res


def record_needs(name, out_values, inputs, vjp, redo=None):
    """record(), for a vjp(needs, gs) that also gets which inputs the tape follows (a tuple
    of booleans): the gradients of the others are not computed."""
    res = record(name, out_values, inputs, vjp, redo)
    first = res[0] if type(res) is tuple and res else res
    if type(first) is Tensor and first.node is not None:
        node = first.node
        if type(node) is _Select:
            node = node.node
        needs = tuple([p is not None for p in node.parents])
        node.vjp = lambda g: vjp(needs, g)
    return res


class _Select:
    """One output of a multi-output node: gradients of sibling outputs meet in the parent."""
    __slots__ = ("node", "index", "count", "name")

    def __init__(self, node, index, count):
        self.node, self.index, self.count = node, index, count
        self.name = node.name


def primitive(name, forward, vjp):
    """A differentiable operation from a forward on raw arrays and a vjp.

    forward(*raw_args, **kwargs) -> raw output; vjp(g, out, *raw_args, **kwargs) ->
    one gradient (or None) per positional argument. Positional arguments are the
    differentiable ones; keyword arguments are static (axes, shapes, ...)."""
    def op(*args, **kwargs):
        raw = [value(a) for a in args]
        out = forward(*raw, **kwargs)
        if not _state.active:
            return out
        return record(name, out, args, lambda g: vjp(g, out, *raw, **kwargs),
                      (forward, vjp, kwargs, False))
    op.__name__ = name
    op.__qualname__ = name
    return op


class paused:
    """Nothing is recorded inside ``with paused():`` (building, shape inference)."""

    def __enter__(self):
        self._saved = getattr(_state, "tapes", [])
        _state.tapes = []
        _refresh()

    def __exit__(self, *exc):
        _state.tapes = self._saved
        _refresh()
        return False


class untraced:
    """``with untraced():`` code that computes on raw arrays by design (a built-in layer's
    fused forward and backward, an optimizer's in-place update) sees Variables as plain
    arrays: their operators are not recorded. Cheaper than paused(): the tapes stay entered."""
    __slots__ = ("_saved",)

    def __enter__(self):
        self._saved = _state.active
        _state.active = ()

    def __exit__(self, *exc):
        _state.active = self._saved
        return False


def stop_gradient(x):
    """The value of x, treated as a constant by the tape."""
    if type(x) is Tensor:
        _escape(x, "stop_gradient")
    return value(x)


def _escape(x, what):
    """A traced value's data leaves the tape (a Python number, a comparison, a constant):
    a captured layer call that does this cannot be replayed (fastdl._replay). Returns None."""
    c = _state.capture
    if c is not None and type(x) is Tensor:
        c.broken = c.broken or what


def _soft_use(x, what):
    """True for a soft leaf (see Tensor), whose use by NumPy marks the capture unusable."""
    if x._soft:
        _escape(x, what)
        return True
    return False


_written = [0]   # weights written outside any recording (set_weights, assign)


def _weights_written(what):
    """A variable is written: inside a captured call, that call is not replayed; outside
    any recording (set_weights, loading), every program is captured again, as they may hold
    what was computed from a weight the tape does not follow (fastdl/_replay.py)."""
    if _state.active:
        _side_effect(what)
    else:
        _written[0] += 1


def _side_effect(what):
    """Something a captured layer call does besides computing (a variable's in-place update,
    add_loss): a replay would skip it, so that call is not replayed."""
    c = _state.capture
    if c is not None:
        c.broken = c.broken or what


# ------------------------------------------------------------------ backprop
def _recorded_by(tape):
    """keep() for tape: the Tensors computed while it recorded, and its own leaves. An
    inner tape treats values computed before it started as constants (TensorFlow's rule)."""
    own = {id(leaf) for _, leaf in tape._leaves.values()}

    def keep(p):
        return tape in p._tapes or (p.node is None and id(p) in own)
    return keep


def _accumulate(grads, key, g):
    old = grads.get(key)
    grads[key] = g if old is None else old + g


def _device_sum(g, axis, keepdims=False):
    return g.sum(axis=axis, keepdims=keepdims)


def _sum_to(g, shape):
    """Sum a broadcast gradient back to shape (NumPy broadcasting rules)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    # (ufunc.reduce directly for NumPy: ndarray.sum's Python wrapper costs more than a
    # small sum; device arrays sum by their method)
    add = np.add.reduce if type(g) is np.ndarray else _device_sum
    if lead:
        g = add(g, axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = add(g, axis=axes, keepdims=True)
    return g.reshape(shape)


def _run(node, g, grads, keep, heap):
    """Apply node's vjp to g; add the gradients into grads, and queue the parents that got
    their first gradient (leaves need no processing)."""
    gin = node.vjp(g)
    if type(gin) is not tuple and not isinstance(gin, (tuple, list)):
        gin = (gin,)
    for p, gp in zip(node.parents, gin):
        if p is None or gp is None or (keep is not None and not keep(p)):
            continue
        pv = p.value
        shape = getattr(gp, "shape", None)
        if shape is not None:
            if shape != pv.shape:
                gp = _sum_to(gp, pv.shape)
            # a float32 value gets a float32 gradient even where a float64 constant or a
            # Python scalar took part in the vjp
            pd = pv.dtype
            if gp.dtype != pd and pd.kind in "fc":
                gp = gp.astype(pd)
        key = id(p)
        old = grads.get(key)
        if old is None:
            grads[key] = gp
            if p.node is not None:
                heapq.heappush(heap, (-p._seq, p))
        else:
            grads[key] = old + gp


def _backprop(target, seed, keep=None):
    """Reverse mode from target: values are processed latest-made first (a value is made
    after everything it uses, so all of its consumers are done before it), each once, and
    only those a gradient reached."""
    grads = {id(target): seed}
    heap = [(-target._seq, target)]
    pop = heapq.heappop
    while heap:
        v = pop(heap)[1]
        if type(v) is Node:        # a multi-output operation: its outputs' gradients
            gs = grads.get(id(v))
            if gs is not None and any(x is not None for x in gs):
                _run(v, tuple(gs), grads, keep, heap)
            continue
        g = grads.get(id(v))
        node = v.node
        if g is None or node is None:
            continue
        if type(node) is _Select:
            parent = node.node
            slot = grads.get(id(parent))
            if slot is None:
                slot = grads[id(parent)] = [None] * node.count
                heapq.heappush(heap, (-parent._seq, parent))
            slot[node.index] = g if slot[node.index] is None else slot[node.index] + g
            continue
        _run(node, g, grads, keep, heap)
    return grads


# ------------------------------------------------------------------ the tape
class GradientTape:
    """TensorFlow's GradientTape over fastdl's operations.

    ``with GradientTape() as tape:`` records the operations run inside it that
    depend on trainable weights (``watch_accessed_variables=True``) or on
    arrays given to ``tape.watch``. ``tape.gradient(target, sources)`` returns
    d target / d source for each source (None where the target does not depend
    on it). A non-persistent tape answers one ``gradient`` call."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = bool(persistent)
        self._auto = bool(watch_accessed_variables)
        self._recording = False
        self._used = False
        self._watched = {}   # id -> array (keeps it alive so the id stays its own)
        self._leaves = {}    # id(array) -> (array, leaf Tensor)

    def __enter__(self):
        if self._used and not self._persistent:
            raise RuntimeError("this GradientTape was already used; make a new one (or pass "
                               "persistent=True to take several gradients)")
        self._recording = True
        _tapes().append(self)
        _refresh()
        return self

    def __exit__(self, *exc):
        self._recording = False
        t = _tapes()
        if self in t:
            t.remove(self)
        _refresh()
        return False

    def watch(self, x):
        """Track x (an array, a Tensor, or a list/tuple of them) as a source."""
        for a in _flat(x):
            if isinstance(a, Tensor):
                if a._live():
                    continue  # already traced
                a = a.value  # a Tensor of a finished recording: watch its value
            if not hasattr(a, "shape"):
                raise TypeError(f"GradientTape.watch expects arrays, got {type(a).__name__}")
            self._watched[id(a)] = a

    def stop_recording(self):
        tape = self

        class _Pause:
            def __enter__(self_):
                tape._recording = False
                _refresh()

            def __exit__(self_, *exc):
                tape._recording = True
                _refresh()
                return False
        return _Pause()

    def reset(self):
        self._leaves = {}

    def watched_variables(self):
        return [a for a, _ in self._leaves.values()]

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        if self._used and not self._persistent:
            raise RuntimeError("GradientTape.gradient can be called only once on a non-persistent "
                               "tape; use GradientTape(persistent=True) to take several gradients")
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got "
                             f"{unconnected_gradients!r}")
        single = not isinstance(sources, (list, tuple, dict))
        src_list = [sources] if single else (list(sources.values()) if isinstance(sources, dict)
                                             else list(sources))
        if not isinstance(target, Tensor) or self not in target._tapes:
            ref = _nested_results.get(id(target))
            if ref is not None and ref() is target:
                raise NotImplementedError(
                    "GradientTape.gradient: the target is a gradient an inner tape computed "
                    "while this tape recorded. Higher-order gradients (nested tapes) are not "
                    "supported: the backward passes run on raw arrays (NumPy and the fused C++ "
                    "kernels), so the outer tape cannot record them")
            raise ValueError(
                "GradientTape.gradient: the target was not computed under this tape from anything "
                "it watches (a trainable weight used inside the `with` block, or an array given to "
                "tape.watch). Compute the loss inside `with GradientTape() as tape:`")
        if output_gradients is None:
            if target.size != 1:
                raise ValueError(
                    f"GradientTape.gradient: the target has shape {target.shape}; it must be a "
                    f"scalar (reduce it, e.g. fastdl.ops.mean(loss)) or come with "
                    f"output_gradients= of the same shape")
            xp = _xp(target.value)
            seed = xp.ones(target.shape, target.dtype)
        else:
            seed = value(output_gradients)
            if not hasattr(seed, "shape"):
                seed = np.asarray(seed, dtype=target.dtype)
            if tuple(seed.shape) != tuple(target.shape):
                raise ValueError(f"GradientTape.gradient: output_gradients has shape {seed.shape}, "
                                 f"the target {target.shape}")
        self._used = True  # a call rejected above leaves the tape usable
        grads = _backprop(target, seed, _recorded_by(self))
        out = []
        for s in src_list:
            g = None
            if isinstance(s, Tensor):
                g = grads.get(id(s))
                if g is None and not s._live():
                    s = s.value  # watched through its value (see watch)
            if not isinstance(s, Tensor) and g is None:
                hit = self._leaves.get(id(s))
                g = grads.get(id(hit[1])) if hit is not None and hit[0] is s else None
            if g is None and unconnected_gradients == "zero":
                g = _xp(value(s)).zeros(value(s).shape, value(s).dtype)
            if isinstance(g, np.generic):
                g = np.asarray(g)
            if g is not None and hasattr(g, "shape") and g.shape != value(s).shape:
                g = _sum_to(g, value(s).shape)
            out.append(g)
        if _state.active:
            # another tape records around this call: remember the results, so that using one
            # as that tape's target says why it cannot be differentiated again
            for g in out:
                if isinstance(g, np.ndarray):
                    _nested_results[id(g)] = weakref.ref(
                        g, lambda r, k=id(g): _nested_results.pop(k, None))
        if single:
            return out[0]
        if isinstance(sources, dict):
            return dict(zip(sources.keys(), out))
        return out


from ._device import xp as _xp  # noqa: E402
from ._variable import EagerTensor, Variable  # noqa: E402
