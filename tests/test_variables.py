"""Keras' Variable (fastdl.Variable, layer weights) and ops.convert_to_tensor's EagerTensor:
attributes, in-place updates, plain-ndarray arithmetic, kernels on them, and the tape
recording Python operators on them."""
import copy
import pickle

import numpy as np
import pytest

import fastdl
import fastdl as keras
from fastdl import layers, ops
from fastdl._variable import EagerTensor, Variable
from helpers import numeric_gradient


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ construction
def test_variable_from_a_value_keeps_shape_dtype_and_copies():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    v = keras.Variable(a, name="w")
    assert isinstance(v, Variable) and isinstance(v, np.ndarray)
    assert v.shape == (2, 3) and v.dtype == np.float64 and v.name == "w" and v.path == "w"
    assert v.trainable
    a[0, 0] = 100.0                      # the variable holds its own copy
    assert v.numpy()[0, 0] == 0.0
    assert type(v.numpy()) is np.ndarray and type(v.value) is np.ndarray


def test_variable_from_python_values_is_float32_and_default_name():
    v = keras.Variable([[1.0, 2.0]])
    assert v.dtype == np.float32 and v.shape == (1, 2) and v.name == "variable"
    v = keras.Variable(3.0, dtype="float64", trainable=False)
    assert v.dtype == np.float64 and v.shape == () and not v.trainable


def test_variable_from_an_initializer_needs_a_shape():
    fastdl.set_seed(1)
    v = keras.Variable("ones", shape=(2, 2), dtype="float32")
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 2)))
    g = keras.Variable(keras.initializers.GlorotUniform(seed=3), shape=(4, 5))
    assert g.shape == (4, 5) and g.dtype == np.float32 and np.abs(g.numpy()).max() > 0
    with pytest.raises(ValueError, match="shape"):
        keras.Variable("zeros")
    with pytest.raises(ValueError, match="shape"):
        keras.Variable(np.zeros(3), shape=(4,))
    with pytest.raises(ValueError, match="name"):
        keras.Variable(np.zeros(3), name="a/b")
    with pytest.raises(ValueError, match="aggregation"):
        keras.Variable(np.zeros(3), aggregation="bogus")


def test_value_is_live_and_numpy_is_a_copy():
    v = keras.Variable(np.zeros(3, np.float32))
    v.value[1] = 5.0
    assert v[1] == 5.0
    c = v.numpy()
    c[0] = 7.0
    assert v[0] == 0.0
    v[2] = 1.0                           # writing through the Variable writes the value
    assert v.value[2] == 1.0


# ------------------------------------------------------------------ assign
def test_assign_assign_add_assign_sub_in_place():
    v = keras.Variable(np.ones((2, 2), np.float32), name="acc")
    mem = v.value.__array_interface__["data"][0]
    assert v.assign(np.full((2, 2), 3.0)) is v
    np.testing.assert_array_equal(v.numpy(), np.full((2, 2), 3.0))
    assert v.assign_add(np.ones((2, 2))) is v
    assert v.assign_add(1.0) is v                       # broadcasting
    np.testing.assert_array_equal(v.numpy(), np.full((2, 2), 5.0))
    assert v.assign_sub(np.array([1.0, 2.0])) is v
    np.testing.assert_array_equal(v.numpy(), [[4.0, 3.0], [4.0, 3.0]])
    assert v.dtype == np.float32 and v.value.__array_interface__["data"][0] == mem
    with pytest.raises(ValueError, match="acc.*shape"):
        v.assign(np.zeros(3))


def test_assign_takes_tensors_and_variables():
    v = keras.Variable(np.zeros(2, np.float32))
    w = keras.Variable(np.array([1.0, 2.0], np.float32))
    v.assign(w)
    v.assign_add(ops.convert_to_tensor(np.array([1.0, 1.0], np.float32)))
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0])


# ------------------------------------------------------------------ plain arithmetic
def test_numpy_arithmetic_gives_plain_arrays():
    v = keras.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = np.ones((2, 3), np.float32)
    results = [v * 3, 3 * v, v + v, a - v, v / 2, v ** 2, -v, abs(v), v @ a.T, a.T @ v[:, :1],
               v[0], v[:, 1:], v.T, v.reshape(3, 2), v.reshape(-1), v.astype(np.float64),
               v.copy(), v.ravel(), v.flatten(), v.transpose(), v.squeeze(), v.view(),
               np.exp(v), np.sum(v, axis=0), np.zeros_like(v), np.concatenate([v, v]),
               np.copy(v), np.asarray(v), np.maximum(v, 1.0), np.where(v > 1, v, 0.0),
               v.swapaxes(0, 1)]
    for r in results:
        assert type(r) is np.ndarray, type(r)
    assert type(v.sum()) is np.float32 and float(v.sum()) == 15.0
    assert float(v.mean()) == 2.5
    np.testing.assert_array_equal(v * 3, np.arange(6).reshape(2, 3) * 3)
    np.testing.assert_array_equal(v.swapaxes(0, 1), np.arange(6).reshape(2, 3).T)
    assert (v > 2).dtype == bool and type(v > 2) is np.ndarray


def test_in_place_operators_keep_the_variable():
    v = keras.Variable(np.ones(3, np.float32))
    w = v
    v += 1.0
    v *= 2.0
    assert v is w and isinstance(v, Variable)
    np.testing.assert_array_equal(v.numpy(), [4.0, 4.0, 4.0])
    np.add(v, 1.0, out=v)
    np.testing.assert_array_equal(v.value, [5.0, 5.0, 5.0])


def test_pickle_and_deepcopy_give_plain_arrays_of_the_value():
    v = keras.Variable(np.arange(3.0))
    for c in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v), copy.copy(v)):
        assert type(c) is np.ndarray
        np.testing.assert_array_equal(c, [0.0, 1.0, 2.0])


def test_kernels_take_variables_without_copies():
    r = rng(1)
    a = r.standard_normal((5, 7)).astype(np.float32)
    b = r.standard_normal((7, 3)).astype(np.float32)
    va, vb = keras.Variable(a), keras.Variable(b)
    np.testing.assert_allclose(ops.gemm(va, vb), a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.matmul(va, vb), a @ b, rtol=1e-5, atol=1e-5)
    out = keras.Variable(np.zeros((5, 3), np.float32))
    ops.gemm(va, vb, out=out)           # a kernel writes into a Variable in place
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ layer weights
def test_layer_weights_are_variables_with_paths():
    layer = layers.Dense(3, name="dense_var_test")
    layer.build((None, 4))
    assert all(isinstance(w, Variable) for w in layer.weights)
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert [w.path for w in layer.weights] == ["dense_var_test/kernel", "dense_var_test/bias"]
    assert layer.kernel is layer.weights[0] and layer.kernel.dtype == np.float32

    class Custom(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")
            self.s = self.add_weight(shape=(), initializer="zeros", name="count",
                                     trainable=False)

        def call(self, x):
            return x * self.w

    c = Custom(name="custom_var")
    c(np.ones((2, 3), np.float32))
    assert [w.path for w in c.weights] == ["custom_var/weight_0", "custom_var/count"]
    assert c.w.trainable and not c.s.trainable


def test_trainable_flags_of_variables_and_layers():
    model = keras.Sequential([layers.Input((3,)), layers.Dense(2), layers.Dense(1)])
    d0 = model.layers[0]
    assert len(model.trainable_weights) == 4
    d0.kernel.trainable = False
    assert not d0.kernel.trainable
    assert len(model.trainable_weights) == 3 and len(model.non_trainable_weights) == 1
    assert d0.kernel in [w for w in model.non_trainable_weights]
    d0.kernel.trainable = True
    assert len(model.trainable_weights) == 4
    d0.trainable = False               # a frozen layer's variables read as not trainable
    assert not d0.kernel.trainable and not d0.bias.trainable
    assert len(model.trainable_weights) == 2
    d0.trainable = True
    assert d0.kernel.trainable


def test_set_weights_and_optimizer_update_the_variables_in_place():
    fastdl.set_seed(0)
    model = keras.Sequential([layers.Input((4,)), layers.Dense(3, activation="relu"),
                              layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    ws = model.weights
    ids = [id(w) for w in ws]
    before = [w.numpy() for w in ws]
    x = rng(2).standard_normal((16, 4)).astype(np.float32)
    y = rng(3).standard_normal((16, 2)).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert [id(w) for w in model.weights] == ids
    assert all(isinstance(w, Variable) for w in model.weights)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights))
    model.set_weights(before)
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(w.numpy(), b)


def test_fit_trains_the_same_with_variables_as_with_plain_arrays():
    # the fused step plan on Variables gives, to the bit, what the kernels give on plain
    # arrays of the same values: one step by hand against one step of fit
    fastdl.set_seed(4)
    model = keras.Sequential([layers.Input((5,)), layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = rng(5).standard_normal((4, 5)).astype(np.float32)
    y = rng(6).standard_normal((4, 3)).astype(np.float32)
    k, b = (w.numpy().astype(np.float64) for w in model.weights)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    pred = x.astype(np.float64) @ k + b
    d = 2 * (pred - y) / pred.size
    np.testing.assert_allclose(model.weights[0].numpy(), k - 0.1 * x.T @ d, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model.weights[1].numpy(), b - 0.1 * d.sum(0), rtol=1e-5,
                               atol=1e-6)


# ------------------------------------------------------------------ under the tape
def test_python_operators_on_a_trainable_variable_are_recorded():
    w = keras.Variable(rng(7).standard_normal((3, 2)))
    x = rng(8).standard_normal((2, 3))
    with keras.GradientTape() as tape:
        terms = [ops.sum(w ** 2), ops.sum(w * 3), ops.sum(-w), ops.sum(x @ w), ops.sum(w[1]),
                 ops.sum(w.T * 2), w.sum(), ops.sum(2.0 / (w * w + 1)), ops.sum(abs(w)),
                 ops.sum(np.exp(w)), ops.sum(w.reshape(6)), w.mean()]
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
    g = tape.gradient(loss, w)
    wv = w.numpy()
    ref = 2 * wv + 3 - 1 + x.sum(0)[:, None] + np.array([0, 1, 0])[:, None] + 2 + 1 \
        - 4 * wv / (wv * wv + 1) ** 2 + np.sign(wv) + np.exp(wv) + 1 + 1 / 6
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-10)


def test_variable_gradients_match_finite_differences_float64():
    w = keras.Variable(rng(9).standard_normal((2, 3)))
    x = rng(10).standard_normal((4, 2))

    def f():
        return float(np.sum(np.tanh(x @ w.value) ** 2) + np.sum(w.value ** 3))
    with keras.GradientTape() as tape:
        loss = ops.sum(ops.tanh(x @ w) ** 2) + ops.sum(w ** 3)
    g = np.asarray(tape.gradient(loss, w))
    np.testing.assert_allclose(g, numeric_gradient(f, w.value), rtol=1e-6, atol=1e-8)


def test_non_trainable_variables_are_constants_unless_watched():
    v = keras.Variable(np.array([1.0, 2.0]), trainable=False)
    with keras.GradientTape() as tape:
        y = ops.sum(v * v)
    assert type(y) is not fastdl._tape.Tensor or tape.gradient(y, v) is None
    with keras.GradientTape() as tape:
        tape.watch(v)
        y = ops.sum(v * v)
    np.testing.assert_allclose(np.asarray(tape.gradient(y, v)), [2.0, 4.0])
    with keras.GradientTape(watch_accessed_variables=False) as tape:
        w = keras.Variable(np.array([1.0]))
        assert type(w * 2) is np.ndarray


def test_untraceable_numpy_on_a_followed_variable_raises_naming_it():
    w = keras.Variable(np.ones((2, 2)))
    with keras.GradientTape():
        with pytest.raises(TypeError, match="linalg.norm|norm"):
            np.linalg.norm(w)
        with pytest.raises(TypeError, match="cumsum"):
            np.cumsum(w)
        with pytest.raises(TypeError, match="maximum.reduce|reduce"):
            np.maximum.reduce(w)
    assert float(np.linalg.norm(w)) == pytest.approx(2.0)   # outside the tape: plain NumPy


def test_l2_penalty_on_layer_weights_through_operators():
    fastdl.set_seed(2)
    layer = layers.Dense(3)
    x = rng(11).standard_normal((5, 4)).astype(np.float32)
    layer(x)
    with keras.GradientTape() as tape:
        loss = ops.sum(layer(x)) + 0.5 * sum(ops.sum(w ** 2) for w in layer.trainable_weights)
    gk, gb = tape.gradient(loss, layer.trainable_weights)
    np.testing.assert_allclose(np.asarray(gk), np.tile(x.sum(0)[:, None], (1, 3)) + layer.kernel,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gb), 5.0 + layer.bias, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ convert_to_tensor
def test_convert_to_tensor_gives_an_eager_tensor_recorded_once_watched():
    x = ops.convert_to_tensor(np.array([1.0, 2.0, 3.0]))
    assert isinstance(x, EagerTensor) and isinstance(x, np.ndarray)
    assert type(x * 2) is np.ndarray               # unwatched: plain arithmetic
    with keras.GradientTape() as tape:
        assert type(x * x) is np.ndarray           # not watched yet: a constant
        tape.watch(x)
        y = ops.sum(x ** 3) + x[0] * 2
    np.testing.assert_allclose(np.asarray(tape.gradient(y, x)), [5.0, 12.0, 27.0])
    assert ops.convert_to_tensor(x) is x
    v = keras.Variable(np.ones(2))
    assert ops.convert_to_tensor(v) is v
    assert ops.convert_to_tensor(v, dtype="float32").dtype == np.float32
    assert ops.convert_to_tensor(2.0).dtype == np.float32


def test_convert_to_tensor_of_a_watched_array_stays_traced():
    a = np.array([1.0, -2.0])
    with keras.GradientTape() as tape:
        tape.watch(a)
        y = ops.sum(ops.convert_to_tensor(a) * 3)
    np.testing.assert_allclose(np.asarray(tape.gradient(y, a)), [3.0, 3.0])


def test_variables_as_inputs_of_custom_layers_and_models():
    class Scale(keras.layers.Layer):
        def build(self, s):
            self.k = self.add_weight(shape=(s[-1],), initializer="ones", dtype="float64")

        def call(self, x):
            return x * self.k

    layer = Scale()
    x = keras.Variable(np.array([[1.0, 2.0]]))
    out = layer(x)
    assert type(out) is np.ndarray
    with keras.GradientTape() as tape:
        y = ops.sum(layer(x) ** 2)
    gk, gx = tape.gradient(y, [layer.k, x])
    np.testing.assert_allclose(np.asarray(gk), [2.0, 8.0])
    np.testing.assert_allclose(np.asarray(gx), [[2.0, 4.0]])


def test_apply_gradients_inside_a_tape_is_not_recorded():
    for opt in (keras.optimizers.SGD(0.5), keras.optimizers.Adam(0.1, use_ema=True,
                                                                 clipnorm=1.0)):
        w = keras.Variable(np.array([1.0, 2.0], np.float32))
        with keras.GradientTape() as tape:
            loss = ops.sum(w * w)
            g = tape.gradient(loss, w)
            opt.apply_gradients([(g, w)])
            assert isinstance(w, Variable)
        assert np.all(w.numpy() < [1.0, 2.0])


def test_builtin_layer_numpy_on_its_own_weights_under_a_tape():
    # PReLU computes with NumPy on its alpha inside its fused call: that is not a traced
    # use of the Variable, and the layer's own backward gives alpha's gradient
    layer = layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))
    x = np.array([[-2.0, 3.0]], np.float32)
    with keras.GradientTape() as tape:
        y = ops.sum(layer(x))
    (g,) = tape.gradient(y, layer.trainable_weights)
    np.testing.assert_allclose(np.asarray(g), [-2.0, 0.0])


def test_kernels_still_refuse_device_array_subclasses_after_variables():
    # the CPU module remembers the last host subclass it took (the Variable): an ndarray
    # subclass exposing __cuda_array_interface__ is still refused, whatever came before
    class FakeDevice(np.ndarray):
        @property
        def __cuda_array_interface__(self):
            return {}

    a = np.ones((2, 2), np.float32)
    v = keras.Variable(a)
    e = ops.convert_to_tensor(a)
    for _ in range(2):
        np.testing.assert_array_equal(ops.gemm(a, v), a @ a)
        np.testing.assert_array_equal(ops.gemm(a, e), a @ a)
        with pytest.raises(TypeError, match="GPU array"):
            ops.gemm(a, a.view(FakeDevice))


def test_weights_held_in_a_list_are_traced_through_their_operators():
    class TwoStep(keras.layers.Layer):
        def build(self, s):
            self.ws = [self.add_weight(shape=(s[-1], s[-1]), initializer="ones",
                                       dtype="float64", name=f"w{i}") for i in range(2)]

        def call(self, x):
            for w in self.ws:
                x = x @ w * 0.5
            return x

    layer = TwoStep()
    x = rng(12).standard_normal((3, 2))
    layer(x)
    with keras.GradientTape() as tape:
        y = ops.sum(layer(x) ** 2)
    grads = tape.gradient(y, layer.trainable_weights)
    for w, g in zip(layer.trainable_weights, grads):
        def f():
            h = x
            for v in layer.ws:
                h = h @ v.value * 0.5
            return float(np.sum(h ** 2))
        np.testing.assert_allclose(np.asarray(g), numeric_gradient(f, w.value), rtol=1e-6)


def test_shared_builtin_layer_untracked_call_keeps_the_recorded_calls_state():
    # a built-in layer called on a followed input, then on a constant, in one recording:
    # the second (unrecorded) call must not overwrite what the first keeps for backward
    fastdl.set_seed(3)
    layer = layers.Dense(2, use_bias=False, trainable=False)
    a = rng(13).standard_normal((3, 4)).astype(np.float32)
    c = rng(14).standard_normal((3, 4)).astype(np.float32)
    layer(a)
    with keras.GradientTape() as tape:
        tape.watch(a)
        y = layer(a)
        layer(c)
        loss = ops.sum(y * y)
    g = np.asarray(tape.gradient(loss, a))
    k = layer.kernel.numpy()
    np.testing.assert_allclose(g, 2 * (a @ k) @ k.T, rtol=1e-5, atol=1e-6)
