"""Sequential: a plain stack of layers (Keras' ``keras.Sequential``).

A stack of built-in layers runs without the tape: ``model(x)`` calls each
layer's fused kernels into reused buffers, ``model.backward(dy)`` runs a
backward plan, and ``fit`` runs a fused step plan (trainers/trainer.py). A
stack that holds a layer written by a user runs through the tape like any model.
"""
import numpy as np

from .. import _symbolic, _tape
from .. import layers as layers_mod
from ..layers.layer import InputLayer, Layer, call_with_mask, shape_str, structure_changed
from ..trainers import data_adapter
from ..trainers.trainer import Trainer
from .model import FreshPairs, Model, _identity


class Sequential(Model):
    def __init__(self, layers=None, trainable=True, name=None):
        Model.__init__(self, name=name, trainable=trainable)
        self._build_input_shape = None
        self._input_dtype = None
        for l in layers or []:
            self.add(l)

    # ------------------------------------------------------------ structure
    def add(self, layer):
        if isinstance(layer, _symbolic.KerasTensor) and isinstance(getattr(layer.node, "layer", None),
                                                                   InputLayer):
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("an Input must come first in a Sequential model")
            self._build_input_shape = layer.shape
            self.__dict__["_input_tensor"] = layer.output
            if layer.dtype is not None:
                self._input_dtype = layer.dtype
            return
        if not self._layers and self._build_input_shape is None and layer._input_shape_arg is not None:
            self._build_input_shape = (None,) + tuple(layer._input_shape_arg)
            if layer.dtype is not None:
                self._input_dtype = layer.dtype
        if layer.built and self._layers and self.built:
            layer._check_input(self._layers[-1].output_shape)
        self._layers.append(layer)
        structure_changed()
        self.built = False
        if self._build_input_shape is not None:
            self.build(self._build_input_shape)

    def pop(self):
        if not self._layers:
            raise IndexError("pop from an empty model")
        self.built = False
        structure_changed()
        return self._layers.pop()

    @property
    def layers(self):
        return self._layers

    @property
    def input_shape(self):
        return self._build_input_shape

    @input_shape.setter
    def input_shape(self, value):
        pass

    @property
    def output_shape(self):
        if not self.built:
            raise ValueError(self._not_built_message("output_shape"))
        return self._layers[-1].output_shape if self._layers else self._build_input_shape

    @output_shape.setter
    def output_shape(self, value):
        pass

    @property
    def output_names(self):
        return [self._layers[-1].name] if self._layers else ["output"]

    # the stack as a symbolic graph (Keras 3 builds one once the input shape is known), so
    # that model.inputs / model.outputs and each layer's .input / .output exist
    def _graph(self):
        key = (tuple(id(l) for l in self._layers), self._build_input_shape)
        hit = self.__dict__.get("_graph_cache")
        if hit is not None and hit[0] == key:
            return hit[1]
        if self._build_input_shape is None:
            raise AttributeError(f"Sequential model {self.name!r} has no input shape yet, so it "
                                 f"has no symbolic inputs or outputs; give it an Input first")
        # one input tensor for every rebuild, so that each layer's first node (its
        # .output) stays connected to model.inputs, as in Keras
        x = self.__dict__.get("_input_tensor")
        if x is None or x.shape != tuple(self._build_input_shape):
            from ..layers.layer import Input
            x = Input(batch_shape=self._build_input_shape, dtype=self.dtype)
            self.__dict__["_input_tensor"] = x
        h = x
        for l in self._layers:
            h = l(h)
        self.__dict__["_graph_cache"] = (key, (x, h))
        return x, h

    @property
    def inputs(self):
        return [self._graph()[0]]

    @property
    def outputs(self):
        return [self._graph()[1]]

    @property
    def input(self):
        return self._graph()[0]

    @property
    def output(self):
        return self._graph()[1]

    def build(self, input_shape=None, dtype=None):
        """Create every layer's weights for inputs of input_shape (batch dim included)."""
        if input_shape is None:
            input_shape = self._build_input_shape
        if input_shape is None:
            raise ValueError(self._not_built_message("build"))
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
        self._build_input_shape = input_shape
        dt = np.dtype(dtype) if dtype is not None else (self._input_dtype or self.dtype or
                                                        np.dtype(np.float32))
        self.dtype = dt
        shape = input_shape
        for l in self._layers:
            shape = l._build_from(shape, dt)
            dt = l.dtype or dt
        self.built = True
        if self._layers and all(l._has_backward() for l in self._layers):
            self._graph()   # each layer's .input/.output, as Keras 3's Sequential has them

    def _build_from(self, input_shape, dtype=None, infer=True):
        if not self.built:
            self.build(input_shape, dtype)
        return self.output_shape

    def _ensure_built(self, xb):
        if not self.built:
            self._build_from_data(np.asarray(xb) if not hasattr(xb, "shape") else xb)

    def _build_from_data(self, x, follow_dtype=False):
        # fit/evaluate/predict build float32 models (Keras' default) and cast the data once;
        # a direct call model(x) on float64 data builds a float64 model (gradient checks).
        dt = x.dtype if follow_dtype and x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        self.build(self._build_input_shape or (None,) + tuple(x.shape[1:]), dt)

    def _all_builtin(self):
        return all(l._has_backward() for l in self._layers)

    # ------------------------------------------------------------ calls
    def _prep_x(self, x, what, follow_dtype=False):
        x = data_adapter.as_arrays(x)
        if not hasattr(x, "shape"):
            raise ValueError(f"{what}: a Sequential model takes one input array, got "
                             f"{type(x).__name__}")
        if x.ndim == 0:
            raise ValueError(f"{what}: x must be an array with a batch dimension, got a scalar")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{what}: x must hold numbers, got dtype {x.dtype}")
        if not self.built:
            self._build_from_data(x, follow_dtype)
        exp = self._build_input_shape
        if x.ndim != len(exp) or any(e is not None and e != s for e, s in zip(exp[1:], x.shape[1:])):
            raise ValueError(f"{what}: the model expects inputs of shape {shape_str(exp)} but x has "
                             f"shape {tuple(x.shape)}")
        if x.dtype != self.dtype and x.dtype.kind in "fiub":
            x = x.astype(self.dtype)
        return x

    def _call_traced(self, args, kwargs):
        x = args[0]
        training = bool(kwargs.get("training", False))
        if not isinstance(x, _tape.Tensor):
            x = self._dev(self._prep_x(x, "model call", follow_dtype=True))
        if self._all_builtin() and not _tape.recording() and not self._uses_masks():
            # the fast path: each layer's fused kernels, buffers reused between calls
            h = x
            for l in self._layers:
                h = l.call(h, training=training)
            self._last_record = None
            return h.copy() if h is not x else h
        return Model._call_traced(self, (x,) + tuple(args[1:]), kwargs)

    def call(self, inputs, training=None):
        h = inputs
        if self._uses_masks():
            mask = None
            for l in self._layers:
                h, mask = call_with_mask(l, h, mask, bool(training))
            return h
        for l in self._layers:
            h = l(h, training=bool(training))
        return h

    def _inference_layers(self, x):
        # the stack's fast path (_call_traced) on the host, for inputs it takes as they are
        cls = type(self)
        exp = self._build_input_shape
        if not (self.built and self._layers and self._all_builtin() and
                not self._uses_masks() and self._dev is _identity and
                cls.predict_step is Trainer.predict_step and cls.call is Sequential.call and
                cls._call_traced is Sequential._call_traced and cls.__call__ is Layer.__call__ and
                exp is not None and x.ndim == len(exp) and
                all(e is None or e == s for e, s in zip(exp[1:], x.shape[1:]))):
            return None
        return self._layers

    def _uses_masks(self):
        """A layer makes a mask (Embedding(mask_zero=True), Masking): calls propagate it,
        through the tape (the fused paths carry no masks)."""
        return any(l._makes_mask() for l in self._layers)

    def backward(self, dy):
        """dL/dx for dL/dy of the last training call; fills model.gradients."""
        if self._last_record is not None:
            return Model.backward(self, dy)
        h = self._dev(dy)
        for bw in backward_plan([(l, True) for l in self._layers]):
            h = bw(h)
        return h.copy()

    def _summary_rows(self):
        return [(f"{l.name} ({type(l).__name__})", shape_str(l.output_shape), f"{l.count_params():,}")
                for l in self._layers]

    # ------------------------------------------------------------ the fused step plan
    def _plannable(self, data=None):
        # layers written with ops join the plan as their replayed programs, unless the model
        # was compiled with run_eagerly=True (then they run op by op, as in Keras)
        ready = self._all_builtin() or (not self.run_eagerly and
                                        all(l._plan_ready() for l in self._layers))
        return (self._layers and ready and not self._uses_masks() and
                self._plan_conditions(data))

    def _output_dtype(self):
        return self._layers[-1].dtype or self.dtype

    def _first_trainable(self):
        for i, l in enumerate(self._layers):
            if l.trainable_weights:
                return i
        return len(self._layers)

    def _fused_loss(self):
        last = self._layers[-1]
        fw = self.loss.fuses_with
        return (fw is not None and not self.loss.from_logits and
                last._output_activation() == fw and last._fuses_logits())

    def _step_fn(self, training):
        """A closure running one batch: forward, loss (+ backward and update when training).
        Returns (loss, n_correct or None, y_pred or a thunk computing it)."""
        layers = self._layers
        for l in layers:
            l.__dict__.pop("_plan_fast", None)   # (a layer's program is looked up again)
        loss = self.loss
        fused = self._fused_loss()
        last = layers[-1]
        body = layers[:-1] if fused else layers
        first = self._first_trainable()
        back = backward_plan([(l, i > first) for i, l in enumerate(body) if i >= first])
        calls = [(l, i > first) for i, l in enumerate(body)]   # (layer, its dL/dx needed)
        opt = self.optimizer
        pairs = list(zip(self.gradients, self.trainable_weights))
        if not self._all_builtin():
            # layers written with ops hand over new gradient arrays at each backward
            pairs = FreshPairs(self)
        bufs = {}
        empty = self._layers[0]._empty

        def dbuf(shape, dtype):
            b = bufs.get(shape)
            if b is None:
                b = bufs[shape] = empty(shape, dtype)
            return b

        if fused:
            last_need_dx = len(layers) - 1 > first

            forward = forward_plan(calls, training)

            def step(xb, yb):
                h = xb
                for fwd in forward:
                    h = fwd(h)
                z = last._call_logits(h, training)
                lv, dz, correct = loss._fused(z, yb, dbuf(z.shape, z.dtype) if training else None,
                                              training)
                if training:
                    dh = last._backward_logits(dz, last_need_dx)
                    for bw in back:
                        dh = bw(dh)
                    opt.apply_gradients(pairs)
                return lv, correct, lambda: last.activation.forward(z)
        else:
            # a last layer written with ops whose replayed program ends in the activation the
            # loss fuses with (softmax, sigmoid) gives its logits to the fused loss kernel, as
            # its marked output does on the tape
            fw = loss.fuses_with if not loss.from_logits else None
            if fw is None or last._has_backward():
                fw = None
            else:
                calls, (_, last_need_dx) = calls[:-1], calls[-1]
            forward = forward_plan(calls, training)

            def step(xb, yb):
                h = xb
                for fwd in forward:
                    h = fwd(h)
                if fw is not None:
                    # the logits when the call stops before the activation fw, else its output
                    h = last._plan_call(h, training, last_need_dx, logits_for=fw)
                    if last._plan_logits(fw) is h:
                        lv, dz, correct = loss._fused(h, yb, dbuf(h.shape, h.dtype) if training
                                                      else None, training)
                        if training:
                            dh = last._plan_backward_logits(dz, last_need_dx)
                            for bw in back[1:]:
                                dh = bw(dh)
                            opt.apply_gradients(pairs)
                        return lv, correct, last._plan_output
                lv, dh = loss._value_and_grad(yb, h, dbuf(h.shape, h.dtype) if training else None,
                                              training)
                if training:
                    for bw in back:
                        dh = bw(dh)
                    opt.apply_gradients(pairs)
                return lv, None, h
        return step

    # ------------------------------------------------------------ config
    def get_config(self):
        from ..saving import serialize_object
        return {"name": self.name, "trainable": self.trainable,
                "layers": [serialize_object(l) for l in self._layers],
                "build_input_shape": list(self._build_input_shape) if self._build_input_shape else None}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving import deserialize_object
        m = cls(name=config.get("name"), trainable=config.get("trainable", True))
        shape = config.get("build_input_shape")
        layer_objs = [deserialize_object(d, custom_objects, kind="layer")
                      for d in config.get("layers", [])]
        if shape is not None:
            m._build_input_shape = tuple(shape)
        for l in layer_objs:
            m.add(l)
        return m


def forward_plan(calls, training):
    """The forward pass over ``calls`` [(layer, need_dx)] as a list of callables h -> h.

    In training, a Conv2D with ReLU followed by a MaxPooling2D whose windows tile
    its output runs on CPU arrays as one op (MaxPooling2D._train_after_conv): the
    convolution's output is never stored. backward_plan fuses the pair's backward
    passes, which need nothing else from the forward pass.
    """
    plan = []
    i = 0
    while i < len(calls):
        layer, need_dx = calls[i]
        if training and i + 1 < len(calls) and _fuses_conv_pool(layer, calls[i + 1][0]):
            pool, pool_need_dx = calls[i + 1]
            plan.append(lambda h, c=layer, nd=need_dx, p=pool, pnd=pool_need_dx:
                        p._train_after_conv(c, h, nd, pnd))
            i += 2
        else:
            plan.append(lambda h, l=layer, nd=need_dx: l._plan_call(h, training, nd))
            i += 1
    return plan


def _fuses_conv_pool(layer, nxt):
    return type(nxt) is layers_mod.MaxPooling2D and nxt._fuses_after(layer)


def backward_plan(layers):
    """The backward pass over ``layers`` [(layer, need_dx)] (forward order) as a list
    of callables dh -> dh, last layer first.

    A layer whose ReLU output feeds a MaxPooling2D is fused with it
    (MaxPooling2D._backward_through): the pooling backward applies the ReLU's mask
    in its own pass (ops.max_pool2d_backward with relu=True), and the layer
    continues from its pre-activation gradient. That saves one full read and write
    of the layer's output per step. After the fused forward call of a Conv2D and
    its pooling (forward_plan) the two backward passes are one op, which does not
    store the gradient of the convolution's output at all.
    """
    plan = []
    i = len(layers) - 1
    while i >= 0:
        layer, need_dx = layers[i]
        prev, prev_need_dx = layers[i - 1] if i > 0 else (None, False)
        if (need_dx and type(layer) is layers_mod.MaxPooling2D and prev is not None
                and prev._output_activation() == "relu" and prev._fuses_logits()):
            plan.append(lambda dh, pool=layer, p=prev, nd=prev_need_dx:
                        pool._backward_through(p, dh, nd))
            i -= 2
        else:
            plan.append(lambda dh, l=layer, nd=need_dx: l.backward(dh, nd))
            i -= 1
    return plan
