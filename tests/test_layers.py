"""Every layer's backward against float64 finite differences (low-level API),
initializers, shapes and input checks."""
import numpy as np
import pytest

import fastdl
from fastdl import initializers, layers, ops

from ref_nn import numeric_grad


def _check_layer(layer, x, training=True, n_probe=25, rtol=1e-5, atol=1e-7, seed=0):
    """layer(x) -> y; L = sum(y * r). Compare dx and every weight gradient with central differences."""
    rng = np.random.default_rng(seed)
    y = layer(x, training=training)
    r = rng.standard_normal(y.shape)
    dx = np.array(layer.backward(r))
    grads = [np.array(g) for g in layer.gradients]
    assert len(grads) == len(layer.trainable_weights)

    def loss():
        return float((layer(x, training=training) * r).sum())

    probe = lambda a: rng.choice(a.size, size=min(n_probe, a.size), replace=False)
    idx = probe(x)
    np.testing.assert_allclose(dx.reshape(-1)[idx], numeric_grad(loss, x, idx), rtol=rtol, atol=atol)
    for w, g in zip(layer.trainable_weights, grads):
        assert g.shape == w.shape
        idx = probe(w)
        np.testing.assert_allclose(g.reshape(-1)[idx], numeric_grad(loss, w, idx), rtol=rtol, atol=atol)
    return y


@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_dense(rng, act):
    layer = layers.Dense(7, activation=act, dtype="float64")
    x = rng.standard_normal((5, 4))
    y = _check_layer(layer, x)
    assert y.shape == (5, 7) and layer.kernel.dtype == np.float64


def test_dense_follows_input_dtype_and_3d(rng):
    layer = layers.Dense(3)
    x = rng.standard_normal((2, 4, 6))
    y = _check_layer(layer, x)
    assert layer.kernel.dtype == np.float64 and y.shape == (2, 4, 3)


def test_structure_layers(rng):
    _check_layer(layers.Flatten(), rng.standard_normal((3, 4, 5)))
    _check_layer(layers.Reshape((5, -1)), rng.standard_normal((3, 20)))
    _check_layer(layers.Activation("tanh"), rng.standard_normal((3, 4)))
    _check_layer(layers.ReLU(), rng.standard_normal((3, 4)) + 0.05)
    _check_layer(layers.Softmax(), rng.standard_normal((3, 4)))
    _check_layer(layers.Softmax(axis=1), rng.standard_normal((3, 4, 2)))


def test_dropout_layer(rng):
    fastdl.set_seed(3)
    d = layers.Dropout(0.5)
    x = rng.standard_normal((40, 50))
    assert d(x) is x or np.array_equal(d(x), x)          # inference: identity
    y = d(x, training=True)
    assert 0.4 < (y == 0).mean() < 0.6
    dx = d.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_allclose(dx[dx != 0], 2.0)
    with pytest.raises(ValueError):
        layers.Dropout(1.0)


def _need(name):
    if not hasattr(ops, name):
        pytest.skip(f"fastdl.ops.{name} is not in this build")


@pytest.mark.parametrize("kw", [dict(), dict(strides=2, padding="same"), dict(dilation_rate=2, activation="relu"),
                                dict(padding="same", activation="tanh", use_bias=False)])
def test_conv2d(rng, kw):
    _need("conv2d")
    layer = layers.Conv2D(3, 3, dtype="float64", **kw)
    x = rng.standard_normal((2, 7, 6, 2))
    y = _check_layer(layer, x)
    assert y.shape[1:] == layer.output_shape[1:]


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
@pytest.mark.parametrize("kw", [dict(), dict(pool_size=3, strides=2, padding="same")])
def test_pooling(rng, cls, kw):
    _need("max_pool2d")
    x = rng.standard_normal((2, 7, 6, 3))
    layer = cls(**kw)
    y = _check_layer(layer, x)
    assert y.shape[1:] == layer.output_shape[1:]


def test_global_average_pooling(rng):
    _need("global_avg_pool2d")
    y = _check_layer(layers.GlobalAveragePooling2D(), rng.standard_normal((2, 4, 5, 3)))
    assert y.shape == (2, 3)


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_recurrent(rng, cls, return_sequences):
    _need({"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}[cls.__name__])
    layer = cls(4, return_sequences=return_sequences, dtype="float64")
    x = rng.standard_normal((3, 5, 2)) * 0.5
    y = _check_layer(layer, x)
    assert y.shape == ((3, 5, 4) if return_sequences else (3, 4))


def test_recurrent_shapes_and_init():
    fastdl.set_seed(0)
    lstm = layers.LSTM(6)
    lstm._build_from((None, 9, 3))
    k, rk, b = lstm.weights
    assert k.shape == (3, 24) and rk.shape == (6, 24) and b.shape == (24,)
    np.testing.assert_array_equal(b[6:12], 1.0)           # unit_forget_bias
    np.testing.assert_array_equal(np.delete(b, range(6, 12)), 0.0)
    gru = layers.GRU(5)
    gru._build_from((None, 9, 3))
    assert [w.shape for w in gru.weights] == [(3, 15), (5, 15), (2, 15)]
    rnn = layers.SimpleRNN(5)
    rnn._build_from((None, 9, 3))
    assert rnn.count_params() == 3 * 5 + 25 + 5
    rk = rnn.weights[1]
    np.testing.assert_allclose(rk @ rk.T, np.eye(5), atol=1e-5)   # orthogonal


def test_initializers():
    fastdl.set_seed(1)
    w = initializers.get("glorot_uniform")((300, 200))
    lim = np.sqrt(6 / 500)
    assert w.dtype == np.float32 and np.abs(w).max() <= lim and np.abs(w).max() > 0.95 * lim
    fastdl.set_seed(1)
    np.testing.assert_array_equal(initializers.GlorotUniform()((300, 200)), w)
    q = initializers.Orthogonal()((4, 9))
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="known initializers"):
        initializers.get("nope")


def test_layer_input_width_check(rng):
    d = layers.Dense(4)
    d(rng.standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\)"):
        d(rng.standard_normal((2, 5)).astype(np.float32))


def test_unknown_activation_lists_known():
    with pytest.raises(ValueError, match="known activations: linear, relu"):
        layers.Dense(3, activation="swishy")


def test_weights_are_live_arrays(rng):
    d = layers.Dense(2)
    d(np.ones((1, 3), np.float32))
    k = d.trainable_weights[0]
    k[...] = 0
    assert np.all(d.kernel == 0)
    d.set_weights([np.ones((3, 2)), np.ones(2)])
    assert d.trainable_weights[0] is k and np.all(k == 1)
    with pytest.raises(ValueError, match="shape"):
        d.set_weights([np.ones((2, 2)), np.ones(2)])
