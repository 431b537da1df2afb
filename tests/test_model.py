"""Sequential: summary, fit/evaluate/predict, low-level loop, determinism, saving, input checks."""
import io
import os
from contextlib import redirect_stdout

import numpy as np
import pytest

import fastdl
from fastdl.models.sequential import backward_plan
from fastdl import layers, losses, models, optimizers


def _data(n=600, seed=0, classes=4, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.uniform(0, 255, (classes,) + shape)
    x = np.clip(centers[y] + rng.normal(0, 50, (n,) + shape), 0, 255).astype(np.uint8)
    return x, y


def _mlp(classes=4, shape=(6, 5)):
    m = models.Sequential()
    m.add(layers.Flatten(input_shape=shape))
    m.add(layers.Dense(16, activation="relu"))
    m.add(layers.Dropout(0.2))
    m.add(layers.Dense(classes, activation="softmax"))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _summary(m):
    buf = io.StringIO()
    with redirect_stdout(buf):
        m.summary()
    return buf.getvalue()


def test_summary_seed_mlp():
    m = models.Sequential()
    m.add(layers.Flatten(input_shape=(28, 28)))
    m.add(layers.Dense(128, activation="relu"))
    m.add(layers.Dropout(0.2))
    m.add(layers.Dense(10, activation="softmax"))
    s = _summary(m)
    assert "Total params: 101,770" in s and "Trainable params: 101,770" in s
    assert "Non-trainable params: 0" in s
    assert "(None, 784)" in s and "100,480" in s and "1,290" in s
    assert m.count_params() == 101770


def test_summary_convnet():
    m = models.Sequential([
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPool2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
    s = _summary(m)
    for text in ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)", "(None, 5, 5, 64)",
                 "(None, 1600)", "320", "18,496", "204,928", "1,290", "Total params: 225,034"]:
        assert text in s, text


def test_summary_before_build_says_what_to_do():
    m = models.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="input_shape"):
        m.summary()


def test_fit_lowers_loss_and_history_keys():
    fastdl.set_seed(0)
    x, y = _data()
    m = _mlp()
    h = m.fit(x, y, epochs=8, verbose=0, validation_split=0.2)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h.history["loss"]) == 8
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.7, h.history


def test_evaluate_equals_manual_loop():
    fastdl.set_seed(1)
    x, y = _data(n=203)
    x = x / 255.0
    m = _mlp()
    m.fit(x, y, epochs=1, verbose=0)
    loss, acc = m.evaluate(x, y, verbose=0, batch_size=32)
    p = m.predict(x)
    assert p.shape == (203, 4)
    ref_loss = float(np.mean(-np.log(p[np.arange(len(y)), y].astype(np.float64))))
    assert abs(loss - ref_loss) < 1e-4 * max(1, ref_loss)
    assert abs(acc - np.mean(p.argmax(1) == y)) < 1e-12
    assert m.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == acc


def test_seed_makes_runs_bit_identical():
    x, y = _data(n=300)
    ws = []
    for _ in range(2):
        fastdl.set_seed(42)
        m = _mlp()
        m.fit(x, y, epochs=2, verbose=0, batch_size=16)
        ws.append(m.get_weights())
    for a, b in zip(*ws):
        np.testing.assert_array_equal(a, b)


def test_fused_softmax_gradient_matches_logits_model():
    # Dense(softmax) + sparse CE trains through the logits path; compare with an
    # explicit from_logits model: same initial weights -> same updated weights.
    x, y = _data(n=64)
    fastdl.set_seed(5)
    a = _mlp()
    b = models.Sequential([layers.Flatten(input_shape=(6, 5)), layers.Dense(16, activation="relu"),
                           layers.Dense(4)])
    b.compile(optimizer=optimizers.SGD(0.001),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    a.compile(optimizer=optimizers.SGD(0.001), loss="sparse_categorical_crossentropy")
    a.layers.pop(2)                  # drop the dropout for an exact comparison
    b.set_weights(a.get_weights())
    a.fit(x, y, epochs=1, shuffle=False, verbose=0)
    b.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def _small_convnet(act="relu", dtype="float32"):
    d = dict(dtype=dtype)
    return models.Sequential([layers.Input(shape=(9, 9, 2), **d),
                              layers.Conv2D(4, 3, activation=act, **d), layers.MaxPooling2D(**d),
                              layers.Conv2D(5, 2, padding="same", activation=act, **d),
                              layers.MaxPooling2D(pool_size=3, strides=2, padding="same", **d),
                              layers.Flatten(**d), layers.Dense(3, activation="softmax", **d)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_pool_fusion_matches_layer_by_layer_backward(dtype):
    # Conv2D(relu) -> MaxPooling2D runs backward as one fused pooling pass; the
    # gradients must equal calling each layer's backward in turn, bit for bit.
    rng = np.random.default_rng(8)
    fastdl.set_seed(3)
    m = _small_convnet(dtype=np.dtype(dtype).name)
    x = rng.standard_normal((6, 9, 9, 2)).astype(dtype)
    y = m(x, training=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_fused = m.backward(dy)
    fused = [g.copy() for g in m.gradients]
    h = dy
    for l in reversed(m.layers):
        h = l.backward(h)
    plain = [g.copy() for g in m.gradients]
    np.testing.assert_array_equal(dx_fused, h)
    assert len(fused) == 6
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)
    # And the fused plan is what the model uses: two pooling layers fused.
    plan = backward_plan([(l, True) for l in m.layers])
    assert len(plan) == len(m.layers) - 2


def test_relu_pool_fusion_only_after_relu():
    # A linear or tanh convolution before the pooling is not fused.
    for act in ("linear", "tanh"):
        m = _small_convnet(act)
        assert len(backward_plan([(l, True) for l in m.layers])) == len(m.layers)
    # The first layer's need_dx=False carries through the fused pair.
    m = _small_convnet()
    x = np.random.default_rng(1).standard_normal((2, 9, 9, 2)).astype(np.float32)
    y = m(x, training=True)
    plan = backward_plan([(l, i > 0) for i, l in enumerate(m.layers)])
    h = np.ones_like(y)
    for bw in plan:
        h = bw(h)
    assert h is None


def test_low_level_loop_matches_finite_differences():
    rng = np.random.default_rng(0)
    m = models.Sequential([layers.Dense(5, activation="tanh"), layers.Dense(3)])
    x = rng.standard_normal((4, 6))
    y = m(x, training=True)                       # builds in float64 (follows x)
    assert y.dtype == np.float64
    r = rng.standard_normal(y.shape)
    dx = m.backward(r)
    grads = [g.copy() for g in m.gradients]
    assert [g.shape for g in grads] == [w.shape for w in m.trainable_weights]
    w = m.trainable_weights[0]
    h = 1e-6
    w[1, 2] += h
    fp = (m(x) * r).sum()
    w[1, 2] -= 2 * h
    fm = (m(x) * r).sum()
    w[1, 2] += h
    assert abs((fp - fm) / (2 * h) - grads[0][1, 2]) < 1e-6
    x[0, 1] += h
    fp = (m(x) * r).sum()
    x[0, 1] -= 2 * h
    fm = (m(x) * r).sum()
    assert abs((fp - fm) / (2 * h) - dx[0, 1]) < 1e-6
    opt = optimizers.SGD(0.1)
    before = w.copy()
    opt.apply_gradients(zip(m.gradients, m.trainable_weights))
    np.testing.assert_allclose(w, before - 0.1 * grads[0])


def test_other_losses_train():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    yr = (x @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)
    for loss in ("mse", "mae"):
        fastdl.set_seed(0)
        m = models.Sequential([layers.Dense(8, activation="relu", input_shape=(3,)), layers.Dense(1)])
        m.compile(optimizers.Adam(0.02), loss, metrics=["mae"])
        h = m.fit(x, yr, epochs=5, verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0]
    yb = (x[:, 0] > 0).astype(np.float32)
    m = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    h = m.fit(x, yb, epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    yc = np.eye(2, dtype=np.float32)[(x[:, 1] > 0).astype(int)]
    m = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    m.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, yc, epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_save_load_round_trip(tmp_path):
    fastdl.set_seed(2)
    x, y = _data(n=128)
    m = _mlp()
    m.fit(x, y, epochs=1, verbose=0)
    for name in ("model.keras", "m.h5", "plain"):
        path = tmp_path / name
        m.save(path)
        assert path.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
        m2 = models.load_model(path)
        np.testing.assert_array_equal(m2.predict(x), m.predict(x))
        assert m2.optimizer.iterations == m.optimizer.iterations
        for a, b in zip(m2.optimizer.get_state(m2.trainable_weights)[1],
                        m.optimizer.get_state(m.trainable_weights)[1]):
            np.testing.assert_array_equal(a, b)
    # training continues identically after loading
    fastdl.set_seed(9)
    m.fit(x, y, epochs=1, verbose=0, shuffle=False)
    fastdl.set_seed(9)
    m2.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    wpath = tmp_path / "w.weights.h5"
    m.save_weights(wpath)
    m3 = _mlp()
    m3.load_weights(wpath)
    np.testing.assert_array_equal(m3.predict(x), m.predict(x))


def test_load_errors(tmp_path):
    m = _mlp()
    path = tmp_path / "m.keras"
    m.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.keras"):
        models.load_model(tmp_path / "trunc.keras")
    (tmp_path / "foreign.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ValueError, match="foreign.h5"):
        models.load_model(tmp_path / "foreign.h5")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="other.npz"):
        models.load_model(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "missing.keras")


def test_bad_inputs_have_helpful_messages():
    x, y = _data(n=50)
    m = models.Sequential([layers.Flatten(input_shape=(6, 5)), layers.Dense(4, activation="softmax")])
    with pytest.raises(ValueError, match="compile"):
        m.fit(x, y, verbose=0)
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with pytest.raises(ValueError, match="same length"):
        m.fit(x, y[:40], verbose=0)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        m.fit(x, np.eye(4)[y], verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        m.fit(x, y + 4, verbose=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 6, 5\)"):
        m.fit(x.reshape(50, 30), y, verbose=0)
    m2 = models.Sequential([layers.Dense(4, activation="softmax", input_shape=(3,))])
    m2.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        m2.fit(np.ones((5, 3)), np.arange(5) % 4, verbose=0)
    with pytest.raises(ValueError, match="known losses"):
        m2.compile("adam", "crossentropyish")
    with pytest.raises(ValueError, match="known optimizers"):
        m2.compile("adamax2", "mse")
    with pytest.raises(ValueError, match="known metrics"):
        m2.compile("adam", "mse", metrics=["acuracy"])


def test_fit_builds_float32_from_float64_data():
    m = models.Sequential([layers.Dense(2, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.fit(np.random.default_rng(0).standard_normal((8, 3)), np.arange(8) % 2, verbose=0)
    assert m.layers[0].kernel.dtype == np.float32


def test_inputs_converted_once_and_lists_accepted():
    m = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    h = m.fit([[1, 2, 3], [4, 5, 6]], [0, 1], epochs=1, verbose=0)
    assert len(h.history["loss"]) == 1
    assert m.predict(np.ones((3, 3), np.float64)).dtype == np.float32


def test_validation_split_takes_last_fraction(monkeypatch):
    x, y = _data(n=100)
    m = _mlp()
    seen = {}
    orig = m._evaluate_data

    def spy(data, steps=None, cbl=None):
        seen["vx"] = data.x
        return orig(data, steps, cbl)
    m._evaluate_data = spy
    m.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
    np.testing.assert_array_equal(seen["vx"], x[75:].astype(np.float32))


def test_verbose_output_one_line_per_epoch(capsys):
    x, y = _data(n=64)
    m = _mlp()
    m.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
    assert out.count("\n") == 4


def test_to_device():
    m = _mlp()
    assert m.to("cpu") is m
    if not fastdl.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            m.to("cuda")
    with pytest.raises(ValueError):
        m.to("tpu")


def test_train_on_batch_and_get_set_weights():
    x, y = _data(n=32)
    m = _mlp()
    loss, acc = m.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1
    w = m.get_weights()
    m.set_weights([a * 0 for a in w])
    assert all(np.all(a == 0) for a in m.get_weights())
    with pytest.raises(ValueError, match="weight arrays"):
        m.set_weights(w[:1])


def test_small_gemms_give_the_same_bits_on_any_thread_count():
    # The seed MLP's GEMM shapes give the same bits on one thread as on two
    # (each element of C is summed by one thread, in one order), so the C++
    # side's serial-or-parallel choice changes speed only.
    from fastdl import ops
    rng = np.random.default_rng(0)
    old = fastdl.get_num_threads()
    try:
        for m_, k, n in ((32, 784, 128), (784, 32, 128), (32, 128, 10), (128, 32, 10)):
            a = rng.standard_normal((m_, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            fastdl.set_num_threads(2)
            par = ops.gemm(a, b)
            fastdl.set_num_threads(1)
            ser = ops.gemm(a, b)
            np.testing.assert_array_equal(par, ser)
    finally:
        fastdl.set_num_threads(old)


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_predict_of_one_batch_equals_batched_and_owns_its_result(kind):
    # predict on at most one batch of one array skips the data adapter: the result is
    # the same as batch by batch, and a later predict does not overwrite it.
    import fastdl as keras
    from fastdl import layers
    rng = np.random.default_rng(3)
    if kind == "sequential":
        m = keras.Sequential([layers.Input((5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    elif kind == "functional":
        i = keras.Input((5,))
        m = keras.Model(i, layers.Dense(3, activation="softmax")(layers.Dense(4)(i)))
    else:
        class M(keras.Model):
            def __init__(self):
                super().__init__()
                self.d = layers.Dense(3)

            def call(self, x):
                return self.d(x)
        m = M()
    a = rng.random((2, 5), dtype=np.float32)
    b = rng.random((3, 5), dtype=np.float32)
    ya = m.predict(a, verbose=0)
    keep = ya.copy()
    yb = m.predict(b, verbose=0)
    np.testing.assert_array_equal(ya, keep)
    assert not np.shares_memory(ya, yb) and not np.shares_memory(ya, a)
    both = m.predict(np.concatenate([a, b]), batch_size=1, verbose=0)
    np.testing.assert_allclose(both, np.concatenate([ya, yb]), rtol=1e-6, atol=1e-7)
    assert m.predict(a[:1].astype(np.float64), verbose=0).dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        m.predict(rng.random((2, 6), dtype=np.float32), verbose=0)


def test_seed_mlp_step_plan_same_bits_as_tape_and_as_one_adam_call_per_weight():
    # The seed MLP at full size (784 -> 128 -> 10, so Adam's 101,770 weights run on two
    # threads where there are two) through fit's step plan, through the tape
    # (train_step overridden), and with Adam updating one weight per call as it did before
    # the multi-tensor update: the same weights, to the bit.
    class ThroughTape(models.Sequential):
        def train_step(self, data):
            return super().train_step(data)

    class OneCallPerWeight(optimizers.Adam):
        def _update_many(self, ps, gs, slots, wds, lr, step):
            return optimizers.Optimizer._update_many(self, ps, gs, slots, wds, lr, step)

    x, y = _data(96, classes=10, shape=(28, 28))
    ws = []
    old = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(2)
        for cls, opt in ((models.Sequential, "adam"), (ThroughTape, "adam"),
                         (models.Sequential, OneCallPerWeight())):
            fastdl.set_seed(11)
            m = cls([layers.Input((28, 28)), layers.Flatten(),
                     layers.Dense(128, activation="relu"), layers.Dropout(0.2),
                     layers.Dense(10, activation="softmax")])
            m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            m.fit(x, y, epochs=2, batch_size=32, verbose=0)
            ws.append(m.get_weights())
    finally:
        fastdl.set_num_threads(old)
    for other in ws[1:]:
        for a, b in zip(ws[0], other):
            np.testing.assert_array_equal(a, b)
