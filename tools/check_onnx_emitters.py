"""Check the ONNX emitters of saving/layer_table.py against Keras 3's layers themselves,
one layer at a time, including layers fastdl gains on other branches (Conv1D,
Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, BatchNormalization, LayerNormalization,
Embedding): each emitter gets a stand-in with the Keras layer's config, weights (random)
and input shape, and ONNX Runtime's output is compared with the Keras layer's.

    PYTHONPATH=python tfvenv/bin/python tools/check_onnx_emitters.py

(needs tensorflow-cpu, onnx and onnxruntime; prints one line per case, max |difference|).
"""
import os
import sys
import types
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
import onnxruntime as ort
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from fastdl.saving import layer_table, onnx_export
from onnx import helper
rng = np.random.default_rng(0)
def mock(kl, in_shape):
    cfg = kl.get_config()
    act = cfg.get("activation", "linear")
    ns = types.SimpleNamespace(**{k: v for k, v in cfg.items() if k not in ("activation", "dtype")})
    ns.activation = types.SimpleNamespace(name=act)
    ns._weights = [v.numpy() for v in kl.weights]
    ns._weight_names = [v.name for v in kl.weights]
    ns.input_shape = (None,) + tuple(in_shape)
    ns.dtype = "float32"
    return ns
def check(kl, in_shape, conv_name, xdtype="float32", x=None):
    inp = keras.Input(in_shape, dtype=xdtype)
    kl(inp)
    for v in kl.weights:
        a = rng.normal(0, 0.4, v.shape)
        if "variance" in v.name: a = np.abs(a) + 0.5
        v.assign(a.astype("float32"))
    if x is None:
        x = rng.normal(size=(3,) + in_shape).astype(xdtype)
    want = np.asarray(kl(x))
    m = mock(kl, in_shape)
    g = onnx_export.Graph("float32")
    out = layer_table.TABLE[conv_name].onnx(g, m, ["x"])[0]
    g.nodes.append(helper.make_node("Identity", [out], ["y"]))
    graph = helper.make_graph(g.nodes, "t", [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(np.dtype(xdtype)), ["batch"] + list(in_shape))],
                              [helper.make_tensor_value_info("y", 1, None)], initializer=g.initializers)
    p = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]); p.ir_version = 8
    s = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
    got = s.run(None, {"x": x})[0]
    print(conv_name, kl.get_config().get("padding", ""), got.shape, want.shape, float(np.abs(got - want).max()) if got.shape == want.shape else "SHAPE")
L = keras.layers
check(L.Conv1D(4, 3, padding="same", activation="relu"), (10, 3), "Conv1D")
check(L.Conv1D(2, 2, strides=2), (10, 3), "Conv1D")
check(L.Conv1D(2, 3, padding="causal", dilation_rate=2), (10, 3), "Conv1D")
check(L.Conv2DTranspose(3, 3, strides=2, padding="same"), (5, 5, 2), "Conv2DTranspose")
check(L.Conv2DTranspose(3, 2, strides=3, padding="same"), (5, 4, 2), "Conv2DTranspose")
check(L.Conv2DTranspose(3, 4, strides=2, padding="same"), (5, 4, 2), "Conv2DTranspose")
check(L.Conv2DTranspose(2, 2, activation="relu"), (5, 5, 2), "Conv2DTranspose")
check(L.Conv2DTranspose(2, 3, strides=(2, 1)), (4, 5, 2), "Conv2DTranspose")
check(L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (8, 8, 3), "DepthwiseConv2D")
check(L.DepthwiseConv2D(3, strides=2), (8, 7, 3), "DepthwiseConv2D")
check(L.SeparableConv2D(4, 3, activation="relu"), (8, 8, 6), "SeparableConv2D")
check(L.SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2), (8, 8, 3), "SeparableConv2D")
check(L.BatchNormalization(), (6, 6, 3), "BatchNormalization")
check(L.BatchNormalization(), (4,), "BatchNormalization")
check(L.LayerNormalization(), (5, 4), "LayerNormalization")
check(L.LayerNormalization(epsilon=1e-3, center=False), (5, 4), "LayerNormalization")
check(L.Embedding(20, 4), (7,), "Embedding", "int32", rng.integers(0, 20, (3, 7)).astype("int32"))
