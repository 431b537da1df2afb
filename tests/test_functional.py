"""The functional API: graphs of layer calls, several inputs and outputs, shared
layers, nested models, config round trips, saving, and the errors of bad graphs."""
import numpy as np
import pytest

import fastdl
import fastdl as keras
from fastdl import layers, models, ops

from helpers import numeric_gradient as numerical_grad


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 5)).astype(np.float32), rng.integers(0, 4, n)


def _seq():
    return keras.Sequential([layers.Flatten(input_shape=(6, 5)), layers.Dense(16, activation="relu"),
                             layers.Dropout(0.2), layers.Dense(4, activation="softmax")])


def _fun():
    i = keras.Input((6, 5))
    h = layers.Flatten()(i)
    h = layers.Dense(16, activation="relu")(h)
    h = layers.Dropout(0.2)(h)
    return keras.Model(i, layers.Dense(4, activation="softmax")(h))


@pytest.mark.parametrize("opt", ["adam", "sgd", "rmsprop"])
def test_functional_trains_to_the_same_bits_as_sequential(opt):
    x, y = _data(200)
    ws, hist = [], []
    for make in (_seq, _fun):
        fastdl.set_seed(3)
        m = make()
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        ws.append(m.get_weights())
        hist.append(h.history)
    for a, b in zip(*ws):
        np.testing.assert_array_equal(a, b)
    assert hist[0]["accuracy"] == hist[1]["accuracy"]
    np.testing.assert_allclose(hist[0]["loss"], hist[1]["loss"], rtol=1e-6)


def test_tape_step_and_graph_plan_give_the_same_bits():
    # A functional model of built-in layers trains through the graph's step plan; the same
    # model whose train_step is overridden (so fit goes through the tape) ends bit-identical.
    class ThroughTape(keras.Model):
        def train_step(self, data):
            return super().train_step(data)

    def build(cls):
        i = keras.Input((6, 5))
        h = layers.Dense(16, activation="relu")(layers.Flatten()(i))
        h = layers.add([layers.Dense(8, activation="tanh")(h), layers.Dense(8)(h)])
        return cls(i, layers.Dense(4, activation="softmax")(layers.Dropout(0.3)(h)))

    x, y = _data(160)
    ws = []
    for cls in (keras.Model, ThroughTape):
        fastdl.set_seed(7)
        m = build(cls)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        assert m._plannable(fastdl.trainers.data_adapter.ArrayData(x, y)) == (cls is keras.Model)
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        ws.append(m.get_weights())
    for a, b in zip(*ws):
        np.testing.assert_array_equal(a, b)


def test_symbolic_shapes_and_structure():
    a = keras.Input(shape=(8,), name="a")
    assert a.shape == (None, 8)
    d = layers.Dense(3, name="d")
    out = d(a)
    assert out.shape == (None, 3)
    assert d.input is a and d.output is out
    m = keras.Model(inputs=a, outputs=out, name="m")
    assert m.inputs == [a] and m.outputs == [out]
    assert [l.name for l in m.layers] == ["a", "d"]
    assert isinstance(m, keras.Model) and type(m).__name__ == "Functional"
    y = m.predict(np.ones((5, 8), np.float32), verbose=0)
    assert y.shape == (5, 3)


def _two_in_two_out():
    a = keras.Input(shape=(8,), name="a")
    b = keras.Input(shape=(4,), name="b")
    shared = layers.Dense(16, activation="relu", name="shared")
    h1 = shared(layers.Dense(8, name="pa")(a))
    h2 = shared(layers.Dense(8, name="pb")(b))
    out_a = layers.Dense(1, name="out_a")(layers.concatenate([h1, h2]))
    out_b = layers.Dense(3, activation="softmax", name="out_b")(layers.add([h1, h2]))
    return keras.Model(inputs=[a, b], outputs=[out_a, out_b])


def _mimo_data(n=64):
    rng = np.random.default_rng(1)
    return (rng.standard_normal((n, 8)).astype(np.float32), rng.standard_normal((n, 4)).astype(np.float32),
            rng.standard_normal((n, 1)).astype(np.float32), rng.integers(0, 3, n))


def test_multi_input_multi_output_fit_with_dicts():
    xa, xb, ya, yb = _mimo_data()
    m = _two_in_two_out()
    assert m.output_names == ["out_a", "out_b"]
    m.compile(optimizer="adam", loss={"out_a": "mse", "out_b": "sparse_categorical_crossentropy"},
              loss_weights={"out_a": 1.0, "out_b": 0.5}, metrics={"out_b": ["accuracy"]})
    h = m.fit({"a": xa, "b": xb}, {"out_a": ya, "out_b": yb}, epochs=3, batch_size=16, verbose=0,
              validation_split=0.25)
    assert set(h.history) == {"loss", "out_a_loss", "out_b_loss", "out_b_accuracy", "val_loss",
                              "val_out_a_loss", "val_out_b_loss", "val_out_b_accuracy"}
    # the total is the weighted sum of the per-output losses
    for t, la, lb in zip(h.history["val_loss"], h.history["val_out_a_loss"],
                         h.history["val_out_b_loss"]):
        assert t == pytest.approx(la + 0.5 * lb, rel=1e-5)
    assert h.history["loss"][-1] < h.history["loss"][0]
    p = m.predict([xa, xb], verbose=0)
    assert [q.shape for q in p] == [(64, 1), (64, 3)]
    r = m.evaluate([xa, xb], [ya, yb], verbose=0, return_dict=True)
    assert set(r) == {"loss", "out_a_loss", "out_b_loss", "out_b_accuracy"}


def test_loss_weights_as_list_scale_the_total():
    xa, xb, ya, yb = _mimo_data(32)
    m = _two_in_two_out()
    m.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"], loss_weights=[2.0, 0.0])
    r = m.evaluate([xa, xb], [ya, yb], verbose=0, return_dict=True)
    assert r["loss"] == pytest.approx(2.0 * r["out_a_loss"], rel=1e-5)


def test_shared_layer_gradients_are_summed():
    # f(x) = D(D(x)) with one shared Dense: the tape's kernel gradient must match
    # finite differences (it is the sum over both calls).
    i = keras.Input((3,), dtype="float64")
    d = layers.Dense(3, activation="tanh", dtype="float64")
    m = keras.Model(i, d(d(i)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    with keras.GradientTape() as tape:
        loss = ops.sum(ops.square(m(x, training=True)))
    g = tape.gradient(loss, d.trainable_weights)
    for w, gw in zip(d.trainable_weights, g):
        num = numerical_grad(lambda: float(np.sum(m(x) ** 2)), w)
        np.testing.assert_allclose(gw, num, rtol=1e-6, atol=1e-8)


def test_fan_out_and_low_level_backward_match_finite_differences():
    i = keras.Input((5,), dtype="float64")
    h = layers.Dense(4, activation="tanh", dtype="float64")(i)
    o = layers.add([layers.Dense(3, dtype="float64")(h), layers.Dense(3, dtype="float64")(h)])
    m = keras.Model(i, o)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5))
    y = m(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = m.backward(dy)
    grads = m.gradients
    f = lambda: float(np.sum(m(x) * dy))  # noqa: E731
    for w, g in zip(m.trainable_weights, grads):
        np.testing.assert_allclose(g, numerical_grad(f, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, numerical_grad(f, x), rtol=1e-6, atol=1e-8)


def test_model_as_layer_in_sequential_and_model():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, activation="relu")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((4,)), inner, layers.Dense(2)])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert seq.predict(x, verbose=0).shape == (5, 2)
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, layers.Dense(1)(inner(outer_in)))
    assert len(outer.trainable_weights) == 4
    outer.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in inner.trainable_weights]
    outer.fit(x, np.ones((5, 1), np.float32), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, inner.trainable_weights))


def test_feature_extractor_from_intermediate_outputs():
    i = keras.Input((6,))
    h1 = layers.Dense(5, name="h1")(i)
    h2 = layers.Dense(4, name="h2")(h1)
    base = keras.Model(i, layers.Dense(2)(h2))
    feat = keras.Model(inputs=base.inputs, outputs=[l.output for l in base.layers[1:]])
    x = np.ones((3, 6), np.float32)
    outs = feat(x)
    assert [o.shape for o in outs] == [(3, 5), (3, 4), (3, 2)]
    np.testing.assert_allclose(outs[-1], base(x), rtol=1e-6)


def test_summary_has_connected_to_column():
    m = _two_in_two_out()
    lines = []
    m.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "shared[1][0]" in text and "pa[0][0]" in text


def test_config_round_trip_and_save_load(tmp_path):
    xa, xb, ya, yb = _mimo_data(16)
    m = _two_in_two_out()
    m.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"])
    m.fit([xa, xb], [ya, yb], epochs=1, verbose=0)
    clone = keras.Model.from_config(m.get_config()) if hasattr(keras.Model, "from_config") else None
    clone = models.Functional.from_config(m.get_config())
    assert [l.name for l in clone.layers] == [l.name for l in m.layers]
    clone.set_weights(m.get_weights())
    for p, q in zip(clone.predict([xa, xb], verbose=0), m.predict([xa, xb], verbose=0)):
        np.testing.assert_array_equal(p, q)
    path = tmp_path / "m.keras"
    m.save(path)
    back = models.load_model(path)
    for p, q in zip(back.predict([xa, xb], verbose=0), m.predict([xa, xb], verbose=0)):
        np.testing.assert_array_equal(p, q)
    back.fit([xa, xb], [ya, yb], epochs=1, verbose=0)   # compiled, optimizer state restored


def test_nested_model_saves_and_loads(tmp_path):
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, activation="tanh")(inner_in), name="inner")
    i = keras.Input((4,))
    m = keras.Model(i, layers.Dense(2)(inner(i)))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    m.save(tmp_path / "n.keras")
    back = models.load_model(tmp_path / "n.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_ops_on_symbolic_tensors_build_graph_nodes():
    i = keras.Input((3,))
    h = layers.Dense(4)(i)
    o = ops.relu(h) * 2.0 + 1.0
    m = keras.Model(i, o)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    d = m.layers[1]
    expected = np.maximum(x @ d.kernel + d.bias, 0) * 2 + 1
    np.testing.assert_allclose(m(x), expected, rtol=1e-6)


# ------------------------------------------------------------------ bad graphs and bad calls
def test_incompatible_shape_names_layer_and_shapes():
    i = keras.Input((6, 5))
    d = layers.Dense(3, name="dd")
    d(layers.Flatten()(i))
    with pytest.raises(ValueError, match=r"'dd'.*\(None, 30\).*\(None, 7\)"):
        d(keras.Input((7,)))


def test_output_needing_undeclared_input():
    a, b = keras.Input((3,), name="ua"), keras.Input((3,), name="ub")
    o = layers.add([a, b])
    with pytest.raises(ValueError, match="'ub'.*not among the model's inputs"):
        keras.Model(a, o)


def test_input_not_used():
    a, b = keras.Input((3,), name="va"), keras.Input((3,), name="vb")
    with pytest.raises(ValueError, match="do not depend on its input 'vb'"):
        keras.Model([a, b], layers.Dense(2)(a))


def test_loss_and_metric_keys_must_match_outputs():
    m = _two_in_two_out()
    with pytest.raises(ValueError, match="'out_c'.*out_a"):
        m.compile(optimizer="sgd", loss={"out_c": "mse"})
    with pytest.raises(ValueError, match="'bogus'"):
        m.compile(optimizer="sgd", loss="mse", metrics={"bogus": ["mae"]})


def test_called_with_wrong_input_structure():
    m = _two_in_two_out()
    with pytest.raises(ValueError, match="expects 2 inputs"):
        m(np.ones((2, 8), np.float32))
    with pytest.raises(ValueError, match="expects 2 inputs"):
        m([np.ones((2, 8), np.float32)] * 3)
    with pytest.raises(ValueError, match=r"input 'a' expects shape \(None, 8\)"):
        m([np.ones((2, 5), np.float32), np.ones((2, 4), np.float32)])


def test_merge_layers_forward_and_backward():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, 4)) for _ in range(3)]
    cases = {layers.Add: lambda a, b, c: a + b + c, layers.Multiply: lambda a, b, c: a * b * c,
             layers.Average: lambda a, b, c: (a + b + c) / 3,
             layers.Maximum: lambda a, b, c: np.maximum(np.maximum(a, b), c),
             layers.Minimum: lambda a, b, c: np.minimum(np.minimum(a, b), c)}
    for cls, ref in cases.items():
        l = cls(dtype="float64")
        np.testing.assert_allclose(l(xs), ref(*xs), rtol=1e-12)
        ins = [keras.Input((4,), dtype="float64") for _ in range(3)]
        m = keras.Model(ins, cls(dtype="float64")(ins))
        dy = rng.standard_normal((3, 4))
        m(xs, training=True)
        dxs = m.backward(dy)
        for k in range(3):
            np.testing.assert_allclose(dxs[k], numerical_grad(lambda: float(np.sum(m(xs) * dy)), xs[k]),
                                       rtol=1e-6, atol=1e-8)
    sub = layers.Subtract()
    np.testing.assert_allclose(sub(xs[:2]), xs[0] - xs[1], rtol=1e-6)
    cat = layers.Concatenate(axis=1)
    np.testing.assert_allclose(cat(xs), np.concatenate(xs, axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()(xs)
    with pytest.raises(ValueError, match="one shape"):
        layers.Add()([keras.Input((3,)), keras.Input((4,))])
