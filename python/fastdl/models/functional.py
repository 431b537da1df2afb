"""Functional models: ``Model(inputs, outputs)`` over a graph of layer calls.

The graph is the ``Node`` s (one per call of a layer on symbolic tensors) that
lead from the declared inputs to the outputs, in topological order. Running the
model runs those calls in order; under a GradientTape each call is recorded, so
shared layers (called by several nodes) get the sum of their gradients.
"""
import numpy as np


from .._symbolic import KerasTensor, flatten, pack_like
from ..layers.layer import InputLayer, call_with_mask, shape_str, structure_changed
from .model import FreshPairs, Model


class Functional(Model):
    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        Model.__init__(self, name=name, trainable=trainable)
        flat_in, flat_out = flatten(inputs), flatten(outputs)
        for what, flat in (("inputs", flat_in), ("outputs", flat_out)):
            for t in flat:
                if not isinstance(t, KerasTensor):
                    raise TypeError(f"Model({what}=...): expected symbolic tensors (from "
                                    f"keras.Input and layers called on them), got "
                                    f"{type(t).__name__}")
        for t in flat_in:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model(inputs=...): {t.name!r} is not an Input; a functional "
                                 f"model's inputs must come from keras.Input(...)")
        self._input_struct = inputs
        self._output_struct = outputs
        self._flat_inputs = flat_in
        self._flat_outputs = flat_out
        self._nodes = _graph(flat_in, flat_out)
        ordered = [t.node.layer for t in flat_in]
        for node in self._nodes:
            if all(node.layer is not l for l in ordered):
                ordered.append(node.layer)
        seen = {}
        for l in ordered:
            seen[l.name] = seen.get(l.name, 0) + 1
        dup = [n for n, c in seen.items() if c > 1]
        if dup:
            raise ValueError(f"the name {dup[0]!r} is used {seen[dup[0]]} times in the model; all "
                             f"layer names must be unique (pass name=... to the layers)")
        object.__setattr__(self, "_layers", ordered)
        structure_changed()
        self.dtype = flat_in[0].dtype if flat_in and flat_in[0].dtype.kind == "f" else np.dtype(np.float32)
        self.built = True
        self.input_shape = _shapes(inputs)
        self.output_shape = _shapes(outputs)
        self._build_input_shape = self.input_shape

    # ------------------------------------------------------------ structure
    @property
    def inputs(self):
        return list(self._flat_inputs)

    @property
    def outputs(self):
        return list(self._flat_outputs)

    @property
    def input_names(self):
        return [t.node.layer.name for t in self._flat_inputs]

    @property
    def output_names(self):
        if isinstance(self._output_struct, dict):
            return list(self._output_struct)
        names = []
        for t in self._flat_outputs:
            n = t.node.layer.name
            if len(t.node.outputs) > 1 or n in names:
                n = f"{n}_{t.index}" if n not in names else f"{n}_{len(names)}"
            names.append(n)
        return names

    @property
    def input(self):
        return self._input_struct

    @property
    def output(self):
        return self._output_struct

    def compute_output_shape(self, input_shape):
        return self.output_shape

    # ------------------------------------------------------------ running the graph
    def _standardize(self, inputs):
        """The flat list of input values, in the order of self.inputs."""
        n = len(self._flat_inputs)
        if isinstance(inputs, dict):
            names = list(self._input_struct) if isinstance(self._input_struct, dict) else self.input_names
            missing = [k for k in names if k not in inputs]
            unknown = [k for k in inputs if k not in names]
            if missing or unknown:
                raise ValueError(f"model {self.name!r} expects inputs {names}; got a dict with keys "
                                 f"{list(inputs)}" + (f" (missing {missing})" if missing else "") +
                                 (f" (unknown {unknown})" if unknown else ""))
            return [inputs[k] for k in names]
        if isinstance(inputs, (list, tuple)) and n > 1:
            if len(inputs) != n:
                raise ValueError(f"model {self.name!r} expects {n} inputs {self.input_names}, got "
                                 f"{len(inputs)}")
            return list(inputs)
        if n != 1:
            raise ValueError(f"model {self.name!r} expects {n} inputs {self.input_names}, got one "
                             f"array; pass a list or a dict keyed by input name")
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and hasattr(inputs[0], "shape"):
            return list(inputs)
        return [inputs]

    def call(self, inputs, training=None):
        values = {}
        for t, v in zip(self._flat_inputs, self._standardize(inputs)):
            shape = getattr(v, "shape", None)
            if shape is None:
                v = np.asarray(v)
                shape = v.shape
            kind = getattr(getattr(v, "dtype", None), "kind", "f")
            if kind not in "fiub":
                raise TypeError(f"model {self.name!r}: input {t.name!r} must hold numbers, got "
                                f"dtype {v.dtype}")
            if len(shape) != len(t.shape) or any(e is not None and e != s
                                                 for e, s in zip(t.shape[1:], shape[1:])):
                raise ValueError(f"model {self.name!r}: input {t.name!r} expects shape "
                                 f"{shape_str(t.shape)}, got {tuple(shape)}")
            values[t._id] = v
        masks = {} if self._uses_masks() else None
        for node in self._nodes:
            args = pack_like(node.structure, [values[t._id] for t in node.inputs])
            if masks is None:
                out = node.layer(args, training=bool(training), **node.kwargs)
            else:
                m = [masks.get(t._id) for t in node.inputs]
                m = None if all(a is None for a in m) else (
                    m[0] if len(m) == 1 else pack_like(node.structure, m))
                out, om = call_with_mask(node.layer, args, m, bool(training), **node.kwargs)
                oms = om if isinstance(om, (list, tuple)) and len(node.outputs) > 1 else [om]
                for t, mo in zip(node.outputs, oms):
                    if mo is not None:
                        masks[t._id] = mo
            outs = out if len(node.outputs) > 1 else [out]
            for t, o in zip(node.outputs, outs):
                values[t._id] = o
        return pack_like(self._output_struct, [values[t._id] for t in self._flat_outputs])

    def _ensure_built(self, xb):
        pass

    def _uses_masks(self):
        """Some layer makes a mask (Embedding(mask_zero=True), Masking): calls propagate
        masks along the graph, through the tape (the fused step plan carries none)."""
        return any(l._makes_mask() for l in self._layers)

    # ------------------------------------------------------------ the fused step plan
    def _plannable(self, data=None):
        """A graph of built-in layers from one input to one output, each layer called once,
        trains without the tape, by the step plan below."""
        if len(self._flat_inputs) != 1 or len(self._flat_outputs) != 1 or self._uses_masks():
            return False
        seen = set()
        for node in self._nodes:
            l = node.layer
            if id(l) in seen or node.kwargs or len(node.outputs) != 1:
                return False
            if not l._has_backward() and (   # a layer written with ops: one input (replayed)
                    self.run_eagerly or not l._plan_ready() or
                    isinstance(node.structure, (list, tuple))):
                return False
            seen.add(id(l))
        return self._plan_conditions(data)

    def _prep_x(self, x, what):
        t = self._flat_inputs[0]
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{what}: x must hold numbers, got dtype {x.dtype}")
        if x.ndim != len(t.shape) or any(e is not None and e != s
                                         for e, s in zip(t.shape[1:], x.shape[1:])):
            raise ValueError(f"{what}: the model expects inputs of shape {shape_str(t.shape)} "
                             f"but x has shape {x.shape}")
        dt = self.dtype or np.dtype(np.float32)
        return x if x.dtype == dt else x.astype(dt)

    def _output_dtype(self):
        return self._flat_outputs[0].node.layer.dtype or self.dtype

    def _step_fn(self, training):
        """One batch through the graph: each layer's fused kernels forward, the loss's fused
        kernel (on the output layer's logits when they fuse), each layer's backward in
        reverse order with gradients summed where a tensor fans out, then the optimizer.
        Returns (loss, n_correct or None, y_pred or a thunk computing it)."""
        nodes = self._nodes
        loss = self.loss
        x_id = self._flat_inputs[0]._id
        out = self._flat_outputs[0]
        last = out.node.layer
        fused = (loss.fuses_with is not None and not loss.from_logits and
                 last._output_activation() == loss.fuses_with and last._fuses_logits() and
                 not isinstance(out.node.structure, (list, tuple)))
        # a node's input gradient is needed only when a trainable weight lies upstream
        dep = {x_id: False}
        need = {}
        for n in nodes:
            need[id(n)] = any(dep.get(t._id, False) for t in n.inputs)
            dep[n.outputs[0]._id] = need[id(n)] or bool(n.layer.trainable_weights)
        opt = self.optimizer
        pairs = list(zip(self.gradients, self.trainable_weights))
        if not all(n.layer._has_backward() for n in nodes):
            pairs = FreshPairs(self)   # (layers written with ops hand over new arrays)
        for n in nodes:
            n.layer.__dict__.pop("_plan_fast", None)
        empty = last._empty
        bufs = {}

        def dbuf(shape, dtype):
            b = bufs.get(shape)
            if b is None:
                b = bufs[shape] = empty(shape, dtype)
            return b

        # each node as (layer, input ids, several inputs?, output id, need dx)
        plan = [(n.layer, [t._id for t in n.inputs], isinstance(n.structure, (list, tuple)),
                 n.outputs[0]._id, need[id(n)]) for n in nodes]
        steps = plan[:-1] if fused else plan
        back = steps[::-1]
        lp = plan[-1]
        conv_of = _conv_pool_pairs(plan, steps, out._id) if training else {}
        fused_convs = {c[3] for c in conv_of.values()}

        def args_of(p, vals):
            return [vals[i] for i in p[1]] if p[2] else vals[p[1][0]]

        def add_grad(grads, p, dx):
            for i, g in zip(p[1], dx if p[2] else (dx,)):
                if g is None or i == x_id:
                    continue
                old = grads.get(i)
                grads[i] = g if old is None else old + g

        def step(xb, yb):
            vals = {x_id: xb}
            for p in steps:
                c = conv_of.get(p[3])
                if c is not None:   # a Conv2D(relu) and this MaxPooling2D in one op
                    vals[p[3]] = p[0]._train_after_conv(c[0], vals[c[1][0]], c[4], p[4])
                elif p[3] not in fused_convs:
                    vals[p[3]] = p[0].call(args_of(p, vals), training) if p[2] else \
                        p[0]._plan_call(vals[p[1][0]], training, p[4])
            grads = {}
            if fused:
                z = last._call_logits(args_of(lp, vals), training)
                lv, dz, correct = loss._fused(z, yb, dbuf(z.shape, z.dtype) if training else None,
                                              training)
                ypred = lambda: last.activation.forward(z)  # noqa: E731
                if training:
                    add_grad(grads, lp, last._backward_logits(dz, lp[4]))
            else:
                h = vals[out._id]
                lv, dh = loss._value_and_grad(yb, h, dbuf(h.shape, h.dtype) if training else None,
                                              training)
                correct, ypred = None, h
                grads[out._id] = dh
            if training:
                for p in back:
                    g = grads.pop(p[3], None)
                    if g is None:
                        continue
                    c = conv_of.get(p[3])
                    if c is not None:   # the pool's backward with the ReLU's mask, then the conv's
                        add_grad(grads, c, p[0]._backward_through(c[0], g, c[4]))
                    else:
                        add_grad(grads, p, p[0].backward(g, p[4]))
                opt.apply_gradients(pairs)
            return lv, correct, ypred
        return step

    # ------------------------------------------------------------ summary
    def _summary_rows(self):
        rows = []
        for l in self._layers:
            shape = l.output_shape
            s = ", ".join(shape_str(t) for t in shape) if isinstance(shape, list) else \
                ("?" if shape is None else shape_str(shape))
            conn = []
            for node in self._nodes:
                if node.layer is l:
                    conn.extend(f"{t.node.layer.name}[{_node_index(t.node)}][{t.index}]"
                                for t in node.inputs)
            rows.append((f"{l.name} ({type(l).__name__})", s, f"{l.count_params():,}", conn))
        return rows

    # ------------------------------------------------------------ config
    def get_config(self):
        from ..saving import serialize_object
        index = {}  # id(KerasTensor) -> [layer name, node index within the layer, tensor index]
        per_layer = {}
        for t in self._flat_inputs:
            index[t._id] = [t.node.layer.name, 0, 0]
        nodes = []
        for node in self._nodes:
            k = per_layer.get(id(node.layer), 0)
            per_layer[id(node.layer)] = k + 1
            for i, t in enumerate(node.outputs):
                index[t._id] = [node.layer.name, k, i]
            nodes.append({"layer": node.layer.name,
                          "args": pack_like(node.structure, [index[t._id] for t in node.inputs]),
                          "kwargs": node.kwargs})
        return {"name": self.name, "trainable": self.trainable,
                "layers": [{**serialize_object(l), "name": l.name} for l in self._layers],
                "nodes": nodes,
                "input_layers": pack_like(self._input_struct, [index[t._id] for t in self._flat_inputs]),
                "output_layers": pack_like(self._output_struct, [index[t._id] for t in self._flat_outputs])}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving import deserialize_object
        layers = {}
        for d in config["layers"]:
            l = deserialize_object(d, custom_objects, kind="layer")
            layers[d.get("name", l.name)] = l     # the saved name, whatever get_config kept
        tensors = {}
        for name, l in layers.items():
            if isinstance(l, InputLayer):
                tensors[(name, 0, 0)] = l.output
        counts = {}

        def ref(r):
            key = tuple(r)
            if key not in tensors:
                raise ValueError(f"model config: no tensor {list(r)} (layer, call, output) is made "
                                 f"before it is used")
            return tensors[key]

        for nd in config["nodes"]:
            layer = layers[nd["layer"]]
            k = counts.get(nd["layer"], 0)
            counts[nd["layer"]] = k + 1
            args = _map_refs(nd["args"], ref)
            out = layer(args, **nd.get("kwargs", {}))
            for i, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(nd["layer"], k, i)] = t
        inputs = _map_refs(config["input_layers"], ref)
        outputs = _map_refs(config["output_layers"], ref)
        return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))


def _is_ref(r):
    return isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and all(
        isinstance(v, int) for v in r[1:])


def _map_refs(s, fn):
    if _is_ref(s):
        return fn(s)
    if isinstance(s, dict):
        return {k: _map_refs(v, fn) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return [_map_refs(v, fn) for v in s]
    return s


def _node_index(node):
    return next(i for i, n in enumerate(node.layer._inbound) if n is node)


def _shapes(struct):
    flat = flatten(struct)
    if len(flat) == 1 and not isinstance(struct, (list, tuple, dict)):
        return flat[0].shape
    return [t.shape for t in flat]


def _graph(flat_in, flat_out):
    """The nodes between inputs and outputs, inputs first (topological order);
    errors for an output that needs an undeclared input or an input nothing uses."""
    declared = {id(t.node) for t in flat_in}
    order, seen, reached = [], set(), set()

    def visit(node, path):
        if id(node) in seen:
            return
        if isinstance(node.layer, InputLayer):
            if id(node) not in declared:
                raise ValueError(
                    f"the model's outputs depend on the input {node.outputs[0].name!r}, which is "
                    f"not among the model's inputs {[t.name for t in flat_in]}; add it to "
                    f"Model(inputs=...)")
            reached.add(id(node))
            seen.add(id(node))
            return
        seen.add(id(node))
        for t in node.inputs:
            visit(t.node, path)
        order.append(node)

    for t in flat_out:
        visit(t.node, ())
    for t in flat_in:
        if id(t.node) not in reached and all(t is not o for o in flat_out):
            raise ValueError(f"the model's outputs do not depend on its input {t.name!r}; remove "
                             f"it from Model(inputs=...) or connect it")
    return order


def _conv_pool_pairs(plan, steps, out_id):
    """{output id of a MaxPooling2D: the plan entry of the Conv2D it fuses with} for the
    pairs of the training step: a Conv2D with ReLU whose output only that pool reads (and
    is not the model's output), the pool's windows tiling it (MaxPooling2D._fuses_after),
    the pool's input gradient needed. Entries are (layer, input ids, several inputs?,
    output id, need dx)."""
    from ..layers.pooling import MaxPooling2D
    readers = {}
    for p in plan:
        for i in p[1]:
            readers[i] = readers.get(i, 0) + 1
    made_by = {p[3]: p for p in plan}
    pairs = {}
    for p in steps:
        c = None if p[2] else made_by.get(p[1][0])
        if (c is not None and not c[2] and p[4] and readers[c[3]] == 1 and c[3] != out_id
                and type(p[0]) is MaxPooling2D and p[0]._fuses_after(c[0])):
            pairs[p[3]] = c
    return pairs

