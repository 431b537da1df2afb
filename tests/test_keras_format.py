"""Keras 3's files: fastdl reads .keras/.weights.h5 files that Keras 3 wrote (the fixtures
of tests/fixtures/keras/, made by tools/make_keras_fixtures.py with Keras 3 itself) and
predicts as Keras did; files fastdl writes have the structure and names Keras' own have
(checked against the fixtures: CI has no TensorFlow); round trips; clear errors."""
import io
import json
import os
import sys
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="Keras files need h5py (pip install 'fastdl[keras]')")

import fastdl  # noqa: E402
from fastdl import layers, models  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")

# fixture -> fastdl layer classes it needs (layers other work adds are skipped until they land)
NEEDS = {
    "mlp": [], "convnet": [], "functional_merge": [], "simple_rnn": [], "lstm": [], "gru": [],
    "conv1d": ["Conv1D", "GlobalAveragePooling1D"], "conv2d_transpose": ["Conv2DTranspose"],
    "depthwise_separable": ["DepthwiseConv2D", "SeparableConv2D"],
    "batchnorm": ["BatchNormalization"], "layernorm": ["LayerNormalization"],
    "embedding": ["Embedding"], "bidirectional": ["Bidirectional"],
    "time_distributed": ["TimeDistributed"], "seq2seq": [],
}


def _skip_missing(name):
    missing = [c for c in NEEDS[name] if not hasattr(layers, c)]
    if missing:
        pytest.skip(f"fastdl has no {', '.join(missing)} layer yet (added on another branch)")


def _data(name):
    with np.load(os.path.join(FIXTURES, name + ".npz")) as d:
        xs = [d[f"x{i}"] for i in range(sum(k.startswith("x") for k in d.files))]
        ys = [d[f"y{i}"] for i in range(sum(k.startswith("y") for k in d.files))]
    return xs, ys


def _predict(model, xs):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return out if isinstance(out, list) else [out]


def _fixture(name):
    return os.path.join(FIXTURES, name + ".keras")


def _h5_layout(f):
    """{dataset path: shape} and the groups' 'name' attributes of an h5py File."""
    shapes, names = {}, {}

    def visit(path, obj):
        if isinstance(obj, h5py.Dataset):
            shapes[path] = obj.shape
        elif "name" in obj.attrs:
            names[path] = obj.attrs["name"]
    f.visititems(visit)
    return shapes, names


def _zip_parts(path):
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
        cfg = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            layout = _h5_layout(f)
    return names, cfg, meta, layout


# ----------------------------------------------------------------- reading Keras' files
@pytest.mark.parametrize("name", sorted(NEEDS))
def test_fixture_loads_and_predicts_as_keras(name):
    _skip_missing(name)
    model = models.load_model(_fixture(name))
    xs, ys = _data(name)
    for got, want in zip(_predict(model, xs), ys):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fixture_names_and_shapes_come_through():
    m = models.load_model(_fixture("functional_merge"))
    assert m.name == "functional_merge"
    assert [l.name for l in m.layers] == ["in_a", "da", "in_b", "db", "add", "cat", "head"] or \
        {l.name for l in m.layers} == {"in_a", "da", "in_b", "db", "add", "cat", "head"}
    assert m.input_names == ["in_a", "in_b"]
    assert m.get_layer("head").activation.name == "sigmoid"
    gru = models.load_model(_fixture("gru"))
    # Keras' GRU bias (2, 3U) is fastdl's: the arrays come over unchanged
    with zipfile.ZipFile(_fixture("gru")) as z, \
            h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        np.testing.assert_array_equal(gru.layers[0].weights[2], f["layers/gru/cell/vars/2"][()])
        np.testing.assert_array_equal(gru.layers[1].weights[0], f["layers/gru_1/cell/vars/0"][()])


def test_loaded_fixture_trains():
    m = models.load_model(_fixture("mlp"))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    xs, ys = _data("mlp")
    fastdl.set_seed(0)
    target = np.tile((ys[0].argmax(axis=1) + 1) % 4, 8)     # other classes than Keras' answers
    h = m.fit(np.tile(xs[0], (8, 1)), target, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_keras_weights_file_loads_into_a_fastdl_model():
    ref = models.load_model(_fixture("mlp"))
    fresh = models.Sequential([layers.Input((8,)), layers.Dense(16, activation="relu"),
                               layers.Dropout(0.3), layers.Dense(12, activation="tanh"),
                               layers.Dense(4, activation="softmax")])
    fresh.load_weights(os.path.join(FIXTURES, "mlp.weights.h5"))
    for a, b in zip(fresh.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    # and the weights inside a .keras file too, as Keras' load_weights allows
    again = models.clone_model(fresh)
    again.load_weights(_fixture("mlp"))
    xs, ys = _data("mlp")
    np.testing.assert_allclose(_predict(again, xs)[0], ys[0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- writing Keras' files
def _config_layers(cfg):
    return cfg["config"]["layers"]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_written_files_have_keras_structure(name, tmp_path):
    """fastdl's file of a model has the zip members, h5 datasets (paths, shapes), group
    names and config (classes, names, keys Keras knows, wiring) of Keras' file of it."""
    _skip_missing(name)
    model = models.load_model(_fixture(name))
    out = tmp_path / f"{name}.keras"
    model.save(out)
    k_names, k_cfg, k_meta, (k_shapes, k_gnames) = _zip_parts(_fixture(name))
    f_names, f_cfg, f_meta, (f_shapes, f_gnames) = _zip_parts(out)
    assert f_names == k_names == ["config.json", "metadata.json", "model.weights.h5"]
    assert set(f_meta) == set(k_meta)
    assert f_shapes == {p: s for p, s in k_shapes.items() if not p.startswith("optimizer/")}
    for path, n in f_gnames.items():
        assert path in k_gnames or path.startswith("optimizer"), path
    assert f_cfg["class_name"] == k_cfg["class_name"]
    assert f_cfg["module"] == k_cfg["module"]
    assert f_cfg.get("registered_name") == k_cfg.get("registered_name")
    kl, fl = _config_layers(k_cfg), _config_layers(f_cfg)
    assert [e["class_name"] for e in fl] == [e["class_name"] for e in kl]
    for fe, ke in zip(fl, kl):
        assert fe["module"] == ke["module"]
        # every key fastdl writes is one Keras' from_config takes (Keras wrote it)
        assert set(fe["config"]) <= set(ke["config"]), (fe["class_name"],
                                                        set(fe["config"]) - set(ke["config"]))
        for k in ("units", "filters", "kernel_size", "strides", "padding", "activation",
                  "return_sequences", "axis", "rate", "target_shape", "pool_size"):
            if k in ke["config"]:
                assert fe["config"].get(k) == ke["config"][k], (fe["class_name"], k)
        if ke["class_name"] != "InputLayer":
            assert fe["config"]["name"] == ke["config"]["name"]
        if "inbound_nodes" in ke:
            assert fe["name"] == ke["name"]
            hist = lambda e: json.dumps([[t["config"]["keras_history"] for t in  # noqa: E731
                                          (a if isinstance(a, list) else [a])]
                                         for n in e["inbound_nodes"] for a in n["args"]])
            assert hist(fe) == hist(ke)
    if "input_layers" in k_cfg["config"]:
        assert f_cfg["config"]["input_layers"] == k_cfg["config"]["input_layers"]
        assert f_cfg["config"]["output_layers"] == k_cfg["config"]["output_layers"]
    else:
        assert f_cfg["config"]["build_input_shape"] == k_cfg["config"]["build_input_shape"]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_round_trip_fastdl_file_fastdl(name, tmp_path):
    _skip_missing(name)
    model = models.load_model(_fixture(name))
    path = tmp_path / "again.keras"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["again.keras"]      # no temporary file left
    again = models.load_model(path)
    xs, ys = _data(name)
    for a, b in zip(_predict(again, xs), _predict(model, xs)):
        np.testing.assert_array_equal(a, b)
    w = tmp_path / "w.weights.h5"
    model.save_weights(w)
    fresh = models.load_model(_fixture(name))
    fresh.set_weights([np.zeros_like(a) for a in fresh.get_weights()])
    fresh.load_weights(w)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with h5py.File(w, "r") as f:
        shapes, _ = _h5_layout(f)
    _, _, _, (k_shapes, _) = _zip_parts(_fixture(name))
    assert shapes == k_shapes           # a weights file has the model file's layout


def test_compiled_model_keeps_compile_settings_and_optimizer_state(tmp_path):
    fastdl.set_seed(3)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 5), dtype=np.float32), rng.integers(0, 3, 32)
    m = models.Sequential([layers.Input((5,)), layers.Dense(7, activation="relu"),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=fastdl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    m.save(tmp_path / "m.keras")
    _, cfg, _, (shapes, _) = _zip_parts(tmp_path / "m.keras")
    cc = cfg["compile_config"]
    assert cc["optimizer"]["class_name"] == "Adam" and cc["optimizer"]["module"] == "keras.optimizers"
    assert cc["loss"] == "sparse_categorical_crossentropy" and cc["metrics"] == ["accuracy"]
    # Keras' optimizer layout: iterations, learning rate, then each weight's m and v
    assert shapes["optimizer/vars/0"] == () and shapes["optimizer/vars/1"] == ()
    assert shapes["optimizer/vars/2"] == shapes["optimizer/vars/3"] == (5, 7)
    assert len([p for p in shapes if p.startswith("optimizer/")]) == 2 + 2 * 4
    m2 = models.load_model(tmp_path / "m.keras")
    assert m2.optimizer.iterations == m.optimizer.iterations == 8
    for a, b in zip(m2.optimizer.get_state(m2.trainable_weights)[1],
                    m.optimizer.get_state(m.trainable_weights)[1]):
        np.testing.assert_array_equal(a, b)
    m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    m2.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    # without the optimizer: no optimizer group
    m.save(tmp_path / "n.keras", include_optimizer=False)
    assert not [p for p in _zip_parts(tmp_path / "n.keras")[3][0] if p.startswith("optimizer")]


def test_keras_compile_config_with_loss_object_loads(tmp_path):
    m = models.load_model(_fixture("functional_merge"))
    m.compile(optimizer="sgd", loss=fastdl.losses.BinaryCrossentropy(from_logits=False))
    m.save(tmp_path / "m.keras")
    cc = _zip_parts(tmp_path / "m.keras")[1]["compile_config"]
    assert cc["loss"]["class_name"] == "BinaryCrossentropy"
    assert cc["loss"]["module"] == "keras.losses"
    m2 = models.load_model(tmp_path / "m.keras")
    assert m2.compiled and type(m2.optimizer).__name__ == "SGD"


# ----------------------------------------------------------------- what goes where
def test_models_keras_cannot_express_use_fastdls_format(tmp_path):
    class Twice(fastdl.Layer):
        def call(self, x):
            return x * 2.0

    m = models.Sequential([layers.Input((3,)), Twice(), layers.Dense(2)])
    m.save(tmp_path / "custom.keras")
    with zipfile.ZipFile(tmp_path / "custom.keras") as z:     # an npz (also a zip)
        assert "config.json" not in z.namelist()
    x = np.ones((2, 3), np.float32)
    back = models.load_model(tmp_path / "custom.keras", custom_objects={"Twice": Twice})
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    m.save_weights(tmp_path / "custom.weights.h5")
    with open(tmp_path / "custom.weights.h5", "rb") as f:
        assert f.read(4) != b"\x89HDF"
    # a Keras-format weights file cannot go into such a model: a clear error
    plain = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    plain.save_weights(tmp_path / "plain.weights.h5")
    with pytest.raises(ValueError, match="Twice"):
        m.load_weights(tmp_path / "plain.weights.h5")


def test_other_names_keep_fastdls_format(tmp_path):
    m = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    m.save(tmp_path / "m.h5")
    with open(tmp_path / "m.h5", "rb") as f:
        assert f.read(2) == b"PK"     # fastdl's npz
    back = models.load_model(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.get_weights()[0], m.get_weights()[0])


# ----------------------------------------------------------------- errors
def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(parts["config.json"])
    edit(cfg)
    parts["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)


def test_unknown_layer_class_is_an_error_naming_it(tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][1]["class_name"] = "FancyAttention"
    _rewrite(_fixture("mlp"), tmp_path / "bad.keras", edit)
    with pytest.raises(ValueError, match="FancyAttention"):
        models.load_model(tmp_path / "bad.keras")


def test_unsupported_option_is_an_error_naming_it(tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][1]["config"]["lora_rank"] = 4
    _rewrite(_fixture("mlp"), tmp_path / "bad.keras", edit)
    with pytest.raises(ValueError, match="lora_rank"):
        models.load_model(tmp_path / "bad.keras")

    def quantized(cfg):
        cfg["config"]["layers"][1]["config"]["quantization_config"] = {"mode": "int8"}
    _rewrite(_fixture("lstm"), tmp_path / "bad2.keras", quantized)
    with pytest.raises(ValueError, match="quantization_config"):
        models.load_model(tmp_path / "bad2.keras")

    def backwards(cfg):      # a recurrent option fastdl has loads as it is
        cfg["config"]["layers"][1]["config"]["go_backwards"] = True
    _rewrite(_fixture("lstm"), tmp_path / "ok.keras", backwards)
    assert models.load_model(tmp_path / "ok.keras").layers[0].go_backwards is True


def test_weights_that_do_not_fit_are_value_errors(tmp_path):
    other = models.Sequential([layers.Input((8,)), layers.Dense(15, activation="relu"),
                               layers.Dense(12), layers.Dense(4)])
    with pytest.raises(ValueError, match="dense"):
        other.load_weights(os.path.join(FIXTURES, "mlp.weights.h5"))
    fewer = models.Sequential([layers.Input((8,)), layers.Dense(16)])
    fewer.save_weights(tmp_path / "few.weights.h5")
    with pytest.raises(ValueError, match="dense_1"):
        models.load_model(_fixture("mlp")).load_weights(tmp_path / "few.weights.h5")
    with pytest.raises(ValueError, match="weights"):
        models.load_model(os.path.join(FIXTURES, "mlp.weights.h5"))
    # a file with more layers than the model: an error, not a partial load
    smaller = models.Sequential([layers.Input((8,)), layers.Dense(16, activation="relu")])
    with pytest.raises(ValueError, match="dense_1"):
        smaller.load_weights(os.path.join(FIXTURES, "mlp.weights.h5"))


def test_damaged_keras_files_are_value_errors(tmp_path):
    data = open(_fixture("convnet"), "rb").read()
    for n in (0, 10, len(data) // 2, len(data) - 10):
        p = tmp_path / "cut.keras"
        p.write_bytes(data[:n])
        with pytest.raises(ValueError):
            models.load_model(p)
    # a well-formed zip whose weights are not HDF5
    with zipfile.ZipFile(_fixture("mlp")) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts["model.weights.h5"] = b"not hdf5 at all"
    with zipfile.ZipFile(tmp_path / "w.keras", "w") as z:
        for n, d in parts.items():
            z.writestr(n, d)
    with pytest.raises(ValueError, match="weights"):
        models.load_model(tmp_path / "w.keras")


def test_missing_h5py_is_a_clear_error(tmp_path, monkeypatch):
    m = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"fastdl\[keras\]"):
        m.save(tmp_path / "m.keras")
    with pytest.raises(ImportError, match=r"fastdl\[keras\]"):
        models.load_model(_fixture("mlp"))
    assert not os.listdir(tmp_path)


def test_functional_model_built_in_fastdl_takes_keras_weights():
    """Keras numbers a functional model's weight groups in its own layer order (by depth);
    the same model written with fastdl's API reads them into the right layers."""
    a = fastdl.Input((6,), name="in_a")
    b = fastdl.Input((6,), name="in_b")
    h = layers.Add()([layers.Dense(6, activation="relu", name="da")(a), b])
    c = layers.Concatenate(name="cat")([h, layers.Dense(3, name="db")(b)])
    m = models.Model([a, b], layers.Dense(2, activation="sigmoid", name="head")(c))
    m.load_weights(_fixture("functional_merge"))
    xs, ys = _data("functional_merge")
    np.testing.assert_allclose(_predict(m, xs)[0], ys[0], rtol=1e-5, atol=1e-6)


def _every_layer_models():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "tools", "check_keras_roundtrip.py")
    spec = importlib.util.spec_from_file_location("check_keras_roundtrip", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.every_layer_models()


def test_every_layer_kind_round_trips(tmp_path):
    """The models of tools/check_keras_roundtrip.py (every layer kind fastdl writes in Keras'
    format; that tool checks Keras 3 loads them): written in Keras' format, read back."""
    for name, (m, xs) in _every_layer_models().items():
        path = tmp_path / f"{name}.keras"
        m.save(path)
        with zipfile.ZipFile(path) as z:
            assert "config.json" in z.namelist(), name
        back = models.load_model(path)
        feed = xs if len(xs) > 1 else xs[0]
        np.testing.assert_array_equal(back.predict(feed, verbose=0), m.predict(feed, verbose=0),
                                      err_msg=name)
        assert [type(l).__name__ for l in back.layers] == [type(l).__name__ for l in m.layers]


@pytest.mark.parametrize("make", [
    lambda: fastdl.optimizers.RMSprop(0.01, momentum=0.3, centered=True),
    lambda: fastdl.optimizers.Adam(0.01, amsgrad=True),
    lambda: fastdl.optimizers.SGD(0.01, momentum=0.9),
    lambda: fastdl.optimizers.Nadam(0.01),
    lambda: fastdl.optimizers.Adam(0.01, use_ema=True)],
    ids=["rmsprop", "amsgrad", "sgd", "nadam", "ema"])
def test_optimizer_state_in_keras_order_round_trips(make, tmp_path):
    """Keras keeps one list per kind of slot for RMSprop (all velocities, then momentums,
    then average gradients) and Adam's velocity_hat after the (momentum, velocity) pairs
    (checked once in Keras 3: a fastdl file resumes training there as in fastdl). Here: the
    layout, by shapes, and fastdl resumes identically."""
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 5), dtype=np.float32), rng.random((16, 2), dtype=np.float32)
    m = models.Sequential([layers.Input((5,)), layers.Dense(4), layers.Dense(2)])
    opt = make()
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    m.save(tmp_path / "m.keras")
    shapes = _zip_parts(tmp_path / "m.keras")[3][0]
    got = [shapes[f"optimizer/vars/{i}"] for i in range(2, len(
        [p for p in shapes if p.startswith("optimizer/")]))]
    ws = [(5, 4), (4,), (4, 2), (2,)]
    k = len(opt._slot_names)
    if opt.use_ema:      # Keras' layout of EMA is not followed: fastdl's own group
        assert not got and shapes["fastdl_optimizer/vars/1"] == (5, 4)
    elif type(opt).__name__ == "Nadam":
        assert got == [w for w in ws for _ in range(2)] + [()]
    elif type(opt).__name__ == "RMSprop":
        assert got == ws * k
    elif k == 3:
        assert got == [w for w in ws for _ in range(2)] + ws
    else:
        assert got == [w for w in ws for _ in range(k)]
    m2 = models.load_model(tmp_path / "m.keras")
    assert m2.optimizer.iterations == 2
    m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    m2.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_seq2seq_with_initial_state_trains_saves_and_loads(tmp_path):
    # keras-io's character-level seq2seq: return_state feeding initial_state, a softmax Dense
    # on 3-D outputs (fused with the loss under the tape); Keras' file form of initial_state
    import json
    import zipfile
    import fastdl as keras
    rng = np.random.default_rng(0)
    enc_x = np.eye(5, dtype="float32")[rng.integers(0, 5, (16, 7))]
    dec_x = np.eye(6, dtype="float32")[rng.integers(0, 6, (16, 4))]
    dec_y = np.roll(dec_x, -1, axis=1)
    enc_in, dec_in = keras.Input((None, 5)), keras.Input((None, 6))
    _, h, c = layers.LSTM(8, return_state=True)(enc_in)
    seq, _, _ = layers.LSTM(8, return_sequences=True, return_state=True)(dec_in,
                                                                         initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], layers.Dense(6, activation="softmax")(seq))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    hist = model.fit([enc_x, dec_x], dec_y, batch_size=8, epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    path = tmp_path / "s2s.keras"
    model.save(path)
    cfg = json.loads(zipfile.ZipFile(path).read("config.json"))
    dec = [e for e in cfg["config"]["layers"] if e["class_name"] == "LSTM"][1]
    node = dec["inbound_nodes"][0]
    assert len(node["args"]) == 1 and len(node["kwargs"]["initial_state"]) == 2
    assert dec["build_config"]["input_shape"] == [None, None, 6]
    again = models.load_model(path)
    np.testing.assert_array_equal(again.predict([enc_x, dec_x], verbose=0),
                                  model.predict([enc_x, dec_x], verbose=0))
