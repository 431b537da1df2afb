"""Sequence layers: Embedding, Masking, masks through models, the recurrent options
(return_state, go_backwards, initial_state, stateful, dropout, recurrent_dropout),
Bidirectional and TimeDistributed; each against a plain NumPy loop, backward against
float64 finite differences. The embedding kernel itself: tests/test_embedding.py."""
import warnings

import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops, utils
import ref_rnn
from helpers import numeric_gradient

CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


# ----------------------------------------------------------------- NumPy reference
def ref_step(cell, xt, hin, states, w):
    """One time step of the cell from the step-by-step references; new states."""
    k, r, b = w
    if cell == "simple_rnn":
        return [ref_rnn.simple_rnn(xt, hin, k, r, b)[:, 0]]
    if cell == "lstm":
        hs, c = ref_rnn.lstm(xt, hin, states[1], k, r, b)
        return [hs[:, 0], c]
    return [ref_rnn.gru(xt, hin, k, r, b)[:, 0]]


def ref_layer(cell, x, w, mask=None, init=None, go_backwards=False, return_sequences=False,
              zero_output=False, dmask=None, rmask=None):
    """Keras' recurrent layer semantics as a plain loop: (output, final states)."""
    n, T = x.shape[:2]
    U = w[1].shape[0]
    if dmask is not None:
        x = x * dmask[:, None, :]
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    nst = 2 if cell == "lstm" else 1
    states = [s.copy() for s in init] if init is not None else \
        [np.zeros((n, U), x.dtype) for _ in range(nst)]
    prev = np.zeros((n, U), x.dtype)
    outs = []
    for t in range(T):
        hin = states[0] * rmask if rmask is not None else states[0]
        new = ref_step(cell, x[:, t:t + 1], hin, states, w)
        if mask is None:
            states, out = new, new[0]
        else:
            m = mask[:, t, None]
            states = [np.where(m, a, b) for a, b in zip(new, states)]
            out = np.where(m, new[0], 0.0 if zero_output else prev)
        prev = out
        outs.append(out)
    seq = np.stack(outs, axis=1)
    return (seq if return_sequences else seq[:, -1]), states


def make_layer(cell, units, x, dtype=np.float64, seed=0, **kw):
    layer = CELLS[cell](units, dtype=dtype, **kw)
    layer(x[:1])   # build
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])
    return layer


def random_mask(rng, n, T, pre=False):
    """Padding masks of random lengths (post- or pre-padded), plus one row masked inside."""
    lens = rng.integers(0, T + 1, n)
    lens[0] = T
    m = np.arange(T)[None, :] < lens[:, None]
    if pre:
        m = m[:, ::-1]
    m = m.copy()
    if n > 1 and T > 2:
        m[1] = rng.random(T) > 0.4
    return m


# ----------------------------------------------------------------- forward against the loop
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("opts", [
    dict(), dict(return_sequences=True), dict(go_backwards=True),
    dict(go_backwards=True, return_sequences=True),
    dict(mask=True), dict(mask=True, return_sequences=True),
    dict(mask="pre", return_sequences=True, go_backwards=True),
    dict(mask=True, zero_output_for_mask=True, return_sequences=True),
    dict(init=True), dict(init=True, mask=True, return_sequences=True),
])
def test_forward_matches_numpy_loop(cell, opts):
    opts = dict(opts)
    rng = np.random.default_rng(5)
    n, T, I, U = 5, 7, 3, 4
    x = rng.standard_normal((n, T, I))
    use_mask, use_init = opts.pop("mask", None), opts.pop("init", False)
    mask = random_mask(rng, n, T, pre=use_mask == "pre") if use_mask else None
    layer = make_layer(cell, U, x, return_state=True, **opts)
    nst = 2 if cell == "lstm" else 1
    init = [rng.standard_normal((n, U)) for _ in range(nst)] if use_init else None
    kw = {}
    if mask is not None:
        kw["mask"] = mask
    if init is not None:
        kw["initial_state"] = init
    got = layer(x, **kw)
    want, wst = ref_layer(cell, x, layer.get_weights() + ([] if layer.use_bias else []), mask=mask,
                          init=init, go_backwards=opts.get("go_backwards", False),
                          return_sequences=opts.get("return_sequences", False),
                          zero_output=opts.get("zero_output_for_mask", False))
    np.testing.assert_allclose(got[0], want, rtol=1e-10, atol=1e-12)
    assert len(got) == 1 + nst
    for a, b in zip(got[1:], wst):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------- backward: finite differences
def _check_grads(layer, x, kw, out_shapes, seed=3, n_states_in=0):
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal(s) for s in out_shapes]

    def loss():
        out = layer(x, **kw)
        out = out if isinstance(out, list) else [out]
        return sum(float((o * g).sum()) for o, g in zip(out, gs))
    out = layer(x, training=True, **kw)
    back = layer.backward(gs if len(gs) > 1 else gs[0])
    dx = back[0] if isinstance(back, list) else back
    grads = [g.copy() for g in layer.gradients]
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for w, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g, numeric_gradient(loss, w), rtol=1e-5, atol=1e-7)
    if n_states_in:
        for s, d in zip(kw["initial_state"], back[1:]):
            np.testing.assert_allclose(d, numeric_gradient(loss, s), rtol=1e-5, atol=1e-7)
    return out


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("opts", [
    dict(go_backwards=True, return_sequences=True),
    dict(mask=True), dict(mask=True, return_sequences=True),
    dict(mask=True, zero_output_for_mask=True, return_sequences=True, go_backwards=True),
    dict(init=True, return_sequences=True), dict(init=True, mask=True),
])
def test_backward_finite_differences(cell, opts):
    opts = dict(opts)
    rng = np.random.default_rng(7)
    n, T, I, U = 3, 5, 2, 3
    x = rng.standard_normal((n, T, I))
    use_mask, use_init = opts.pop("mask", None), opts.pop("init", False)
    layer = make_layer(cell, U, x, return_state=True, **opts)
    nst = 2 if cell == "lstm" else 1
    kw = {}
    if use_mask:
        kw["mask"] = random_mask(rng, n, T)
    if use_init:
        kw["initial_state"] = [rng.standard_normal((n, U)) for _ in range(nst)]
    out_shape = (n, T, U) if opts.get("return_sequences") else (n, U)
    _check_grads(layer, x, kw, [out_shape] + [(n, U)] * nst, n_states_in=nst if use_init else 0)


# ----------------------------------------------------------------- dropout
@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("which", ["dropout", "recurrent_dropout", "both"])
def test_dropout_masks_fixed_over_time(cell, which):
    rng = np.random.default_rng(11)
    n, T, I, U = 6, 5, 4, 5
    x = rng.standard_normal((n, T, I))
    kw = {"dropout": 0.4} if which != "recurrent_dropout" else {}
    if which != "dropout":
        kw["recurrent_dropout"] = 0.3
    layer = make_layer(cell, U, x, return_sequences=True, seed=2, **kw)
    plain = make_layer(cell, U, x, return_sequences=True, seed=2)
    # inference: no dropout at all
    np.testing.assert_allclose(layer(x), plain(x), rtol=1e-12)
    y = layer(x, training=True)
    dmask, rmask = layer._dmask, layer._rmask
    assert (dmask is None) == (which == "recurrent_dropout")
    assert (rmask is None) == (which == "dropout")
    for m, shape, rate in ((dmask, (n, I), 0.4), (rmask, (n, U), 0.3)):
        if m is not None:   # one mask per sequence and feature, scaled by 1 / (1 - rate)
            assert m.shape == shape
            assert set(np.unique(np.round(m, 6))) <= {0.0, round(1 / (1 - rate), 6)}
    want, _ = ref_layer(cell, x, layer.get_weights(), return_sequences=True, dmask=dmask,
                        rmask=rmask)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    # the backward uses the same masks: finite differences with the masks held fixed
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    grads = [a.copy() for a in layer.gradients]

    def loss():
        return float((ref_layer(cell, x, layer.get_weights(), return_sequences=True,
                                dmask=dmask, rmask=rmask)[0] * g).sum())
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for w, gw in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(gw, numeric_gradient(loss, w), rtol=1e-5, atol=1e-7)
    # a new call draws new masks
    layer(x, training=True)
    if dmask is not None:
        assert not np.array_equal(layer._dmask, dmask)


def test_dropout_arguments_validated():
    with pytest.raises(ValueError, match="dropout"):
        layers.LSTM(3, dropout=1.0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        layers.GRU(3, recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match="units"):
        layers.SimpleRNN(0)
    with pytest.raises(ValueError, match="use_cudnn"):
        layers.LSTM(2, use_cudnn="yes")


# ----------------------------------------------------------------- stateful
@pytest.mark.parametrize("cell", list(CELLS))
def test_stateful_carries_states_across_batches(cell):
    rng = np.random.default_rng(4)
    n, T, I, U = 3, 8, 2, 4
    x = rng.standard_normal((n, T, I))
    layer = make_layer(cell, U, x, stateful=True, return_sequences=True)
    full = make_layer(cell, U, x, return_sequences=True)
    want = full(x)
    layer.reset_states()
    a = layer(x[:, :3])
    b = layer(x[:, 3:])
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), want, rtol=1e-10, atol=1e-12)
    layer.reset_states()
    np.testing.assert_allclose(layer(x[:, :3]), want[:, :3], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="batch"):
        layer(x[:2, :3])
    with pytest.raises(AttributeError, match="stateful"):
        full.reset_states()


# ----------------------------------------------------------------- initial_state in models
def test_initial_state_symbolic_and_gradient_flows():
    rng = np.random.default_rng(8)
    n, T, I, U = 4, 5, 3, 6
    x_in = fastdl.Input((T, I))
    h_in, c_in = fastdl.Input((U,)), fastdl.Input((U,))
    lstm = layers.LSTM(U, return_sequences=True, dtype="float64")
    y = lstm(x_in, initial_state=[h_in, c_in])
    out = layers.Dense(1)(y)
    model = models.Model([x_in, h_in, c_in], out)
    x, h0, c0 = rng.standard_normal((n, T, I)), rng.standard_normal((n, U)), rng.standard_normal((n, U))
    got = model([x, h0, c0])
    want, _ = ref_layer("lstm", x.astype(np.float32), [w for w in lstm.get_weights()],
                        init=[h0, c0], return_sequences=True)
    dense = model.layers[-1]
    np.testing.assert_allclose(got, want @ dense.get_weights()[0] + dense.get_weights()[1],
                               rtol=1e-4, atol=1e-5)
    h0t = h0.astype(np.float32)
    with fastdl.GradientTape() as tape:
        tape.watch(h0t)
        loss = ops.sum(model([x.astype(np.float32), h0t, c0.astype(np.float32)]))
    g = tape.gradient(loss, h0t)
    assert g is not None and g.shape == (n, U) and np.abs(g).sum() > 0


# ----------------------------------------------------------------- masks through models
def test_embedding_mask_reaches_lstm_in_sequential():
    rng = np.random.default_rng(9)
    V, D, U = 20, 4, 5
    ids = rng.integers(1, V, (4, 7))
    ids[0, 4:] = 0
    ids[2, 1:] = 0
    model = models.Sequential([fastdl.Input((None,), dtype="int32"),
                               layers.Embedding(V, D, mask_zero=True), layers.Dropout(0.1),
                               layers.LSTM(U)])
    got = model(ids)
    emb, lstm = model.layers[0], model.layers[2]
    x = emb.get_weights()[0][ids]
    want, _ = ref_layer("lstm", x, lstm.get_weights(), mask=ids != 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # padding changes nothing
    longer = np.concatenate([ids, np.zeros((4, 3), ids.dtype)], axis=1)
    np.testing.assert_allclose(model(longer), got, rtol=1e-5, atol=1e-6)


def test_masking_layer_and_functional_model():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    x[0, 3:] = 0.0
    x[1, :2] = 0.0
    inp = fastdl.Input((6, 2))
    m = layers.Masking(0.0)(inp)
    h = layers.GRU(4, return_sequences=True)(m)
    out = layers.TimeDistributed(layers.Dense(2))(h)
    model = models.Model(inp, out)
    got = model(x)
    gru = model.get_layer(index=2) if False else [l for l in model.layers if isinstance(l, layers.GRU)][0]
    td = [l for l in model.layers if isinstance(l, layers.TimeDistributed)][0]
    mask = np.any(x != 0, axis=-1)
    seq, _ = ref_layer("gru", x, gru.get_weights(), mask=mask, return_sequences=True)
    k, b = td.layer.get_weights()
    np.testing.assert_allclose(got, seq @ k + b, rtol=1e-5, atol=1e-6)
    assert layers.Masking(0.0).compute_mask(x).tolist() == mask.tolist()


def test_mask_dropped_with_warning_by_a_layer_without_masking():
    class Plain(fastdl.Layer):
        def call(self, x):
            return x * 2.0
    model = models.Sequential([layers.Embedding(10, 3, mask_zero=True), Plain(),
                               layers.SimpleRNN(2)])
    with pytest.warns(UserWarning, match="does not support masking"):
        model(np.array([[1, 2, 0]]))


@pytest.mark.parametrize("cell", list(CELLS))
def test_masked_model_trains_under_gradient_tape_and_fit(cell):
    rng = np.random.default_rng(12)
    ids = rng.integers(1, 15, (16, 6))
    for i in range(16):
        ids[i, rng.integers(2, 7):] = 0
    y = (ids[:, 0] > 7).astype(np.float32)
    model = models.Sequential([layers.Embedding(15, 4, mask_zero=True),
                               CELLS[cell](6), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with fastdl.GradientTape() as tape:
        p = model(ids, training=True)
        loss = ops.mean(ops.square(p - y[:, None]))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    # the padded positions' embedding row (id 0) gets no gradient: masked steps are skipped
    np.testing.assert_array_equal(grads[0][0], 0.0)
    assert np.abs(grads[0][1:]).sum() > 0
    h = model.fit(ids, y, epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()


# ----------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_two_loops(merge_mode, return_sequences):
    rng = np.random.default_rng(13)
    n, T, I, U = 3, 6, 2, 4
    x = rng.standard_normal((n, T, I))
    mask = random_mask(rng, n, T)
    bi = layers.Bidirectional(layers.LSTM(U, return_sequences=return_sequences, dtype="float64"),
                              merge_mode=merge_mode, dtype="float64")
    bi(x)
    ws = [rng.standard_normal(w.shape) * 0.5 for w in bi.get_weights()]
    bi.set_weights(ws)
    assert [w.shape for w in bi.get_weights()] == [(I, 4 * U), (U, 4 * U), (4 * U,)] * 2
    got = bi(x, mask=mask)
    f, _ = ref_layer("lstm", x, ws[:3], mask=mask, return_sequences=return_sequences,
                     zero_output=return_sequences)
    b, _ = ref_layer("lstm", x, ws[3:], mask=mask, go_backwards=True,
                     return_sequences=return_sequences, zero_output=return_sequences)
    if return_sequences:
        b = b[:, ::-1]
    want = {"concat": lambda: np.concatenate([f, b], -1), "sum": lambda: f + b,
            "mul": lambda: f * b, "ave": lambda: (f + b) / 2, None: lambda: [f, b]}[merge_mode]()
    for a, w in zip(got if merge_mode is None else [got], want if merge_mode is None else [want]):
        np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-12)
    out_shape = bi.compute_output_shape((None, T, I))
    if merge_mode is None:
        assert [tuple(s[1:]) for s in out_shape] == [tuple(w.shape[1:]) for w in want]
    else:
        assert tuple(out_shape[1:]) == want.shape[1:]


def test_bidirectional_gradient_and_return_state():
    rng = np.random.default_rng(14)
    n, T, I, U = 2, 4, 3, 2
    x = rng.standard_normal((n, T, I))
    inp = fastdl.Input((T, I), dtype="float64")
    outs = layers.Bidirectional(layers.GRU(U, return_state=True, dtype="float64"),
                                dtype="float64")(inp)
    assert len(outs) == 3
    model = models.Model(inp, outs[0])
    w0 = [rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()]
    model.set_weights(w0)
    g = rng.standard_normal((n, 2 * U))
    model(x, training=True)
    dx = model.backward(g)
    grads = [a.copy() for a in model.gradients]

    def loss():
        return float((model(x) * g).sum())
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for w, gw in zip(model.trainable_weights, grads):
        np.testing.assert_allclose(gw, numeric_gradient(loss, w), rtol=1e-5, atol=1e-7)


def test_bidirectional_bad_arguments():
    with pytest.raises(ValueError, match="merge_mode"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="recurrent layer"):
        layers.Bidirectional(layers.Dense(2))
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))
    with pytest.raises(ValueError, match="return_sequences"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2, go_backwards=True,
                                                                         return_sequences=True))


# ----------------------------------------------------------------- TimeDistributed
def test_time_distributed_dense_forward_backward():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 5, 4))
    td = layers.TimeDistributed(layers.Dense(2, activation="tanh", dtype="float64"),
                                dtype="float64")
    y = td(x)
    k, b = td.get_weights()
    np.testing.assert_allclose(y, np.tanh(x @ k + b), rtol=1e-12)
    assert td.compute_output_shape((None, 5, 4)) == (None, 5, 2)
    model = models.Sequential([fastdl.Input((5, 4), dtype="float64"), td])
    g = rng.standard_normal(y.shape)
    model(x, training=True)
    dx = model.backward(g)
    grads = [a.copy() for a in model.gradients]

    def loss():
        return float((model(x) * g).sum())
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for w, gw in zip(model.trainable_weights, grads):
        np.testing.assert_allclose(gw, numeric_gradient(loss, w), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="TimeDistributed"):
        layers.TimeDistributed(layers.Dense(2))(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Layer instance"):
        layers.TimeDistributed("dense")


# ----------------------------------------------------------------- config round trip
def test_configs_round_trip():
    for layer in (layers.Embedding(9, 3, mask_zero=True), layers.Masking(-1.0),
                  layers.LSTM(3, return_state=True, go_backwards=True, dropout=0.2),
                  layers.Bidirectional(layers.GRU(2, return_sequences=True), merge_mode="sum"),
                  layers.TimeDistributed(layers.Dense(4))):
        again = layers.deserialize(layers.serialize(layer))
        assert type(again) is type(layer)
        cfg, cfg2 = layer.get_config(), again.get_config()
        cfg.pop("name"), cfg2.pop("name")
        assert cfg == cfg2


# ----------------------------------------------------------------- small programs (keras-io)
def test_program_embedding_bidirectional_lstm_classifier():
    """Padded integer sequences, Embedding(mask_zero=True) + Bidirectional(LSTM) (the
    keras-io IMDB example at a tiny size): the loss drops, and extra padding does not
    change the predictions."""
    fastdl.set_seed(0)
    rng = np.random.default_rng(0)
    V, n = 30, 96
    seqs, labels = [], []
    for _ in range(n):
        length = int(rng.integers(3, 12))
        s = rng.integers(1, V, length)
        labels.append(int((s < V // 2).sum() * 2 > length))   # majority of small ids
        seqs.append(s.tolist())
    x = utils.pad_sequences(seqs, maxlen=12)
    y = np.array(labels, np.float32)
    inputs = fastdl.Input(shape=(None,), dtype="int32")
    h = layers.Embedding(V, 8, mask_zero=True)(inputs)
    h = layers.Bidirectional(layers.LSTM(8))(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = models.Model(inputs, outputs)
    model.compile(optimizer=fastdl.optimizers.Adam(0.02), loss="binary_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    assert hist.history["loss"][-1] < 0.8 * hist.history["loss"][0]
    p = model.predict(x, verbose=0)
    longer = utils.pad_sequences(seqs, maxlen=16)                  # more padding in front
    np.testing.assert_allclose(model.predict(longer, verbose=0), p, rtol=1e-5, atol=1e-6)
    post = utils.pad_sequences(seqs, maxlen=14, padding="post")    # padding behind
    np.testing.assert_allclose(model.predict(post, verbose=0), p, rtol=1e-5, atol=1e-6)


def test_program_sequence_to_sequence_addition():
    """The keras-io addition example at a tiny size: "12+7" -> "19" as characters;
    LSTM encoder, RepeatVector, LSTM decoder with return_sequences, TimeDistributed(Dense)
    softmax. The loss drops."""
    fastdl.set_seed(1)
    rng = np.random.default_rng(1)
    chars = "0123456789+ "
    idx = {c: i for i, c in enumerate(chars)}
    digits, n = 2, 256
    maxlen = digits * 2 + 1
    qs, ans = [], []
    for _ in range(n):
        a, b = (int(rng.integers(0, 10 ** digits)) for _ in range(2))
        qs.append(f"{a}+{b}".ljust(maxlen))
        ans.append(str(a + b).ljust(digits + 1))

    def one_hot(strings, length):
        out = np.zeros((len(strings), length, len(chars)), np.float32)
        for i, s in enumerate(strings):
            for t, c in enumerate(s):
                out[i, t, idx[c]] = 1
        return out
    x, y = one_hot(qs, maxlen), one_hot(ans, digits + 1)
    model = models.Sequential([
        fastdl.Input((maxlen, len(chars))),
        layers.LSTM(32),
        layers.RepeatVector(digits + 1),
        layers.LSTM(32, return_sequences=True),
        layers.TimeDistributed(layers.Dense(len(chars), activation="softmax")),
    ])
    model.compile(loss="categorical_crossentropy", optimizer=fastdl.optimizers.Adam(0.01),
                  metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    assert model.output_shape == (None, digits + 1, len(chars))
    assert hist.history["loss"][-1] < 0.75 * hist.history["loss"][0]


def test_saved_and_loaded_with_masks_and_wrappers(tmp_path):
    rng = np.random.default_rng(16)
    ids = utils.pad_sequences([rng.integers(1, 12, int(k)).tolist() for k in (3, 7, 5)],
                              maxlen=8)
    model = models.Sequential([
        fastdl.Input((8,), dtype="int32"),
        layers.Embedding(12, 4, mask_zero=True),
        layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="ave"),
        layers.TimeDistributed(layers.Dense(2)),
        layers.LSTM(2, go_backwards=True),
    ])
    want = model.predict(ids, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    again = models.load_model(path)
    np.testing.assert_allclose(again.predict(ids, verbose=0), want, rtol=1e-6, atol=1e-7)
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    x[0, 3:] = 0.0
    masked = models.Sequential([fastdl.Input((5, 2)), layers.Masking(0.0),
                                layers.SimpleRNN(3, return_state=False, stateful=False)])
    masked.save(tmp_path / "k.keras")
    np.testing.assert_allclose(models.load_model(tmp_path / "k.keras").predict(x, verbose=0),
                               masked.predict(x, verbose=0), rtol=1e-6)


def test_global_average_pooling_1d_takes_the_mask():
    rng = np.random.default_rng(17)
    ids = np.array([[3, 4, 0, 0], [5, 0, 0, 0], [1, 2, 3, 4]])
    model = models.Sequential([fastdl.Input((4,), dtype="int32"),
                               layers.Embedding(6, 3, mask_zero=True, dtype="float64"),
                               layers.GlobalAveragePooling1D()])
    table = rng.standard_normal((6, 3))
    model.layers[0].set_weights([table])
    m = (ids != 0)[..., None]
    want = (table[ids] * m).sum(1) / m.sum(1)
    np.testing.assert_allclose(model(ids), want, rtol=1e-12)
    g = rng.standard_normal(want.shape)
    with fastdl.GradientTape() as tape:
        out = model(ids)
        loss = ops.sum(out * g)
    d = tape.gradient(loss, model.trainable_weights)[0]
    np.testing.assert_allclose(d, numeric_gradient(
        lambda: float((model(ids) * g).sum()), model.layers[0].embeddings), rtol=1e-6, atol=1e-8)


def test_regularizers_and_constraints_on_embedding_and_recurrent_layers():
    rng = np.random.default_rng(18)
    ids = rng.integers(1, 9, (8, 5))
    model = models.Sequential([
        fastdl.Input((5,), dtype="int32"),
        layers.Embedding(9, 3, embeddings_regularizer="l2", embeddings_constraint="non_neg"),
        layers.LSTM(4, kernel_regularizer="l1", recurrent_constraint="unit_norm",
                    bias_constraint="non_neg"),
        layers.Dense(1)])
    emb, lstm = model.layers[0], model.layers[1]
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(model.losses[0]), 0.01 * (emb.get_weights()[0] ** 2).sum(),
                               rtol=1e-5)
    np.testing.assert_allclose(float(model.losses[1]), 0.01 * np.abs(lstm.get_weights()[0]).sum(),
                               rtol=1e-5)
    model.compile(optimizer=fastdl.optimizers.SGD(0.5), loss="mse")
    model.fit(ids, rng.standard_normal((8, 1)).astype(np.float32), epochs=2, verbose=0)
    assert emb.get_weights()[0].min() >= 0.0
    assert lstm.get_weights()[2].min() >= 0.0
    np.testing.assert_allclose(np.linalg.norm(lstm.get_weights()[1], axis=0), 1.0, rtol=1e-5)
    again = layers.deserialize(layers.serialize(lstm))
    assert again.get_config()["recurrent_constraint"] == lstm.get_config()["recurrent_constraint"]
    assert layers.deserialize(layers.serialize(emb)).get_config()["embeddings_constraint"] == \
        emb.get_config()["embeddings_constraint"]
