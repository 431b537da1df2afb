"""ONNX export: every exportable layer, alone or in small models, passes onnx.checker and
runs in ONNX Runtime with the results of model.predict (rtol 1e-5); the batch dimension
is dynamic; unsupported layers are errors naming them."""
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'fastdl[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the exports run in onnxruntime")

import fastdl  # noqa: E402
from fastdl import layers, models  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    ws = []
    for w in model.get_weights():
        ws.append(rng.normal(0.0, 0.4, w.shape).astype(w.dtype))
    model.set_weights(ws)


def _run(path, xs):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s, s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})


def _check(model, xs, tmp_path, batches=(1, 5)):
    """Export, check, and compare to model.predict at several batch sizes."""
    path = tmp_path / "m.onnx"
    model.export(path, format="onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    for i in proto.graph.input:
        assert i.type.tensor_type.shape.dim[0].dim_param == "batch"     # dynamic batch
    for n in batches:
        part = [x[:n] for x in xs]
        _, got = _run(path, part)
        want = model.predict(part if len(part) > 1 else part[0], verbose=0)
        want = want if isinstance(want, list) else [want]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            scale = float(np.abs(w).max()) if w.size else 1.0
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * max(scale, 1.0))
    return proto


def _seq(*ls, shape):
    m = models.Sequential([layers.Input(shape)] + list(ls))
    _randomize(m)
    return m


def _x(*shape, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)


CASES = {
    "dense_activations": lambda: (_seq(layers.Dense(7, activation="relu"),
                                       layers.Dense(6, activation="tanh"),
                                       layers.Dense(5, activation="sigmoid"),
                                       layers.Dense(4, use_bias=False),
                                       layers.Dense(3, activation="softmax"), shape=(9,)),
                                  (5, 9)),
    "dense_3d": lambda: (_seq(layers.Dense(4, activation="elu"), shape=(3, 5)), (5, 3, 5)),
    "conv2d_same_valid": lambda: (_seq(
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.Conv2D(3, (2, 3), strides=(2, 1), padding="valid"),
        layers.Conv2D(2, 3, strides=2, padding="same", use_bias=False),
        layers.Conv2D(2, 2, dilation_rate=2, padding="same"), shape=(11, 10, 3)),
        (5, 11, 10, 3)),
    "pooling2d": lambda: (_seq(layers.MaxPooling2D(), layers.AveragePooling2D(2, padding="same"),
                               layers.MaxPooling2D(3, strides=1, padding="same"),
                               shape=(9, 10, 2)), (5, 9, 10, 2)),
    "global_pooling2d": lambda: (_seq(layers.Conv2D(3, 1), layers.GlobalAveragePooling2D(),
                                      shape=(5, 4, 2)), (5, 5, 4, 2)),
    "global_max_keepdims": lambda: (_seq(layers.GlobalMaxPooling2D(keepdims=True),
                                         shape=(5, 4, 2)), (5, 5, 4, 2)),
    "pooling1d": lambda: (_seq(layers.MaxPooling1D(2), layers.AveragePooling1D(2, padding="same"),
                               layers.GlobalMaxPooling1D(), shape=(11, 3)), (5, 11, 3)),
    "global_avg1d": lambda: (_seq(layers.GlobalAveragePooling1D(), shape=(6, 3)), (5, 6, 3)),
    "flatten_reshape_dropout": lambda: (_seq(layers.Flatten(), layers.Dropout(0.5),
                                             layers.Reshape((3, -1)), layers.Dense(2),
                                             layers.GaussianNoise(0.3), layers.Flatten(),
                                             shape=(4, 3, 2)), (5, 4, 3, 2)),
    "activation_layers": lambda: (_seq(layers.Activation("softplus"), layers.ReLU(),
                                       layers.Dense(6), layers.LeakyReLU(negative_slope=0.2),
                                       layers.ELU(alpha=0.7), layers.PReLU(),
                                       layers.Activation("gelu"), layers.Activation("swish"),
                                       layers.Softmax(axis=-1), shape=(6,)), (5, 6)),
    "zero_padding_permute": lambda: (_seq(layers.ZeroPadding2D(((1, 2), (0, 1))),
                                          layers.Permute((2, 1, 3)), shape=(3, 4, 2)),
                                     (5, 3, 4, 2)),
    "simple_rnn": lambda: (_seq(layers.SimpleRNN(5, return_sequences=True),
                                layers.SimpleRNN(3, activation="relu"), shape=(7, 4)), (5, 7, 4)),
    "lstm": lambda: (_seq(layers.LSTM(5, return_sequences=True), layers.LSTM(3),
                          shape=(6, 4)), (5, 6, 4)),
    "lstm_no_bias": lambda: (_seq(layers.LSTM(3, use_bias=False, return_sequences=True),
                                  shape=(4, 2)), (5, 4, 2)),
    "gru": lambda: (_seq(layers.GRU(5, return_sequences=True), layers.GRU(3), shape=(6, 4)),
                    (5, 6, 4)),
    "gru_no_bias": lambda: (_seq(layers.GRU(3, use_bias=False), shape=(4, 2)), (5, 4, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layers_export_and_match_predict(case, tmp_path):
    model, shape = CASES[case]()
    _check(model, [_x(*shape)], tmp_path)


def test_dropout_is_removed(tmp_path):
    m = _seq(layers.Dense(3), layers.Dropout(0.5), layers.GaussianDropout(0.4),
             layers.ActivityRegularization(l1=0.1), layers.Dense(2), shape=(4,))
    proto = _check(m, [_x(5, 4)], tmp_path)
    ops = {n.op_type for n in proto.graph.node}
    assert "Dropout" not in ops and "RandomNormal" not in ops and "RandomNormalLike" not in ops


@pytest.mark.parametrize("merge", ["Add", "Subtract", "Multiply", "Average", "Maximum",
                                   "Minimum", "Concatenate"])
def test_merges_in_functional_models(merge, tmp_path):
    a = fastdl.Input((4,), name="a")
    b = fastdl.Input((4,), name="b")
    da = layers.Dense(4, activation="relu")(a)
    m = getattr(layers, merge)()([da, b])
    out = layers.Dense(3)(m)
    model = models.Model([a, b], [out, m])
    _randomize(model)
    proto = _check(model, [_x(5, 4, seed=2), _x(5, 4, seed=3)], tmp_path)
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    assert len(proto.graph.output) == 2


def test_three_way_merge_and_shared_layer(tmp_path):
    x = fastdl.Input((5,), name="x")
    shared = layers.Dense(5, activation="tanh", name="shared")
    h1 = shared(x)
    h2 = shared(h1)                                     # one layer, two calls
    y = layers.Add()([x, h1, h2])
    model = models.Model(x, layers.Concatenate()([y, h2]))
    _randomize(model)
    _check(model, [_x(6, 5)], tmp_path, batches=(2, 6))


@pytest.mark.parametrize("name", ["mlp", "convnet", "functional_merge", "simple_rnn", "lstm",
                                  "gru", "conv1d", "batchnorm", "layernorm", "embedding"])
def test_keras_fixtures_export(name, tmp_path):
    pytest.importorskip("h5py")
    needs = {"conv1d": "Conv1D", "batchnorm": "BatchNormalization",
             "layernorm": "LayerNormalization", "embedding": "Embedding"}.get(name)
    if needs and not hasattr(layers, needs):
        pytest.skip(f"fastdl has no {needs} layer yet (added on another branch)")
    model = models.load_model(os.path.join(FIXTURES, name + ".keras"))
    with np.load(os.path.join(FIXTURES, name + ".npz")) as d:
        xs = [d[k] for k in sorted(d.files) if k.startswith("x")]
        ys = [d[k] for k in sorted(d.files) if k.startswith("y")]
    _check(model, xs, tmp_path, batches=(1, len(xs[0])))
    _, got = _run(tmp_path / "m.onnx", xs)
    np.testing.assert_allclose(got[0], ys[0], rtol=1e-5, atol=1e-6)    # and Keras' numbers


def test_export_takes_the_name_and_rejects_other_formats(tmp_path):
    m = _seq(layers.Dense(2), shape=(3,))
    m.export(tmp_path / "by_name.onnx")
    assert (tmp_path / "by_name.onnx").exists()
    with pytest.raises(ValueError, match="tf_saved_model"):
        m.export(tmp_path / "x", format="tf_saved_model")
    with pytest.raises(TypeError, match="input_signature"):
        m.export(tmp_path / "y.onnx", format="onnx", input_signature=[None])
    assert sorted(os.listdir(tmp_path)) == ["by_name.onnx"]     # nothing half-written


def test_unsupported_layers_are_errors_naming_them(tmp_path):
    m = _seq(layers.Dense(4), layers.Reshape((2, 2)), layers.UpSampling1D(2), shape=(3,))
    with pytest.raises(ValueError, match=r"UpSampling1D"):
        m.export(tmp_path / "m.onnx", format="onnx")

    class Twice(fastdl.Layer):
        def call(self, x):
            return x * 2.0
    m2 = models.Sequential([layers.Input((3,)), Twice(name="twice")])
    with pytest.raises(ValueError, match="twice.*Twice"):
        m2.export(tmp_path / "m.onnx", format="onnx")
    m3 = _seq(layers.Dense(3, activation="hard_sigmoid"), shape=(2,))
    with pytest.raises(ValueError, match="hard_sigmoid"):
        m3.export(tmp_path / "m.onnx", format="onnx")

    class Sub(fastdl.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)
    s = Sub()
    s.build((None, 3))
    with pytest.raises(ValueError, match="Sub"):
        s.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)


def test_missing_onnx_is_a_clear_error(tmp_path, monkeypatch):
    m = _seq(layers.Dense(2), shape=(3,))
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"fastdl\[onnx\]"):
        m.export(tmp_path / "m.onnx", format="onnx")
