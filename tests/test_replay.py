"""Capture and replay of traced layer calls (fastdl/_replay.py) and layers written with ops
in Sequential's fused step plan.

A replayed call must give what the op-by-op call gives, to the bit: the outputs, and the
gradients of the inputs and weights. Calls a program cannot repeat must never be replayed.
"""
import numpy as np
import pytest

import fastdl
from fastdl import _replay, _tape, layers as L, models, ops

RNG = np.random.default_rng(0)


def _batches(shape, n=5, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


_ACTS = {"relu": ops.relu, "softmax": ops.softmax, "sigmoid": ops.sigmoid, None: lambda v: v}


class DenseOps(L.Layer):
    """Dense written with ops (the subclassing guide's Linear with an activation)."""

    def __init__(self, units, activation=None, **kw):
        super().__init__(**kw)
        self.units = units
        self.activation = activation

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], self.units), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

    def call(self, inputs):
        return _ACTS[self.activation](ops.matmul(inputs, self.w) + self.b)


class Mixed(L.Layer):
    """Broadcasting, reductions over each axis, a weight used twice, a scalar weight, a
    non-trainable weight read, slicing and concatenation."""

    def build(self, s):
        d = s[-1]
        self.w = self.add_weight(shape=(d, d), initializer="glorot_uniform")
        self.s = self.add_weight(shape=(), initializer="ones")
        self.c = self.add_weight(shape=(d,), initializer="random_normal", trainable=False)

    def call(self, x):
        h = ops.tanh(x @ self.w @ ops.transpose(self.w)) * self.s + self.c
        m0 = ops.mean(h, axis=0, keepdims=True)
        m1 = ops.sum(h * h, axis=-1, keepdims=True)
        return ops.concatenate([h - m0, h[:, :2] / (1.0 + m1)], axis=-1) ** 2


class TwoOut(L.Layer):
    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 3), initializer="glorot_uniform")

    def call(self, x):
        z = x @ self.w
        return [ops.exp(z * 0.1), ops.sum(z, axis=-1)]


def _grads(layer, x, eager):
    """Outputs, d(weighted sum of outputs)/d(x, trainable weights) under a tape."""
    ctx = _replay.eager() if eager else _nullctx()
    with ctx:
        with fastdl.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            outs = out if isinstance(out, list) else [out]
            loss = None
            for i, o in enumerate(outs):
                t = ops.sum(o * (1.0 + 0.5 * i))
                loss = t if loss is None else loss + t
        g = tape.gradient(loss, [x] + layer.trainable_weights)
    return [_tape.value(o) for o in outs], g


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _status(layer):
    progs = layer.__dict__.get("_programs") or {}
    return [p.status if p else False for p in progs.values()]


@pytest.mark.parametrize("make,shape", [
    (lambda: DenseOps(7, "relu"), (5, 11)),
    (lambda: DenseOps(3, "softmax"), (4, 13)),
    (lambda: DenseOps(1, "sigmoid"), (1, 2)),
    (lambda: Mixed(), (6, 5)),
    (lambda: TwoOut(), (3, 4)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_replay_matches_the_op_by_op_call_to_the_bit(make, shape, dtype):
    fastdl.utils.set_random_seed(3)
    layer = make()
    layer.build((None,) + shape[1:])
    if dtype == np.float64:
        layer.set_weights([w.astype(np.float64) for w in layer.get_weights()])
        layer.dtype = np.dtype(np.float64)
    for i, x in enumerate(_batches(shape, 5, dtype=dtype)):
        out_r, g_r = _grads(layer, x, eager=False)
        out_e, g_e = _grads(layer, x, eager=True)
        for a, b in zip(out_r, out_e):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        for a, b in zip(g_r, g_e):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype and np.array_equal(a, b), f"call {i}"
    # captured, checked and replayed: one signature, checked
    assert _status(layer) == [_replay._CHECKED]


def test_a_replayed_call_is_one_tape_node_and_keeps_the_softmax_marked():
    layer = DenseOps(4, "softmax")
    x = _batches((3, 5), 3)
    for b in x[:2]:
        with fastdl.GradientTape():
            layer(b)
    with fastdl.GradientTape():
        out = layer(x[2])
    # the softmax on top of one node for matmul + add: a cross-entropy fuses with it
    assert out.node.logits[0] == "softmax"
    z = out.node.logits[1]
    assert z.node.name == layer.name and all(p is None or p.node is None
                                             for p in z.node.parents)


def test_float64_replayed_gradient_matches_finite_differences():
    layer = Mixed()
    layer.build((None, 4))
    layer.set_weights([w.astype(np.float64) for w in layer.get_weights()])
    layer.dtype = np.dtype(np.float64)
    xs = _batches((3, 4), 3, dtype=np.float64)
    for x in xs:
        _grads(layer, x, eager=False)
    assert _status(layer) == [_replay._CHECKED]
    x = xs[-1]
    _, g = _grads(layer, x, eager=False)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        fp = sum(float(np.sum(o * (1 + 0.5 * k))) for k, o in enumerate(_grads(layer, xp, True)[0]))
        fm = sum(float(np.sum(o * (1 + 0.5 * k))) for k, o in enumerate(_grads(layer, xm, True)[0]))
        num[i] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(g[0], num, rtol=1e-6, atol=1e-8)


class Branchy(L.Layer):
    """Python control flow on a traced value: never replayed."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        if float(ops.sum(x)) > 0:
            return x @ self.w
        return -(x @ self.w)


class Compare(L.Layer):
    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        y = x @ self.w
        return ops.where(y > 0, y, 0.1 * y)


class Noisy(L.Layer):
    """A random draw inside call: a constant for the tape; a program would freeze it."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        return x @ self.w + fastdl.random.normal((2,))


class Counting(L.Layer):
    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")
        self.n = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        self.n.assign_add(1.0)
        return x @ self.w


class Penalty(L.Layer):
    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        y = x @ self.w
        self.add_loss(ops.mean(y * y))
        return y


class Frozen(L.Layer):
    """A data-dependent array computed outside the tape (stop_gradient)."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        y = x @ self.w
        return y - ops.stop_gradient(ops.mean(y))


class NumpyOnInput(L.Layer):
    """NumPy and an op without a gradient on the raw input batch: allowed (the input is
    not followed), but what they compute is data a program would freeze."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

    def call(self, x):
        k = ops.argmax(x, axis=-1)
        return ops.matmul(x - np.asarray(x).mean(axis=0), self.w) * (1.0 + ops.cast(k[:, None], "float32"))


@pytest.mark.parametrize("cls", [Branchy, Compare, Noisy, Counting, Penalty, Frozen,
                                 NumpyOnInput])
def test_calls_a_program_cannot_repeat_run_op_by_op(cls):
    fastdl.utils.set_random_seed(0)
    layer = cls()
    xs = _batches((4, 3), 6, seed=1)
    xs[3] = -np.abs(xs[3])   # (Branchy: the other branch)
    for x in xs:
        with fastdl.GradientTape() as tape:
            y = layer(x)
            loss = ops.sum(y * y) + (sum(layer.losses) if layer.losses else 0.0)
        g = tape.gradient(loss, layer.trainable_weights)
        assert g[0] is not None and np.all(np.isfinite(g[0]))
    assert not any(s == _replay._CHECKED for s in _status(layer))
    if cls is Counting:
        assert float(layer.n.numpy()) == len(xs)
    if cls is Penalty:
        assert len(layer.losses) == 1


def test_branchy_layer_follows_its_branch_every_call():
    layer = Branchy()
    x = np.ones((2, 3), np.float32)
    for sign in [1, 1, 1, -1, 1, -1]:
        with fastdl.GradientTape() as tape:
            y = layer(sign * x)
            total = ops.sum(y)
        assert np.all(_tape.value(y) == 3.0)   # both branches give +3 for their input
        g = tape.gradient(total, layer.w)
        np.testing.assert_array_equal(g, np.full((3, 2), 2.0, np.float32))


def test_a_changed_setting_is_captured_again():
    class Scaled(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.scale = 1.0

        def build(self, s):
            self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")

        def call(self, x):
            return (x @ self.w) * self.scale

    layer = Scaled()
    x = np.ones((1, 3), np.float32)
    for _ in range(3):
        with fastdl.GradientTape():
            y = layer(x)
    assert np.all(_tape.value(y) == 3.0)
    layer.scale = 2.0
    for _ in range(3):
        with fastdl.GradientTape():
            y = layer(x)
    assert np.all(_tape.value(y) == 6.0)
    assert _status(layer) == [_replay._CHECKED, _replay._CHECKED]


def test_programs_per_layer_are_bounded():
    class Stepping(L.Layer):
        def build(self, s):
            self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")
            self.calls = 0

        def call(self, x):
            self.calls += 1          # a setting changed by every call
            return x @ self.w * float(self.calls)

    layer = Stepping()
    x = np.ones((1, 3), np.float32)
    for i in range(1, 3 * _replay.MAX_PROGRAMS):
        with fastdl.GradientTape():
            y = layer(x)
        assert np.all(_tape.value(y) == 3.0 * i)
    assert len(layer._programs) <= _replay.MAX_PROGRAMS


def _mlp(dense, seed=0):
    fastdl.utils.set_random_seed(seed)
    return models.Sequential([L.Input((6, 5)), L.Flatten(), dense(16, activation="relu"),
                              L.Dropout(0.2), dense(4, activation="softmax")])


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6, 5)).astype(np.float32)
    y = (x.reshape(n, -1)[:, :4].argmax(axis=1)).astype(np.int64)
    return x, y


def test_custom_layers_join_the_step_plan_and_train_as_on_the_tape():
    x, y = _data()
    results = []
    for eager in (False, True):
        m = _mlp(DenseOps, seed=1)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=eager)
        from fastdl.trainers import data_adapter
        plannable = m._plannable(data_adapter.adapt(x, y, None, 16, True, "fit"))
        assert plannable is (not eager)
        h = m.fit(x, y, batch_size=16, epochs=3, verbose=0)
        results.append((h.history, m.get_weights()))
        progs = [l.__dict__.get("_programs") for l in m.layers]
        if eager:   # run_eagerly: nothing captured
            assert not any(progs)
        else:
            assert _status(m.layers[1]) and all(s == _replay._CHECKED for s in _status(m.layers[1]))
    (h_plan, w_plan), (h_tape, w_tape) = results
    # the same operations but the loss: the plan's fused kernel on the logits, the tape's
    # cross-entropy from log-softmax; they differ in the last bits only
    for a, b in zip(w_plan, w_tape):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_plan["loss"], h_tape["loss"], rtol=1e-5)
    assert h_plan["loss"][-1] < h_plan["loss"][0]


def test_plan_with_a_custom_first_layer_that_reads_its_input_with_numpy():
    class Centered(L.Layer):
        def build(self, s):
            self.w = self.add_weight(shape=(s[-1], 3), initializer="glorot_uniform")

        def call(self, x):
            return ops.matmul(x - np.asarray(x).mean(axis=0), self.w)

    x, y = _data(48)
    m = models.Sequential([L.Input((30,)), Centered(), L.Dense(4, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = m.get_weights()
    m.fit(x.reshape(48, 30), y, batch_size=16, epochs=2, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def test_add_loss_layers_train_through_the_tape_with_their_loss():
    x, y = _data(32)
    m = models.Sequential([L.Input((30,)), Penalty(), L.Dense(4, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    from fastdl.trainers import data_adapter
    assert not m._plannable(data_adapter.adapt(x.reshape(32, 30), y, None, 32, False, "fit"))
    h = m.fit(x.reshape(32, 30), y, batch_size=32, epochs=1, verbose=0, shuffle=False)
    ce = m.evaluate(x.reshape(32, 30), y, verbose=0)
    assert h.history["loss"][0] > 0


def test_low_level_loop_with_a_replayed_layer():
    """model(x, training=True) + model.backward(dy) outside a tape: the plan's route."""
    x, _ = _data(8)
    layer = DenseOps(5, "relu")
    ref = DenseOps(5, "relu")
    xb = x.reshape(8, 30)
    layer.build((None, 30))
    ref.build((None, 30))
    ref.set_weights(layer.get_weights())
    for i in range(4):
        dy = np.random.default_rng(i).standard_normal((8, 5)).astype(np.float32)
        out = layer._plan_call(xb, True, True)
        dx = layer.backward(dy, True)
        with _replay.eager():
            out_r = ref(xb, training=True)
            dx_r = ref.backward(dy)
        np.testing.assert_array_equal(out, out_r)
        np.testing.assert_array_equal(dx, dx_r)
        for a, b in zip(layer.gradients, ref.gradients):
            np.testing.assert_array_equal(a, b)
    assert _status(layer) == [_replay._CHECKED]


def _program(layer):
    progs = [p for p in layer._programs.values() if p]
    assert len(progs) == 1
    return progs[0]


def _run(layer, shape, calls=4, seed=0):
    for x in _batches(shape, calls, seed=seed):
        _grads(layer, x, eager=False)


def test_matmul_bias_relu_replays_as_one_linear_step():
    layer = DenseOps(6, "relu")
    _run(layer, (5, 7))
    prog = _program(layer)
    assert prog.status == _replay._CHECKED
    assert [s.name for s in prog.steps] == ["linear"]
    assert [s.name for s in prog.plain] == ["matmul", "add", "relu"]


class SharedProduct(L.Layer):
    """x @ w used twice: the product is not fused away."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 3), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(3,), initializer="ones")

    def call(self, x):
        y = x @ self.w
        return ops.relu(y + self.b) * y


class ConstantBias(L.Layer):
    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 3), initializer="glorot_uniform")

    def call(self, x):
        return ops.relu(x @ self.w + np.ones(3, np.float32))


@pytest.mark.parametrize("cls", [SharedProduct, ConstantBias])
def test_products_that_are_not_a_layer_bias_stay_as_captured(cls):
    layer = cls()
    _run(layer, (4, 5))
    prog = _program(layer)
    assert prog.status == _replay._CHECKED and prog.plain is None
    assert "linear" not in [s.name for s in prog.steps]


def test_a_fused_step_that_does_not_match_falls_back_to_the_captured_steps(monkeypatch):
    real = fastdl.ops.linear

    def off_by_one_ulp(*a, **kw):
        y = real(*a, **kw)
        return np.nextafter(y, np.inf, dtype=y.dtype)
    monkeypatch.setattr(fastdl.ops, "linear", off_by_one_ulp)
    layer = DenseOps(4, "relu")
    xs = _batches((3, 5), 4)
    for x in xs:
        out_r, g_r = _grads(layer, x, eager=False)
        out_e, g_e = _grads(layer, x, eager=True)
        assert all(np.array_equal(a, b) for a, b in zip(out_r, out_e))
        assert all(np.array_equal(a, b) for a, b in zip(g_r, g_e))
    prog = _program(layer)
    assert prog.status == _replay._CHECKED and prog.plain is None
    assert [s.name for s in prog.steps] == ["matmul", "add", "relu"]


def test_custom_layers_join_the_functional_step_plan():
    x, y = _data()
    results = []
    for eager in (False, True):
        fastdl.utils.set_random_seed(2)
        i = fastdl.Input((6, 5))
        h = L.Flatten()(i)
        a = DenseOps(16, "relu")(h)
        b = L.Dense(16, activation="relu")(h)
        o = DenseOps(4, "softmax")(L.Add()([a, b]))
        m = fastdl.Model(i, o)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=eager)
        from fastdl.trainers import data_adapter
        assert m._plannable(data_adapter.adapt(x, y, None, 16, True, "fit")) is (not eager)
        h = m.fit(x, y, batch_size=16, epochs=3, verbose=0)
        results.append((h.history["loss"], m.get_weights()))
    (l_plan, w_plan), (l_tape, w_tape) = results
    for p, t in zip(w_plan, w_tape):
        np.testing.assert_allclose(p, t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(l_plan, l_tape, rtol=1e-5)
    assert l_plan[-1] < l_plan[0]


class FrozenScale(L.Layer):
    """A weight the tape does not follow, used alone before it meets the input."""

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], 2), initializer="ones")
        self.scale = self.add_weight(shape=(2,), initializer="ones", trainable=False)

    def call(self, x):
        return (x @ self.w) * (self.scale * 2.0 + 1.0)


def test_weights_the_tape_does_not_follow_are_read_at_each_replay():
    layer = FrozenScale()
    x = np.ones((1, 3), np.float32)
    for _ in range(3):
        with fastdl.GradientTape():
            y = layer(x)
    np.testing.assert_array_equal(_tape.value(y), [[9.0, 9.0]])
    layer.set_weights([layer.get_weights()[0], np.full(2, 2.0, np.float32)])
    for _ in range(3):
        with fastdl.GradientTape():
            y = layer(x)
        np.testing.assert_array_equal(_tape.value(y), [[15.0, 15.0]])
    # the frozen scale's product is a step of the program, not a constant
    prog = [p for p in layer._programs.values() if p][-1]
    assert prog.status == _replay._CHECKED and len(prog.steps) >= 3
    # and in place, as an optimizer would write it, between replays
    layer.scale.value[...] = 0.0
    with fastdl.GradientTape():
        y = layer(x)
    np.testing.assert_array_equal(_tape.value(y), [[3.0, 3.0]])


def test_unfreezing_a_layer_trains_the_weight_through_its_program():
    layer = FrozenScale()
    x = np.ones((2, 3), np.float32)
    for _ in range(3):
        with fastdl.GradientTape() as t:
            s = ops.sum(layer(x))
        assert t.gradient(s, layer.scale) is None
    layer.scale.trainable = True
    for _ in range(3):
        with fastdl.GradientTape() as t:
            s = ops.sum(layer(x))
        np.testing.assert_array_equal(t.gradient(s, layer.scale), [12.0, 12.0])
