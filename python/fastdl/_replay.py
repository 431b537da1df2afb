"""Capture and replay of a layer's traced call: a custom layer costs one tape node per call.

A layer written with ``fastdl.ops`` (a ``call`` without a fused backward) is recorded op by
op: every operation goes through the Python dispatch of ``fastdl.ops`` and leaves a node on
the tape, and backpropagation walks those nodes one by one. For a small layer called at
batch 32 that Python work costs more than the arithmetic.

Keras 3 traces ``train_step`` once per input signature (``tf.function``, ``jax.jit``) unless
``run_eagerly=True``; fastdl does the same per layer, in three steps per signature (the
shapes, dtypes and traced-ness of the inputs, ``training`` and the other call arguments, and
the layer's own plain Python settings such as ints, floats and strings):

1. *capture*: the call runs as usual, and each operation it records is also kept as a
   program step: the operation's forward and vjp on raw arrays, where each argument comes
   from (an input, a weight, an earlier step, or a constant);
2. *check*: the next call runs as usual too, and the program is replayed on the same inputs
   beside it; the outputs must agree to the bit. Anything the program would get wrong, a
   value computed from the data outside the tape and then frozen into the program (a
   comparison, a Python number, a random draw, ``stop_gradient``), shows up here;
3. *replay*: from then on the program runs instead of ``call``: its forwards in order, and
   one tape node whose vjp runs its vjps in reverse order, with the tape's own rules for
   broadcast gradients and dtypes. The numbers are those of the op-by-op path.

While a call is captured, what it computes from raw inputs and from weights the tape does
not follow (a frozen layer) is recorded as steps too: the inputs stand as *soft* leaves
(NumPy may still read them, which only makes the capture unusable), and operations on a
frozen weight are steps that read the weight at each replay. ``set_weights`` or ``assign``
outside a recording capture every program again.

A matmul by a weight followed by the add of a bias weight (and a relu) runs as one GEMM with
Dense's bias and activation epilogue; its backward calls the kernels the three vjps call. If
the fused forward does not match the op-by-op call at the check, the plain steps are used.

A call that does something a program cannot repeat is never replayed, and says nothing: it
keeps running op by op, exactly as before. That is: an operation without a forward to run
again (a built-in layer, a random op, a custom gradient), a traced value turned into a
Python number or compared, NumPy on a traced value or a weight, a variable written,
``add_loss``, a value from outside the call, nested tapes. A layer keeps at most
MAX_PROGRAMS programs. ``compile(run_eagerly=True)`` turns replay off for fit and evaluate,
as it turns off tracing in Keras.

The fused step plans (models/sequential.py, functional.py) run such layers outside the
tape: ``Layer._plan_call`` replays the checked program on raw arrays and its backward fills
the layer's gradients; until a program is checked, the layer runs its low-level recorded
call (as ``model(x, training=True)`` outside a tape).
"""
import threading

import numpy as np

from . import _tape
from ._tape import Tensor, _state, _sum_to

__all__ = ["Capture", "Program", "eager", "for_layer"]

_CHECKED = "checked"


class _Eager(threading.local):
    depth = 0


_eager = _Eager()


class eager:
    """``with eager():`` layers run their calls op by op (compile(run_eagerly=True))."""

    def __enter__(self):
        _eager.depth += 1

    def __exit__(self, *exc):
        _eager.depth -= 1
        return False


PLAIN = (bool, int, float, str, type(None))
MAX_PROGRAMS = 8   # per layer: signatures past these run op by op


def signature(layer, flat, kwargs):
    """The key a program is kept under, or None when this call is not replayable. kwargs:
    the arguments call gets besides the inputs (``training`` among them when call takes it)."""
    items = []
    for k, v in kwargs.items():
        if type(v) not in PLAIN:
            return None
        items.append((k, v))
    ins = []
    for a in flat:
        t = type(a)
        if t is Tensor:
            v = a.value
            ins.append((v.shape, v.dtype, True))
        elif hasattr(a, "shape") and hasattr(a, "dtype"):
            ins.append((a.shape, a.dtype, t))
        else:
            return None
    # the layer's plain settings (ints, floats, strings...) may steer call: a program is
    # kept per version of them (Layer.__setattr__ counts the changes)
    return (tuple(ins), tuple(items), layer.__dict__.get("_settings_version"), _tape._written[0])


class Capture:
    """What one call of a layer recorded, as a program (see the module docstring)."""

    def __init__(self, flat_inputs, variables=()):
        self.slot = {}        # id(object) -> slot
        self.kinds = []       # per slot: ("in", i) | ("var", obj) | ("op", step)
        self.keep = []        # the objects behind the ids (kept alive while capturing)
        self.steps = []
        self.broken = None
        for i, a in enumerate(flat_inputs):
            self._new(a, ("in", i))
        # the layer's variables by themselves and by their plain arrays (what an operation
        # gets once it unwrapped one)
        self.var_of = {}
        for v in variables:
            self.var_of[id(v)] = v
            self.var_of[id(_tape.value(v))] = v

    def _new(self, obj, kind):
        s = len(self.kinds)
        self.kinds.append(kind)
        self.slot[id(obj)] = s
        self.keep.append(obj)
        return s

    def _source(self, a):
        """The slot an operation's argument comes from, -1 for a constant, None when it
        cannot be told (the capture is then broken)."""
        s = self.slot.get(id(a))
        if s is not None:
            return s
        if type(a) is Tensor:
            if a.node is not None:
                return None      # computed outside this call
            obj = _leaf_source(a)
            if obj is None:
                return None
            s = self.slot.get(id(obj))
            if s is None:
                s = self._new(obj, ("var", obj))
            self.slot[id(a)] = s
            self.keep.append(a)
            return s
        v = self.var_of.get(id(a))
        if v is None and _is_variable(a):
            v = a   # a Variable of another layer, not followed
        if v is not None:   # a weight the tape does not follow
            s = self.slot.get(id(v))
            if s is None:
                s = self._new(v, ("var", v))
            self.slot[id(a)] = s
            return s
        return -1

    def follows(self, inputs):
        """Some input of an operation the tape does not record is a variable or a value
        this capture computed: the operation is a step all the same."""
        for a in inputs:
            if id(a) in self.var_of or _is_variable(a):
                return True
        return False

    def add(self, name, redo, inputs, res):
        if self.broken:
            return
        if redo is None:
            self.broken = f"operation {name}"
            return
        srcs, consts = [], []
        for a in inputs:
            s = self._source(a)
            if s is None:
                self.broken = f"operation {name} on a value from outside the call"
                return
            srcs.append(s)
            consts.append(_tape.value(a) if s < 0 else None)
        outs = res if type(res) is tuple else (res,)
        k = len(self.steps)
        slots = tuple(self._new(o, ("op", k)) for o in outs)
        fwd, vjp, kwargs, needs_style = redo
        self.steps.append(_Step(name, fwd, vjp, kwargs, needs_style, tuple(srcs), tuple(consts),
                                slots, type(res) is tuple))

    def program(self, outputs):
        """The Program of this capture for the call's outputs, or None."""
        if self.broken:
            return None
        out_slots = []
        for o in outputs:
            s = self.slot.get(id(o)) if type(o) is Tensor else None
            if s is None or self.kinds[s][0] != "op":
                return None      # an output the program does not compute
            out_slots.append(s)
        final = None
        if len(outputs) == 1 and self.steps:
            # a softmax/sigmoid marked with its logits ends the call: replayed as a node of
            # its own, so that a cross-entropy loss still fuses with it
            last = self.steps[-1]
            mark = getattr(outputs[0].node, "logits", None)
            if (mark is not None and last.outs == (out_slots[0],) and len(last.srcs) == 1 and
                    last.srcs[0] >= 0 and self.slot.get(id(mark[1])) == last.srcs[0]):
                final = (last, mark[0])
                out_slots = [last.srcs[0]]
        steps = self.steps[:-1] if final else self.steps
        if not steps:
            return None
        nvar = [k[1] for k in self.kinds if k[0] == "var"]
        return Program(list(self.kinds), steps, tuple(out_slots), nvar, final,
                       _fuse_linear(steps, self.kinds, out_slots, final))


def _fuse_linear(steps, kinds, out_slots, final):
    """steps with each matmul(x, w) + b (then relu) on variables w, b as one GEMM with its
    bias and activation epilogue (Dense's kernel, ops.linear), or None when none fuses.
    The fused step computes the same numbers (checked like the rest of the program) and
    its backward runs the three vjps, so the gradients are those of the plain steps."""
    uses = {}
    for st in steps + ([final[0]] if final else []):
        for s in st.srcs:
            uses[s] = uses.get(s, 0) + 1
    for s in out_slots:
        uses[s] = uses.get(s, 0) + 1
    out, i, fused = [], 0, False
    while i < len(steps):
        mm = steps[i]
        add = steps[i + 1] if i + 1 < len(steps) else None
        y = mm.outs[0] if mm.name == "matmul" and not mm.multi else None
        if (y is not None and add is not None and add.name == "add" and uses.get(y) == 1 and
                y in add.srcs and kinds[mm.srcs[1]][0] == "var" and mm.srcs[0] >= 0):
            b = add.srcs[1] if add.srcs[0] == y else add.srcs[0]
            if b >= 0 and kinds[b][0] == "var":
                act = steps[i + 2] if i + 2 < len(steps) else None
                z = add.outs[0]
                if not (act is not None and act.name == "relu" and act.srcs == (z,) and
                        uses.get(z) == 1):
                    act = None
                out.append(_linear_step(mm, add, act, b))
                i += 3 if act else 2
                fused = True
                continue
        out.append(mm)
        i += 1
    return out if fused else None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _linear_step(mm, add, act, b):
    bias_first = add.srcs[0] == b
    name = "relu" if act else "linear"

    def fwd(x, w, bias):
        if (type(x) is np.ndarray and type(w) is np.ndarray and type(bias) is np.ndarray and
                x.ndim == 2 and w.ndim == 2 and bias.ndim == 1 and x.dtype in _FLOATS and
                x.dtype == w.dtype == bias.dtype and bias.shape[0] == w.shape[1]):
            return _ops().linear(x, w, bias, activation=name)
        y = mm.fwd(x, w, **mm.kwargs)
        z = add.fwd(bias, y, **add.kwargs) if bias_first else add.fwd(y, bias, **add.kwargs)
        return act.fwd(z, **act.kwargs) if act else z

    def vjp(needs, g, out, x, w, bias):
        if type(g) is np.ndarray and type(out) is np.ndarray and g.dtype == out.dtype and \
                type(x) is np.ndarray and type(w) is np.ndarray and x.ndim == 2 and \
                x.dtype == w.dtype == g.dtype and g.dtype in _FLOATS:
            # the kernels the three vjps call, without their dispatch
            k = _ops()
            if act:
                g = k.activation_backward(np.ascontiguousarray(g), out, "relu")
            return (k.gemm(g, w, trans_b=True) if needs[0] else None,
                    k.gemm(x, g, trans_a=True) if needs[1] else None,
                    np.add.reduce(g, axis=(0,)) if needs[2] else None)
        if act:
            g = act.vjp(g, out, out, **act.kwargs)   # (relu's mask from its output)
            g = g[0] if isinstance(g, (tuple, list)) else g
        gx, gw = mm.vjp(needs[:2], g, out, x, w, **mm.kwargs)
        return gx, gw, (g if needs[2] else None)

    outs = act.outs if act else add.outs
    return _Step("linear", fwd, vjp, {}, True, (mm.srcs[0], mm.srcs[1], b), (None, None, None),
                 outs, False)


def _ops():
    from . import ops
    return ops


class _Step:
    __slots__ = ("name", "fwd", "vjp", "kwargs", "needs_style", "srcs", "consts", "outs",
                 "multi")

    def __init__(self, name, fwd, vjp, kwargs, needs_style, srcs, consts, outs, multi):
        self.name, self.fwd, self.vjp, self.kwargs = name, fwd, vjp, kwargs
        self.needs_style, self.srcs, self.consts, self.outs = needs_style, srcs, consts, outs
        self.multi = multi


def _is_variable(a):
    """A fastdl.Variable (or an object standing as one): trainable flag and live value."""
    return hasattr(a, "_trainable") and hasattr(a, "value")


def _leaf_source(leaf):
    """The watched array or weight a leaf Tensor stands for (from the recording tapes)."""
    for t in _state.active:
        for obj, lf in t._leaves.values():
            if lf is leaf:
                return obj
    return None


def _args(step, vals):
    return [vals[s] if s >= 0 else c for s, c in zip(step.srcs, step.consts)]


class Program:
    """A captured call: run(flat raw inputs) -> the outputs, recorded as one tape node."""

    def __init__(self, kinds, steps, outs, variables, final, fused=None):
        self.n = len(kinds)
        self.inputs = [s for s, k in enumerate(kinds) if k[0] == "in"]
        self.var_slots = [s for s, k in enumerate(kinds) if k[0] == "var"]
        self.variables = variables
        self.steps = fused or steps
        self.plain = steps if fused else None   # the unfused steps, if the fused ones differ
        self.outs = outs
        self.final = final
        self.status = None     # None until checked, then _CHECKED
        self._req = {}

    def forward(self, raw_inputs):
        """The slot values for raw inputs (the weights' current values)."""
        vals = [None] * self.n
        for s, a in zip(self.inputs, raw_inputs):
            vals[s] = a
        for s, v in zip(self.var_slots, self.variables):
            vals[s] = _tape.value(v)
        for st in self.steps:
            out = st.fwd(*[vals[s] if s >= 0 else c for s, c in zip(st.srcs, st.consts)],
                         **st.kwargs)
            if st.multi:
                for s, o in zip(st.outs, out):
                    vals[s] = o
            else:
                vals[st.outs[0]] = out
        return vals

    def outputs_of(self, vals):
        """The call's outputs (raw), the final marked activation applied."""
        outs = [vals[s] for s in self.outs]
        if self.final is not None:
            st = self.final[0]
            outs = [st.fwd(outs[0], **st.kwargs)]
        return outs

    def check(self, outs, raw):
        """The check of a captured program against the op-by-op call's outputs (Tensors) on
        the same raw inputs: marks it checked and returns True when they agree to the bit,
        with the plain steps if the fused ones do not."""
        while True:
            with _tape.untraced():
                mine = self.outputs_of(self.forward(raw))
            if len(outs) == len(mine) and all(same(_tape.value(a), b)
                                              for a, b in zip(outs, mine)):
                self.status = _CHECKED
                return True
            if self.plain is None:
                return False
            self.steps, self.plain, self._req = self.plain, None, {}   # the plain steps

    def final_vjp(self, g, out, z):
        """The gradient at the logits from the gradient at the final activation's output."""
        st = self.final[0]
        if st.needs_style:
            gz = st.vjp((True,), g, out, z, **st.kwargs)
        else:
            gz = st.vjp(g, out, z, **st.kwargs)
        return gz[0] if isinstance(gz, (tuple, list)) else gz

    def _plan(self, needs):
        """The backward steps for the parents' needs, last first: (step, which of its
        arguments need a gradient), only steps with at least one."""
        plan = self._req.get(needs)
        if plan is None:
            req = [False] * self.n
            for s, nd in zip(self.inputs + self.var_slots, needs):
                req[s] = nd
            plan = []
            for st in self.steps:
                nd = tuple(s >= 0 and req[s] for s in st.srcs)
                r = any(nd)
                for s in st.outs:
                    req[s] = r
                if r:
                    plan.append((st, nd))
            plan.reverse()
            self._req[needs] = plan
        return plan

    def record(self, name, flat_inputs, raw_inputs):
        """Run the program and record it as one node; the outputs (Tensors, or raw arrays
        when nothing they depend on is followed)."""
        vals = self.forward(raw_inputs)
        outs = [vals[s] for s in self.outs]
        multi = len(outs) > 1
        parents = (*flat_inputs, *self.variables)
        backward = self._backward

        def vjp(needs, g):
            return backward(vals, needs, g if multi else (g,))
        res = _tape.record_needs(name, tuple(outs) if multi else outs[0], parents, vjp)
        res = list(res) if multi else [res]
        if self.final is not None:
            st, act = self.final
            z = res[0]
            zv = _tape.value(z)
            pv = st.fwd(zv, **st.kwargs)
            p = _tape.record(st.name, pv, (z,), lambda g: (self.final_vjp(g, pv, zv),))
            if type(p) is Tensor:
                p.node.logits = (act, z)
            res = [p]
        return res

    def _backward(self, vals, needs, gs):
        grads = [None] * self.n
        for s, g in zip(self.outs, gs):
            if g is not None:
                grads[s] = g if grads[s] is None else grads[s] + g
        for st, nd in self._plan(needs):
            if st.multi:
                g = tuple(grads[s] for s in st.outs)
                if all(x is None for x in g):
                    continue
                out = tuple(vals[s] for s in st.outs)
            else:
                g = grads[st.outs[0]]
                if g is None:
                    continue
                out = vals[st.outs[0]]
            args = _args(st, vals)
            if st.needs_style:
                gin = st.vjp(nd, g, out, *args, **st.kwargs)
            else:
                gin = st.vjp(g, out, *args, **st.kwargs)
            if type(gin) is not tuple and type(gin) is not list:
                gin = (gin,)
            for s, need, gp, a in zip(st.srcs, nd, gin, args):
                if not need or gp is None:
                    continue
                shape = getattr(gp, "shape", None)
                if shape is not None:
                    if shape != a.shape:
                        gp = _sum_to(gp, a.shape)
                    if gp.dtype != a.dtype and a.dtype.kind in "fc":
                        gp = gp.astype(a.dtype)
                old = grads[s]
                grads[s] = gp if old is None else old + gp
        return [grads[s] for s in self.inputs + self.var_slots]


def same(a, b):
    """Bitwise agreement of two raw outputs (NaNs agree with NaNs)."""
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    xp = np if isinstance(a, np.ndarray) else __import__("cupy")
    return bool(xp.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


class Programs(dict):
    """A layer's programs: signature -> Program, or False (never replayed). A copied or
    pickled layer starts without them (they hold functions and the layer's variables)."""

    def __deepcopy__(self, memo):
        return Programs()

    def __reduce__(self):
        return (Programs, ())


def for_layer(layer):
    """The layer's Programs."""
    d = layer.__dict__
    progs = d.get("_programs")
    if progs is None:
        progs = d["_programs"] = Programs()
    return progs
