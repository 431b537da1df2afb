"""Export to ONNX (``model.export("m.onnx", format="onnx")``) through the ``onnx``
package's helper API (``pip install 'fastdl[onnx]'``).

Sequential and functional models of built-in layers; each layer's nodes come from its
entry in saving/layer_table.py (the same table the Keras files use). Inference form:
Dropout and noise layers vanish, BatchNormalization is its moving-statistics affine map.
The batch dimension is dynamic ("batch"); images stay channels-last at the model's
edges (convolutions and pooling transpose to ONNX's NCHW around their nodes).
"""
import numpy as np

from . import layer_table

OPSET = 17
IR_VERSION = 8       # the IR of opset 17, read by every ONNX Runtime that runs opset 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install 'fastdl[onnx]'") from None
    return onnx, helper, numpy_helper


class Graph:
    """The nodes and constants being written (what a layer's ONNX emitter gets)."""

    def __init__(self, dtype):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers = [], []
        self._count = 0
        self.prefix = ""

    def _name(self, base):
        self._count += 1
        return f"{self.prefix}{base}_{self._count}"

    def node(self, op, inputs, n_out=1, **attrs):
        """One ONNX node; its output name (a list of names when n_out > 1)."""
        outs = [self._name(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs,
                                                name=self._name(op), **attrs))
        return outs if n_out > 1 else outs[0]

    def const(self, array, like=None):
        """A constant (initializer); float arrays take the model's dtype."""
        a = np.asarray(array)
        if a.dtype.kind == "f":
            a = a.astype(self.dtype)
        name = self._name("const")
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name


def _elem_type(helper, dtype):
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _value_info(helper, name, dtype, shape):
    dims = ["batch" if i == 0 else (None if d is None else int(d)) for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, _elem_type(helper, dtype), dims)


def _emit(g, layer, xs):
    conv = layer_table.converter_for_layer(layer)
    if conv is None or conv.onnx is None:
        raise ValueError(f"ONNX export: layer {layer.name!r} ({type(layer).__name__}) is not "
                         f"supported")
    g.prefix = layer.name + "/"
    out = conv.onnx(g, layer, xs)
    g.prefix = ""
    return out


def build_model(model):
    """The onnx.ModelProto of a built Sequential or functional model."""
    from ..models import Functional, Sequential
    from ..layers.layer import InputLayer
    if type(model) not in (Sequential, Functional):
        raise ValueError(f"ONNX export: {type(model).__name__} models are not supported; export "
                         f"a Sequential or functional model (keras.Model(inputs, outputs))")
    if not model.built:
        raise ValueError(model._not_built_message("export"))
    dtype = model.dtype or np.dtype(np.float32)
    if np.dtype(dtype).kind != "f":     # integer inputs (token ids): the weights are float32
        dtype = np.dtype(np.float32)
    g = Graph(dtype)
    helper = g.helper
    inputs, outputs = [], []
    if isinstance(model, Sequential):
        shape = model._build_input_shape
        in_dtype = model._input_dtype if model._input_dtype is not None else dtype
        in_name = "input"
        inputs.append(_value_info(helper, in_name, in_dtype, shape))
        x = in_name
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                continue
            x = _emit(g, layer, [x])[0]
        out = model.layers[-1].output_shape if model.layers else shape
        outputs.append((x, out))
    else:
        names = {}
        for t in model._flat_inputs:
            n = t.node.layer.name
            inputs.append(_value_info(helper, n, t.dtype, t.shape))
            names[t._id] = n
        for node in model._nodes:
            outs = _emit(g, node.layer, [names[t._id] for t in node.inputs])
            if len(outs) != len(node.outputs):
                raise ValueError(f"ONNX export: layer {node.layer.name!r} made {len(outs)} "
                                 f"outputs, the model expects {len(node.outputs)}")
            for t, o in zip(node.outputs, outs):
                names[t._id] = o
        for t in model._flat_outputs:
            outputs.append((names[t._id], t.shape))
    out_infos = []
    for i, (name, shape) in enumerate(outputs):
        final = model.output_names[i] if i < len(model.output_names) else f"output_{i}"
        if final in [v.name for v in inputs] or final == name:
            final = f"{final}_out"
        g.nodes.append(helper.make_node("Identity", [name], [final], name=f"output/{final}"))
        out_infos.append(_value_info(helper, final, dtype, shape))
    graph = helper.make_graph(g.nodes, model.name or "fastdl_model", inputs, out_infos,
                              initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="fastdl",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    return proto


def export(model, filepath):
    """Write ``model`` as an ONNX file (checked by onnx.checker), through a temporary file."""
    import os

    from .._fileio import atomic_file
    onnx, _, _ = _onnx()
    proto = build_model(model)
    onnx.checker.check_model(proto)
    with atomic_file(os.fspath(filepath), "wb") as f:
        f.write(proto.SerializeToString())
    return proto
