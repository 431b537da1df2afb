"""The Layer base class: weights, building, calls (eager, traced, symbolic) and config.

A layer is called three ways, all through ``layer(inputs, training=...)``:

* **Eagerly** on arrays: builds itself from the input shape on first use and
  runs ``call``.
* **Under a GradientTape** (``fit`` runs each step under one): a built-in layer,
  one that implements ``backward``, runs its fused kernels and is recorded as
  a single node of the tape whose vector-Jacobian product is that ``backward``.
  A layer written by a user (only ``call``) has its ``call`` traced: the
  ``fastdl.ops`` functions and Python operators it uses are recorded, and its
  weights are handed to it as traced values, so no backward pass is written.
* **Symbolically** on ``KerasTensor`` s (``keras.Input``): builds itself from
  the shapes, infers the output shape, and records a graph ``Node``; that is
  how a functional ``Model(inputs, outputs)`` is made.

Built-in layers keep what their ``backward`` needs as attributes that ``call``
assigns (``self._x``, ...), and reuse output buffers between calls. A recorded
call keeps a snapshot of those attributes (and its own buffers), so a layer
shared by several calls in one step back-propagates each call with its own
state, and gradients of its weights are summed by the tape.
"""
import functools
import inspect
import math
import re

import numpy as np

from .. import _device, _random, _replay, _symbolic, _tape, _variable, initializers
from .._symbolic import KerasTensor

__all__ = ["Layer", "InputLayer", "Input", "unique_name", "shape_str", "call_with_mask"]


def identity(x):
    """What a layer that passes its input on at inference gives as its inference function."""
    return x

_name_counts = {}
_version = [0]   # bumped whenever any layer structure, weight list or trainable flag changes


def structure_changed():
    _version[0] += 1


def _snake(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    s = re.sub(r"(\d)_d(?=_|\b)", r"\1d", s)            # conv2_d(_transpose) -> conv2d
    return {"simple_r_n_n": "simple_rnn", "l_s_t_m": "lstm", "g_r_u": "gru",
            "re_l_u": "re_lu"}.get(s, s)


def unique_name(base):
    """Keras-style names: dense, dense_1, dense_2, ..."""
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def shape_str(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def float_dtype(dt):
    dt = np.dtype(dt)
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float32)


class Layer:
    """Base class of every layer, built-in or written by a user (Keras' ``keras.layers.Layer``)."""

    activity_regularizer = None

    # Masks (Keras 3): a layer that supports masking passes the mask of its input on
    # (compute_mask) and, when its call takes a ``mask`` argument, receives it; a layer
    # that does not drops it, with a warning, when models propagate masks.
    supports_masking = False

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        if not cls.__module__.startswith("fastdl."):
            # a user's layer or model: remember the constructor's arguments, so that
            # get_config works without being written when they are plain values (Keras 3)
            try:
                bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
                cfg = {}
                for k, v in list(bound.arguments.items())[1:]:
                    p = inspect.signature(cls.__init__).parameters[k]
                    if p.kind == inspect.Parameter.VAR_KEYWORD:
                        cfg.update(v)
                    elif p.kind != inspect.Parameter.VAR_POSITIONAL:
                        cfg[k] = v
                obj.__dict__["_auto_config"] = cfg
            except TypeError:
                pass
        return obj

    def __init__(self, *, name=None, input_shape=None, batch_input_shape=None, input_dim=None,
                 dtype=None, trainable=True, activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        from .. import regularizers
        # a penalty on the outputs, added to the losses at every call (Keras 3: not
        # divided by the batch size)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        object.__setattr__(self, "_layers", [])   # sub-layers, tracked by __setattr__
        self.name = name or unique_name(_snake(type(self).__name__))
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_dim is not None:
            input_shape = (int(input_dim),)
        if input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (int(input_shape),)
            input_shape = tuple(None if d is None else int(d) for d in input_shape)
        self._input_shape_arg = input_shape
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self._trainable = bool(trainable)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights = []        # own weights, Keras get_weights() order
        self._grads = []          # one gradient buffer per own weight (built-in layers)
        self._weight_names = []
        self._weight_trainable = []
        self._regularizers = []   # (weight, regularizer)
        self._losses = []         # add_loss values of the last call
        self._bufs = {}
        self._empty = _device.allocator(np.zeros(0))
        self._inbound = []        # symbolic Nodes this layer made (functional API)

    # ------------------------------------------------------------ tracking
    def __init_subclass__(cls, **kwargs):
        # Built-in layers hold no sub-layers and set attributes in every call: they skip the
        # tracking __setattr__. Any user class (and the models) tracks what it assigns.
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _marks_built(cls.__dict__["build"])
        if cls.__module__.startswith("fastdl.layers.") and "_tracks" not in cls.__dict__:
            cls.__setattr__ = object.__setattr__
        else:
            cls.__setattr__ = Layer.__setattr__

    def __setattr__(self, key, value):
        # Sub-layers assigned as attributes, or held in lists, tuples and dicts assigned
        # as attributes, are tracked: their weights are this layer's weights too (Keras).
        t = type(value)
        if t in _PLAIN or (t is tuple and key[0] == "_"):   # the hot path: what call() keeps
            object.__setattr__(self, key, value)           # for backward (arrays, shapes)
            if key[0] != "_" and t in _replay.PLAIN:
                # a setting call may read: a replayed program is captured again (_replay)
                d = self.__dict__
                d["_settings_version"] = d.get("_settings_version", 0) + 1
            return
        if isinstance(value, Layer):
            if all(value is not l for l in self.__dict__.get("_layers", ())):
                self.__dict__.setdefault("_layers", []).append(value)
                structure_changed()
        elif type(value) in (list, dict, tuple) and (
                not key.startswith("_") or any(isinstance(v, Layer) for v in _values(value))):
            if type(value) is list:
                value = _TrackedList(value)
            elif type(value) is dict:
                value = _TrackedDict(value)
            self.__dict__.setdefault("_containers", {})[key] = value
            structure_changed()
        object.__setattr__(self, key, value)

    def _sublayers(self):
        own = self.__dict__.get("_layers", [])
        boxes = self.__dict__.get("_containers")
        if not boxes:
            return own
        out = list(own)
        for key, box in boxes.items():
            if self.__dict__.get(key) is not box:
                continue
            for v in _values(box):
                if isinstance(v, Layer) and all(v is not l for l in out):
                    out.append(v)
        return out

    def _flatten_layers(self):
        """This layer and every layer under it, each once, depth first (cached until a
        layer, a weight or a trainable flag changes anywhere)."""
        hit = self.__dict__.get("_flat_cache")
        if hit is not None and hit[0] == _version[0]:
            return hit[1]
        seen, out, stack = set(), [], [self]
        while stack:
            l = stack.pop(0)
            if id(l) in seen:
                continue
            seen.add(id(l))
            out.append(l)
            stack[0:0] = l._sublayers()
        self.__dict__["_flat_cache"] = (_version[0], out)
        return out

    @property
    def layers(self):
        return list(self._sublayers())

    # ------------------------------------------------------------ weights
    def add_weight(self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None, autocast=True, **kwargs):
        """A new weight (Keras' add_weight): a ``fastdl.Variable`` (an ndarray) named
        ``name``, with path "<layer name>/<name>". Trainable weights are what the optimizer
        updates and what GradientTape watches."""
        if kwargs:
            raise TypeError(f"add_weight: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if constraint is not None:
            from .. import constraints
            constraint = constraints.get(constraint)   # unknown names fail before the weight
        if isinstance(initializer, str) and initializer == "zeros" and shape is None:
            shape = ()
        shape = () if shape is None else tuple(int(s) for s in shape)
        dt = float_dtype(dtype or self.dtype or np.float32)
        if self.dtype is None:
            self.dtype = dt
        init = initializers.get(initializer)
        w = _device.to_host(init(shape, dt)) if callable(init) else init
        w = _memory_copy(np.asarray(_tape.value(w), dtype=dt))
        name = name or f"weight_{len(self._weights)}"
        if _device.is_device(self._empty(0, np.float32)):
            w = _device.mover("cuda")(w)   # device weights stay device arrays (see _move)
            if trainable:
                _tape.register_variable(w)
        else:
            w = _variable._make(w, name, bool(trainable), None, self)
        self._weights.append(w)
        g = self._empty(w.shape, w.dtype)
        g.fill(0)
        self._grads.append(g)
        self._weight_names.append(name)
        self._weight_trainable.append(bool(trainable))
        if regularizer is not None:
            from .. import regularizers
            self._regularizers.append((len(self._weights) - 1, regularizers.get(regularizer)))
        if constraint is not None:
            constraints.attach(w, constraint)   # the optimizer applies it after each update
        structure_changed()
        return w

    def _variable_trainable_changed(self, v, flag):
        """variable.trainable = flag on one of this layer's weights."""
        for i, w in enumerate(self._weights):
            if w is v:
                self._weight_trainable[i] = flag
        structure_changed()

    def _weight_path(self, v):
        return f"{self.name}/{v.name}"

    def _grad_buf(self, i):
        return self._grads[i]

    def _own(self, trainable):
        return [w for w, t in zip(self._weights, self._weight_trainable)
                if (t and self._trainable) == trainable]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        for l in self._flatten_layers():
            l._trainable = bool(value)
        structure_changed()

    @property
    def weights(self):
        """Every weight, layer by layer in creation order (Keras 3's get_weights order)."""
        return _dedup([w for l in self._flatten_layers() for w in l._weights])

    @property
    def trainable_weights(self):
        hit = self.__dict__.get("_tw_cache")
        if hit is not None and hit[0] == _version[0]:
            return list(hit[1])
        ws = _dedup([w for l in self._flatten_layers() for w in l._own(True)])
        self.__dict__["_tw_cache"] = (_version[0], ws)
        return list(ws)

    @property
    def non_trainable_weights(self):
        return _dedup([w for l in self._flatten_layers() for w in l._own(False)])

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    @property
    def gradients(self):
        """dL/dw of the last backward call, same order as trainable_weights."""
        out = []
        for l in self._flatten_layers():
            for i, (w, t) in enumerate(zip(l._weights, l._weight_trainable)):
                if t and l._trainable:
                    out.append(l._grad_buf(i))
        return out

    def get_weights(self):
        return [np.array(_device.to_host(w)) for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"layer {self.name!r} expects {len(mine)} weight arrays, "
                             f"got {len(weights)}")
        for i, (w, new) in enumerate(zip(mine, weights)):
            new = np.asarray(_device.to_host(new))
            if new.shape != w.shape:
                raise ValueError(f"layer {self.name!r} weight {i} has shape {w.shape}, got an "
                                 f"array of shape {new.shape}")
            _device.assign(w, new)
        _tape._weights_written("set_weights")

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------ losses
    def add_loss(self, loss):
        """A value (computed in call, e.g. an activity penalty) added to the training loss."""
        _tape._side_effect("add_loss")
        self._losses.append(loss)

    @property
    def losses(self):
        """add_loss values of the last call and weight regularization penalties, of this
        layer and the layers under it."""
        out = []
        for l in self._flatten_layers():
            if l._losses:
                out.extend(l._losses)
            for i, reg in l._regularizers:
                out.append(reg(l._weights[i]))
        return out

    # ------------------------------------------------------------ masks
    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output for inputs with ``mask`` (Keras 3): passed on
        by a layer that supports masking, None otherwise."""
        return mask if self.supports_masking else None

    def _makes_mask(self):
        """True when this layer's output can carry a mask its input did not have
        (Embedding(mask_zero=True), Masking): models then propagate masks."""
        return False

    # ------------------------------------------------------------ build
    def build(self, input_shape):
        pass

    def compute_output_shape(self, input_shape):
        """Output shape for input_shape: a built-in layer keeps the shape unless it says
        otherwise; a layer written with ops is run once on zeros to find out."""
        if self._has_backward():
            return input_shape
        return _infer_shape(self, input_shape)

    def _build_from(self, input_shape, dtype=None, infer=True):
        """Build for input_shape (batch dim included, may be None); a list of shapes for
        layers with several inputs. infer=False leaves the output shape to the first call."""
        if self.dtype is None:
            self.dtype = float_dtype(dtype if dtype is not None else np.float32)
        if not self.built:
            self.build(input_shape)
            self.input_shape = input_shape
            self.built = True
            if infer:
                self.output_shape = _shape_tuple(self.compute_output_shape(input_shape))
        return self.output_shape

    def _check_input(self, shape):
        exp = self.input_shape
        if exp is None or not isinstance(exp, tuple) or (exp and isinstance(exp[0], tuple)):
            return
        if len(shape) != len(exp) or any(e is not None and e != s for e, s in zip(exp[1:], shape[1:])):
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) was built for inputs of shape "
                f"{shape_str(exp)} but got an input of shape {shape_str(tuple(shape))}; give it "
                f"inputs of the shape it was built for (or make a new layer)")

    # ------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        if not args:
            if "inputs" not in kwargs:
                raise TypeError(f"layer {self.name!r} was called without inputs")
            args = (kwargs.pop("inputs"),)
        if type(self).call is Layer.call:
            raise NotImplementedError(f"layer {self.name!r} ({type(self).__name__}) has no call "
                                      f"method: a Layer subclass must define call(self, inputs)")
        if _symbolic.any_symbolic(*args, *kwargs.values()):
            return self._symbolic_call(args, kwargs)
        if self._has_backward():
            training = kwargs.pop("training", False)
            mask = kwargs.pop("mask", None) if "mask" in _call_params(type(self)) else None
            if len(args) > 1 or kwargs:
                extra = list(kwargs) + [f"positional argument {i + 2}" for i in range(len(args) - 1)]
                raise TypeError(f"layer {self.name!r} ({type(self).__name__}): unexpected "
                                f"argument(s) {', '.join(extra)}")
            out = self._call_builtin(args[0], bool(training), mask)
            if self.activity_regularizer is not None:
                self.__dict__["_losses"] = []
                self._add_activity_loss(out)
            return out
        out = self._call_traced(args, kwargs)
        if self.activity_regularizer is not None:
            self._add_activity_loss(out)
        return out

    def _add_activity_loss(self, out):
        for o in (out if isinstance(out, (list, tuple)) else (out,)):
            self.add_loss(self.activity_regularizer(o))

    def _has_backward(self):
        return type(self).backward is not Layer.backward

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError

    def backward(self, dy, need_dx=True):
        """dL/dx for dL/dy of the last call; writes dL/dw into self.gradients."""
        rec = getattr(self, "_last_record", None)
        if rec is None:
            raise RuntimeError(f"layer {self.name!r}: backward needs a call with training=True "
                               f"first")
        if type(rec) is _ProgramRecord:
            return rec.backward(self, dy, need_dx)
        return _backward_recorded(self, rec, dy)

    # --- the fused step plan (models/sequential.py) calls layers on raw arrays
    def _plan_ready(self):
        """This layer can be a step of the fused step plan: built-in layers, and layers
        written with ops that hold no layers, take one array and add no losses in call
        (the others train through the tape)."""
        if self._has_backward():
            return True
        code = getattr(type(self).call, "__code__", None)
        return code is not None and "add_loss" not in code.co_names and \
            "mask" not in _call_params(type(self)) and not self._sublayers()

    def _plan_logits(self, act):
        """The logits of the last plan call when it ran a program ending in the activation
        act (fused with the loss), else None."""
        rec = self.__dict__.get("_last_record")
        if type(rec) is _ProgramRecord and rec.prog.final is not None and \
                rec.prog.final[1] == act:
            return rec.vals[rec.prog.outs[0]]
        return None

    def _plan_output(self):
        """The output of the last plan call that stopped at its logits (logits_for)."""
        rec = self._last_record
        if rec.out is None:
            rec.out = rec.prog.outputs_of(rec.vals)[0]
        return rec.out

    def _plan_backward_logits(self, dz, need_dx):
        """backward from the gradient at the logits _plan_logits gave."""
        return self._last_record.backward(self, dz, need_dx, at_logits=True)

    def _plan_call(self, x, training, need_dx=True, logits_for=None):
        """One training or inference call of the plan on a raw array. A layer written with
        ops runs its replayed program (fastdl/_replay.py) once one is checked for this
        signature, and until then the low-level recorded call (as model(x, training=True)
        outside a tape, the input followed only where need_dx); backward(dy, need_dx)
        follows either. logits_for: an activation (softmax, sigmoid) a loss fuses with; a
        program that ends in it stops before it and returns the logits (_plan_logits)."""
        if self._has_backward():
            return self.call(x, training)
        d = self.__dict__
        # (shape, dtype, training, program, settings version, weights-written count)
        fast = d.get("_plan_fast")
        if fast is not None and fast[0] == x.shape and fast[1] == x.dtype and \
                fast[2] is bool(training) and fast[4] == d.get("_settings_version") and \
                fast[5] == _tape._written[0]:
            prog = fast[3]
        else:
            kwargs = self._call_kwargs({"training": bool(training)})
            prog = d.get("_programs", {}).get(_replay.signature(self, [x], kwargs))
            if prog and prog.status is _replay._CHECKED:
                d["_plan_fast"] = (x.shape, x.dtype, bool(training), prog,
                                   d.get("_settings_version"), _tape._written[0])
            else:
                prog = None
        if prog is not None:
            vals = prog.forward([x])
            if logits_for is not None and prog.final is not None and \
                    prog.final[1] == logits_for:
                d["_last_record"] = _ProgramRecord(prog, vals, None)
                return vals[prog.outs[0]]
            out = prog.outputs_of(vals)[0]
            self.__dict__["_last_record"] = _ProgramRecord(prog, vals, out)
            return out
        if training:
            out = self._call_recorded((x,), kwargs, watch=need_dx)
            _check_plan_record(self)
        else:
            out = self(x, training=False)
        return _tape.value(out)

    # --- built-in layers: fused kernels, one tape node per call
    def _prepare(self, x):
        """Cast and check one input array; build on first use."""
        if isinstance(x, (list, tuple)):
            xs = [_device.as_batch(_tape.value(a), np.float32) for a in x]
            if not self.built:
                self._build_from([(None,) + tuple(a.shape[1:]) for a in xs], xs[0].dtype)
            return [a if a.dtype == self.dtype else a.astype(self.dtype) for a in xs]
        x = _device.as_batch(_tape.value(x), np.float32)
        if not self.built:
            self._build_from((None,) + tuple(x.shape[1:]), x.dtype)
        self._check_input(x.shape)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def _call_builtin(self, inputs, training, mask=None):
        raw = self._prepare(inputs)
        mk = {} if mask is None else {"mask": mask}
        if not _tape.recording():
            y = self.call(raw, training=training, **mk)
            if isinstance(y, (list, tuple)):
                return type(y)(o.copy() if any(o is b for b in self._bufs.values()) else o
                               for o in y)
            return y.copy() if any(y is b for b in self._bufs.values()) else y
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        need = [_tape.needs_grad(a) for a in ins]
        train_w = [w for w, t in zip(self._weights, self._weight_trainable) if t and self._trainable]
        if not train_w and not any(need):
            # nothing here is followed (e.g. a Flatten on the input batch): a constant for the
            # tape, not recorded. Its own buffers: an earlier recorded call's stay intact.
            object.__setattr__(self, "_bufs", {})
            st = _tape._state
            saved, st.active = st.active, ()
            try:
                return self.call(raw, training=training, **mk)
            finally:
                st.active = saved
        object.__setattr__(self, "_bufs", {})   # this call's own buffers
        multi = isinstance(inputs, (list, tuple))
        act = self._output_activation()
        split = act in ("softmax", "sigmoid") and self._fuses_logits() and not multi
        st = _tape._state   # the fused forward computes on raw arrays: weights are plain there
        saved, st.active = st.active, ()
        try:
            y = self._call_logits(raw, training) if split else self.call(raw, training=training,
                                                                         **mk)
        finally:
            st.active = saved
        if isinstance(y, list):
            y = tuple(y)   # several outputs (return_state): one node, a gradient per output
        state = dict(self.__dict__)

        def vjp(g):
            current = dict(self.__dict__)
            self.__dict__.update(state)
            # this call's weight gradients go to new arrays: the tape owns them
            self._grads = [self._empty(w.shape, w.dtype) for w in self._weights]
            st = _tape._state
            saved = st.active
            st.active = ()
            try:
                if split:
                    dx = self._backward_logits(g, need[0])
                else:
                    dx = self.backward(g, need_dx=any(need)) if multi else self.backward(g, need[0])
                grads = [self._grads[i] for i, (w, t) in
                         enumerate(zip(self._weights, self._weight_trainable))
                         if t and self._trainable]
            finally:
                st.active = saved
                self.__dict__.clear()
                self.__dict__.update(current)
            dxs = list(dx) if multi else [dx]
            return (*dxs, *grads)
        out = _tape.record(self.name, y, (*ins, *train_w), vjp)
        if isinstance(out, tuple):
            return list(out)
        if not split or not isinstance(out, _tape.Tensor):
            return out
        # The output activation as a node of its own, marked so that a loss that fuses
        # with it (softmax + categorical cross-entropy, sigmoid + binary) works on the
        # logits in one stable kernel, exactly as Sequential's step plan does.
        from .. import activations
        a = activations.get(act)
        p = a.forward(y)
        prob = _tape.record(f"{self.name}/{act}", p, (out,), lambda g: (a.backward(g, p),))
        prob.node.logits = (act, out)
        return prob

    # --- layers written with ops: the call is traced
    def _call_traced(self, args, kwargs):
        inputs = args[0]
        first = not self.built
        if first:
            shapes = _shapes_of(inputs)
            dt = next((a.dtype for a in _symbolic.flatten(inputs) if hasattr(a, "dtype")
                       and np.dtype(a.dtype).kind == "f"), None)
            self._build_from(shapes, dt, infer=False)
        out = self._call_traced_built(args, kwargs)
        if first and self.output_shape is None:
            flat = [o for o in _symbolic.flatten(out) if hasattr(o, "shape")]
            shapes = [(None,) + tuple(o.shape[1:]) for o in flat]
            self.output_shape = shapes[0] if len(shapes) == 1 and not isinstance(out, (list, tuple)) \
                else shapes
        return out

    def _call_traced_built(self, args, kwargs):
        inputs = args[0]
        training = kwargs.get("training")
        kwargs = self._call_kwargs(kwargs)
        self.__dict__["_losses"] = []   # (no tracking needed: a plain list of values)
        args = (_as_floats(inputs, self.dtype),) + tuple(args[1:])
        if not _tape.recording():
            if training:
                return self._call_recorded(args, kwargs)
            return self.call(*args, **kwargs)
        st = _tape._state
        if len(args) == 1 and st.capture is None and len(st.active) == 1 and \
                not _replay._eager.depth:
            flat = _replay_inputs(args[0])
            key = None if flat is None else _replay.signature(self, flat, kwargs)
            if key is not None:
                return self._call_replayable(args[0], flat, key, kwargs)
        return self._call_ops(args, kwargs)

    def _call_ops(self, args, kwargs, capture=False):
        """call, op by op under the tape; with capture=True, (outputs, the _replay.Capture
        that followed it)."""
        swapped = self._trace_weights()
        args = (_traced_inputs(args[0]),) + tuple(args[1:])
        st = _tape._state
        cap = None
        if capture and (swapped or any(type(a) is _tape.Tensor
                                       for a in _replay_inputs(args[0]) or ())):
            # (a call that follows nothing is not captured: nothing to replay)
            if swapped:
                # raw inputs as soft leaves: what call computes from them is recorded too,
                # and whatever leaves the tape from them is seen (fastdl/_replay.py)
                args = (_soft_inputs(args[0], st.active),) + tuple(args[1:])
            cap = st.capture = _replay.Capture(_replay_inputs(args[0]), self.weights)
        try:
            out = self.call(*args, **kwargs)
            return (out, cap) if capture else out
        finally:
            st.capture = None
            for k, v in swapped:
                object.__setattr__(self, k, v)

    def _call_replayable(self, inputs, flat, key, kwargs):
        """A traced call of a signature that may be replayed (fastdl/_replay.py): captured the
        first time, checked against the op-by-op call the second, replayed from then on."""
        progs = _replay.for_layer(self)
        prog = progs.get(key)
        if prog is None and key not in progs and len(progs) < _replay.MAX_PROGRAMS:
            out, cap = self._call_ops((inputs,), kwargs, capture=True)
            if cap is None:
                return out
            outs = _replay_outputs(out)
            prog = None if outs is None else cap.program(outs)
            if prog is not None:
                prog.pack = None if type(out) is _tape.Tensor else type(out)
            progs[key] = prog or False
            return out
        if not prog:
            return self._call_ops((inputs,), kwargs)
        raw = [_tape.value(a) for a in flat]
        if prog.status is None:
            out = self._call_ops((inputs,), kwargs)
            outs = _replay_outputs(out)
            if outs is None or not prog.check(outs, raw):
                progs[key] = False
            return out
        res = prog.record(self.name, flat, raw)
        return res[0] if prog.pack is None else prog.pack(res)

    def _call_kwargs(self, kwargs):
        accepts = _call_params(type(self))
        if "training" in kwargs and "training" not in accepts and not accepts.get("**"):
            kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        elif "training" in accepts and "training" not in kwargs:
            pass
        return kwargs

    def _trace_weights(self):
        """Hand call the traced leaves of this layer's weights in place of the raw arrays,
        so that every use of them (NumPy included) is either traced or refused."""
        if not self._weights:
            return ()
        d = self.__dict__
        names = d.get("_weight_attrs")
        stale = names is None or len(names) != d.get("_weight_attrs_n")
        if not stale:
            for k, w in names:
                if d.get(k) is not w:
                    stale = True
                    break
        if stale:
            own = {id(w) for w in self._weights}
            names = [(k, v) for k, v in d.items() if id(v) in own and not k.startswith("_")]
            d["_weight_attrs"] = names
            d["_weight_attrs_n"] = len(names)
        swapped = []
        for k, v in names:
            leaf = _tape.leaf(v)
            if leaf is not None:
                swapped.append((k, v))
                d[k] = leaf
        return swapped

    def _call_recorded(self, args, kwargs, watch=True):
        """A training call outside any tape (the low-level loop): recorded on a private tape
        so that layer.backward(dy) / model.backward(dy) can follow it (dL/dx only where
        watch: the inputs are watched)."""
        tape = _tape.GradientTape(persistent=True)
        x = args[0]
        with tape:
            if watch:
                tape.watch([a for a in _symbolic.flatten(x) if hasattr(a, "shape")])
            out = self._call_traced_built(args, kwargs)
        object.__setattr__(self, "_last_record", (tape, x, out))
        return _tape.value(out) if not isinstance(out, (list, tuple, dict)) else \
            _symbolic.pack_like(out, [_tape.value(o) for o in _symbolic.flatten(out)])

    # --- functional API
    def _symbolic_call(self, args, kwargs):
        from .._symbolic import Node
        inputs = args[0]
        flat = _symbolic.flatten(inputs)
        for a in flat:
            if not isinstance(a, KerasTensor):
                raise TypeError(f"layer {self.name!r} was called on a mix of symbolic tensors "
                                f"(keras.Input) and {type(a).__name__}; pass only symbolic "
                                f"tensors while building a model")
        shapes = _shapes_of(inputs)
        out_shape = None
        if not self.built:
            out_shape = self._build_from(shapes, flat[0].dtype if flat[0].dtype.kind == "f" else None)
        else:
            self._check_symbolic(shapes)
        if out_shape is None:
            out_shape = _shape_tuple(self.compute_output_shape(shapes))
        static = {k: v for k, v in kwargs.items() if k != "training"}
        if len(args) > 1:
            raise TypeError(f"layer {self.name!r}: pass extra call arguments by keyword when "
                            f"building a functional model")
        dt = self.dtype or np.dtype(np.float32)
        if _is_shape_list(out_shape):
            outs = [KerasTensor(s, dt) for s in out_shape]
        else:
            outs = [KerasTensor(out_shape, dt)]
        node = Node(self, flat, inputs, outs, static)
        for i, o in enumerate(outs):
            o.node, o.index = node, i
            o.name = self.name if len(outs) == 1 else f"{self.name}_{i}"
        self._inbound.append(node)
        return outs if _is_shape_list(out_shape) else outs[0]

    def _check_symbolic(self, shapes):
        if isinstance(shapes, tuple) and (not shapes or not isinstance(shapes[0], (tuple, list))):
            self._check_input(shapes)

    @property
    def input(self):
        if not self._inbound:
            raise AttributeError(f"layer {self.name!r} has never been called on a symbolic "
                                 f"input, so it has no input tensor")
        n = self._inbound[0]
        return n.structure

    @property
    def output(self):
        if not self._inbound:
            raise AttributeError(f"layer {self.name!r} has never been called on a symbolic "
                                 f"input, so it has no output tensor")
        outs = self._inbound[0].outputs
        return outs[0] if len(outs) == 1 else list(outs)

    # ------------------------------------------------------------ fused output + loss
    # A layer whose last step is an activation that a loss fuses with (softmax with
    # categorical cross-entropy, sigmoid with binary cross-entropy) names it here, and
    # gives its output before that activation and the backward pass from its gradient;
    # the trainer then runs one stable fused loss kernel on the logits.
    def _output_activation(self):
        return None

    def _call_logits(self, x, training=False):
        raise NotImplementedError(f"{type(self).__name__} has no fused logits path")

    def _backward_logits(self, dz, need_dx=True):
        raise NotImplementedError(f"{type(self).__name__} has no fused logits path")

    def _fuses_logits(self):
        return type(self)._backward_logits is not Layer._backward_logits

    # ------------------------------------------------------------ inference plans
    def _inference_fn(self, rows, in_shape, batch):
        """For a cached inference plan (trainers/inference.py): a function x -> y running
        this layer at inference on host inputs of shape (rows,) + in_shape, into arrays it
        owns, with what it reads bound once (or a tuple of such functions, run in turn);
        ``identity`` when the layer passes its input on unchanged; None when the plan runs
        ``self.call(x, training=False)``. ``batch`` < rows (layers that are
        _rows_independent): the rows are batches of that many rows (the last may be
        shorter), and each row must come out with the bits a call on its batch gives it."""
        return None

    # True when each output row depends on its input row alone (no statistics over the
    # batch, no state carried between rows) and _inference_fn honours ``batch``: a plan
    # may then run several batches per call.
    _rows_independent = False

    # ------------------------------------------------------------ buffers
    def _buf(self, key, shape, dtype=None):
        """A reusable array: the same one while the shape stays the same."""
        b = self._bufs.get(key)
        if b is None or b.shape != shape:
            b = self._empty(shape, dtype or self.dtype)
            self._bufs[key] = b
        return b

    def _zeros(self, key, shape):
        """A reusable array of zeros (a state nothing writes to)."""
        b = self._bufs.get(key)
        if b is None or b.shape != shape:
            b = self._empty(shape, self.dtype)
            b.fill(0)
            self._bufs[key] = b
        return b

    # ------------------------------------------------------------ config
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": None if self.dtype is None else self.dtype.name}
        if self.activity_regularizer is not None:
            from .. import regularizers
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        auto = self.__dict__.get("_auto_config")
        if auto is not None:
            import json
            try:
                json.dumps(auto)
            except TypeError:
                raise NotImplementedError(
                    f"{type(self).__name__}.get_config: its constructor took arguments that are "
                    f"not plain values ({', '.join(sorted(auto))}); write get_config (and "
                    f"from_config) for it to be saved") from None
            cfg.update(auto)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"

    def _move(self, to_array):
        """Replace every weight and gradient array by to_array(a) (device moves);
        later buffers are allocated where to_array puts arrays."""
        new = []
        for w, t, name in zip(self._weights, self._weight_trainable, self._weight_names):
            m = to_array(w)
            if _device.is_device(m):
                _tape.unregister_variable(w)
                if t:
                    _tape.register_variable(m)
            elif m is not w:
                # on the host a weight is a Variable: the same one when its memory stays,
                # a new one with the same name and flag when the values were copied here
                if isinstance(w, _variable.Variable) and np.shares_memory(m, w):
                    m = w
                else:
                    _tape.unregister_variable(w)
                    m = _variable._make(_memory_copy(np.asarray(m)), name, bool(t), None, self)
            new.append(m)
        # attributes that named the old arrays (custom layers: self.w = add_weight(...))
        old = {id(w): m for w, m in zip(self._weights, new)}
        for k, v in list(self.__dict__.items()):
            if id(v) in old and k != "_weights":
                object.__setattr__(self, k, old[id(v)])
        self._weights = new
        structure_changed()
        self._grads = [to_array(g) for g in self._grads]
        self._bufs = {}
        self._empty = _device.allocator(to_array(np.zeros(0, np.float32)))


# ------------------------------------------------------------------ helpers
_PLAIN = frozenset([np.ndarray, int, float, bool, str, type(None), np.float32, np.float64,
                    np.int64, np.dtype])


def _marks_built(build):
    """build wrapped so that calling it directly (layer.build(shape), as Keras programs do)
    leaves the layer built: the first call then does not add its weights again."""
    if getattr(build, "_marks_built", False):
        return build

    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        if self.__dict__.get("dtype", 1) is None:
            self.dtype = np.dtype(np.float32)
        out = build(self, *args, **kwargs)
        if not self.__dict__.get("built"):
            self.built = True
            shape = args[0] if args else kwargs.get("input_shape")
            if shape is not None and self.__dict__.get("input_shape", 1) is None:
                self.input_shape = _shape_tuple(shape)
        return out
    wrapper._marks_built = True
    return wrapper


def _values(box):
    return box.values() if isinstance(box, dict) else box


class _TrackedList(list):
    """A list attribute of a layer: appending a layer to it tracks the layer."""

    def append(self, v):
        super().append(v)
        structure_changed()

    def extend(self, vs):
        super().extend(vs)
        structure_changed()

    def insert(self, i, v):
        super().insert(i, v)
        structure_changed()

    def __setitem__(self, i, v):
        super().__setitem__(i, v)
        structure_changed()

    def __delitem__(self, i):
        super().__delitem__(i)
        structure_changed()

    def pop(self, *a):
        v = super().pop(*a)
        structure_changed()
        return v

    def remove(self, v):
        super().remove(v)
        structure_changed()


class _TrackedDict(dict):
    """A dict attribute of a layer: adding a layer to it tracks the layer."""

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        structure_changed()

    def __delitem__(self, k):
        super().__delitem__(k)
        structure_changed()

    def update(self, *a, **kw):
        super().update(*a, **kw)
        structure_changed()

    def pop(self, *a):
        v = super().pop(*a)
        structure_changed()
        return v

    def setdefault(self, k, d=None):
        v = super().setdefault(k, d)
        structure_changed()
        return v


def _dedup(ws):
    seen, out = set(), []
    for w in ws:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def _memory_copy(a):
    from .. import _memory
    return _memory.copy(a)


def _shape_tuple(s):
    if _is_shape_list(s):
        return [_shape_tuple(t) for t in s]
    return tuple(None if d is None else int(d) for d in s)


def _is_shape_list(s):
    return isinstance(s, list) or (isinstance(s, tuple) and s and isinstance(s[0], (tuple, list)))


def _shapes_of(inputs):
    if isinstance(inputs, dict):
        return {k: _shapes_of(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_shapes_of(v) for v in inputs]
    if isinstance(inputs, KerasTensor):
        return tuple(inputs.shape)          # a static batch size stays
    return (None,) + tuple(inputs.shape[1:]) if hasattr(inputs, "shape") and len(inputs.shape) \
        else tuple(np.shape(inputs))


def _as_floats(inputs, dtype):
    """Python lists / non-float arrays as arrays of the layer's dtype; Tensors as they are."""
    if isinstance(inputs, (list, tuple)) and inputs and all(
            isinstance(a, (_tape.Tensor, np.ndarray)) or _device.is_device(a) for a in inputs):
        return type(inputs)(_as_floats(a, dtype) for a in inputs)
    if isinstance(inputs, dict):
        return {k: _as_floats(v, dtype) for k, v in inputs.items()}
    if isinstance(inputs, (_tape.Tensor, _variable.Traceable)) or _device.is_device(inputs):
        return inputs   # a Variable / EagerTensor keeps its identity (the tape may watch it)
    a = np.asarray(inputs)
    if a.dtype.kind in "biuf":
        return a
    raise TypeError(f"inputs must hold numbers, got an array of dtype {a.dtype}")


def _replay_inputs(inputs):
    """The input arrays of a call as a flat list, or None for structures a program does not
    replay (dicts, nesting, non-arrays)."""
    if hasattr(inputs, "shape"):
        return [inputs]
    if type(inputs) in (list, tuple) and inputs and all(hasattr(a, "shape") for a in inputs):
        return list(inputs)
    return None


def _soft_inputs(inputs, tapes):
    if type(inputs) in (list, tuple):
        return type(inputs)(_soft_inputs(a, tapes) for a in inputs)
    if type(inputs) is _tape.Tensor or not hasattr(inputs, "shape"):
        return inputs
    return _tape.Tensor(inputs, None, tapes, soft=True)


def _replay_outputs(out):
    """A call's outputs as a flat list of Tensors, or None."""
    if type(out) is _tape.Tensor:
        return [out]
    if type(out) in (list, tuple) and out and all(type(o) is _tape.Tensor for o in out):
        return list(out)
    return None


def _traced_inputs(inputs):
    """Watched raw input arrays as their traced leaves, so that every use of them inside
    call (Python operators included) is recorded."""
    if isinstance(inputs, dict):
        return {k: _traced_inputs(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_traced_inputs(v) for v in inputs)
    if isinstance(inputs, _tape.Tensor) or not hasattr(inputs, "shape"):
        return inputs
    leaf = _tape.leaf(inputs)
    return inputs if leaf is None else leaf


_PARAMS = {}


def _call_params(cls):
    p = _PARAMS.get(cls)
    if p is None:
        sig = inspect.signature(cls.call)
        p = {k: True for k in sig.parameters}
        p["**"] = any(v.kind == inspect.Parameter.VAR_KEYWORD for v in sig.parameters.values())
        _PARAMS[cls] = p
    return p


def _infer_shape(layer, input_shape):
    """Run the layer's call on zeros of input_shape (a batch of 2 where unknown) to learn
    its output shape; unknown batch stays None."""
    def zeros(s):
        if isinstance(s, dict):
            return {k: zeros(v) for k, v in s.items()}
        if _is_shape_list(s):
            return [zeros(t) for t in s]
        return np.zeros(tuple(2 if d is None else d for d in s), layer.dtype or np.float32)
    batch_unknown = all(s[0] is None for s in _flat_shapes(input_shape) if s)
    kw = {"training": False} if "training" in _call_params(type(layer)) else {}
    try:
        with _tape.paused():
            out = layer.call(zeros(input_shape), **kw)
    except Exception as e:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): calling it on an input "
                         f"of shape {input_shape} failed ({type(e).__name__}: {e}); implement "
                         f"compute_output_shape or check the input shape") from e

    def shape_of(o):
        o = _tape.value(o)
        s = tuple(np.shape(o))
        return ((None,) + s[1:]) if batch_unknown and s else s
    if isinstance(out, (list, tuple)):
        return [shape_of(o) for o in out]
    return shape_of(out)


def call_with_mask(layer, x, mask, training, **kwargs):
    """One layer call in a model that propagates masks (Keras 3): the layer gets the
    mask of its input when its call takes one; returns (output, output mask). A mask
    reaching a layer that does not support masking ends there, with a warning."""
    if mask is not None and "mask" in _call_params(type(layer)) and "mask" not in kwargs:
        kwargs["mask"] = mask
    y = layer(x, training=training, **kwargs)
    if mask is None and not layer._makes_mask():
        return y, None
    if mask is not None and not layer.supports_masking and not layer._makes_mask():
        if not layer.__dict__.get("_mask_warned"):
            import warnings
            warnings.warn(f"layer {layer.name!r} (of type {type(layer).__name__}) was passed an "
                          f"input with a mask attached to it, but it does not support masking "
                          f"and will therefore destroy the mask information; downstream layers "
                          f"will not see the mask", stacklevel=3)
            layer.__dict__["_mask_warned"] = True
        return y, None
    xv = [_tape.value(a) for a in x] if isinstance(x, (list, tuple)) else _tape.value(x)
    out_mask = layer.compute_mask(xv, mask)
    return y, out_mask


def _flat_shapes(s):
    if isinstance(s, dict):
        return [t for v in s.values() for t in _flat_shapes(v)]
    if _is_shape_list(s):
        return [t for v in s for t in _flat_shapes(v)]
    return [s]


class _ProgramRecord:
    """A plan call that ran the layer's replayed program: its slot values for backward."""
    __slots__ = ("prog", "vals", "out")

    def __init__(self, prog, vals, out):
        self.prog, self.vals, self.out = prog, vals, out

    def backward(self, layer, dy, need_dx, at_logits=False):
        """dL/dx (None unless need_dx); dL/dw into layer.gradients (zero for a weight the
        call does not use). at_logits: dy is the gradient before the final activation."""
        prog = self.prog
        # which trainable weight each program variable is (None: not trained), per state
        key = (_version[0], bool(need_dx))   # (trainable flags count as structure)
        plan = prog.__dict__.get("_plan_map")
        if plan is None or plan[0] != key:
            own = [i for i, t in enumerate(layer._weight_trainable) if t and layer._trainable]
            where = [next((i for i in own if layer._weights[i] is v), None)
                     for v in prog.variables]
            plan = prog.__dict__["_plan_map"] = (key, (bool(need_dx),) + tuple(
                i is not None for i in where), where, [i for i in own if i not in where])
        _, needs, where, unused = plan
        if prog.final is not None and not at_logits:
            out = self.out if self.out is not None else prog.outputs_of(self.vals)[0]
            dy = prog.final_vjp(dy, out, self.vals[prog.outs[0]])
        grads = prog._backward(self.vals, needs, (dy,))
        bufs = layer._grads
        for i, g in zip(where, grads[1:]):
            if i is not None:
                b = bufs[i]
                if g is None:
                    b.fill(0)
                elif type(g) is type(b) and g.dtype == b.dtype and g.shape == b.shape and \
                        g.flags.c_contiguous:
                    bufs[i] = g   # the program's own new array: handed over, not copied
                else:
                    _device.assign(b, g)
        for i in unused:
            bufs[i].fill(0)
        return grads[0] if need_dx else None


def _check_plan_record(layer):
    """After a recorded call of the plan: what the plan cannot follow is an error, never a
    silently missing gradient."""
    if layer._losses:
        raise RuntimeError(
            f"layer {layer.name!r}: its call adds losses (add_loss), which the fused training "
            f"step does not follow; compile the model with run_eagerly=True to train it "
            f"through the tape")
    tape = layer._last_record[0]
    own = {id(w) for w in layer._weights}
    for obj, _ in tape._leaves.values():
        if type(obj) is _variable.Variable and id(obj) not in own:
            raise RuntimeError(
                f"layer {layer.name!r}: its call uses the weight {obj.path!r} of another layer, "
                f"which the fused training step does not follow; compile the model with "
                f"run_eagerly=True to train it through the tape")


def _backward_recorded(layer, rec, dy):
    """The low-level backward of a recorded training call: dL/dx, gradients into
    layer.gradients (trainable_weights order)."""
    tape, x, out = rec
    ws = layer.trainable_weights
    xs = [a for a in _symbolic.flatten(x) if hasattr(a, "shape")]
    flat_out = _symbolic.flatten(out)
    dys = _symbolic.flatten(dy) if isinstance(dy, (list, tuple, dict)) else [dy]
    if len(dys) != len(flat_out):
        raise ValueError(f"backward: the call had {len(flat_out)} outputs, got {len(dys)} "
                         f"gradients")
    total = None
    for o, g in zip(flat_out, dys):
        if not isinstance(o, _tape.Tensor):
            continue
        part = tape.gradient(o, xs + ws, output_gradients=g)
        total = part if total is None else [a if b is None else (b if a is None else a + b)
                                            for a, b in zip(total, part)]
    if total is None:
        total = [None] * (len(xs) + len(ws))
    grads = total[len(xs):]
    own = layer.gradients
    for buf, g in zip(own, grads):
        if g is None:
            buf.fill(0)
        else:
            _device.assign(buf, g)
    dx = [g if g is not None else _device.xp(a).zeros_like(a) for g, a in zip(total[:len(xs)], xs)]
    return dx[0] if len(dx) == 1 and not isinstance(x, (list, tuple, dict)) else dx


# ================================================================ inputs
class InputLayer(Layer):
    """The layer behind ``Input(shape)``; a Sequential model takes its shape from it."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, input_shape=None,
                 sparse=None, batch_shape=None, input_tensor=None, **kw):
        if sparse:
            raise NotImplementedError("Input(sparse=True) is not supported")
        if input_tensor is not None:
            raise NotImplementedError("Input(input_tensor=...) is not supported")
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            shape = input_shape
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28))")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        super().__init__(name=name or unique_name("input_layer"), input_shape=tuple(shape),
                         dtype=dtype, **kw)
        self.shape = (batch_size,) + tuple(self._input_shape_arg)
        self.batch_size = batch_size
        self.built = True
        self.input_shape = self.output_shape = self.shape
        out = KerasTensor(self.shape, np.dtype(dtype) if dtype is not None else "float32",
                          name=self.name)
        from .._symbolic import Node
        out.node = Node(self, [], None, [out], {})
        self._inbound.append(out.node)

    def call(self, x, training=False):
        return x

    def get_config(self):
        return {"batch_shape": [self.batch_size] + list(self._input_shape_arg),
                "name": self.name, "dtype": None if self.dtype is None else self.dtype.name}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, **kw):
    """Keras' Input: a symbolic tensor of the given shape (batch dimension excluded)."""
    if tensor is not None:
        raise NotImplementedError("Input(tensor=...) is not supported")
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, sparse=sparse,
                      batch_shape=batch_shape, **kw).output
