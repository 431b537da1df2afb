"""The breadth layers (1-D and global pooling, reshaping, parametric activations, noise,
ActivityRegularization) and the extra activation names: forward against NumPy references,
backward against float64 central differences, configs, training by fit, symbolic shapes
and argument checks."""
import math

import numpy as np
import pytest

import fastdl
import fastdl as keras
from fastdl import activations, layers

from ref_nn import numeric_grad

L = layers


def _check_grads(layer, x, training=True, n_probe=30, rtol=1e-5, atol=1e-7, seed=0):
    """layer(x) -> y; L = sum(y * r): dx and weight gradients against central differences."""
    rng = np.random.default_rng(seed)
    y = np.array(layer(x, training=training))
    r = rng.standard_normal(y.shape)
    dx = np.array(layer.backward(r))
    assert dx.shape == x.shape
    grads = [np.array(g) for g in layer.gradients]

    def loss():
        return float((np.asarray(layer(x, training=training)) * r).sum())

    probe = lambda a: rng.choice(a.size, size=min(n_probe, a.size), replace=False)
    idx = probe(x)
    np.testing.assert_allclose(dx.reshape(-1)[idx], numeric_grad(loss, x, idx), rtol=rtol,
                               atol=atol)
    for w, g in zip(layer.trainable_weights, grads):
        assert g.shape == w.shape
        idx = probe(w)
        np.testing.assert_allclose(g.reshape(-1)[idx], numeric_grad(loss, w, idx), rtol=rtol,
                                   atol=atol)
    return y


def _away_from_kinks(rng, shape, eps=1e-3):
    x = rng.standard_normal(shape)
    x[np.abs(x) < eps] = 0.5
    return x


# ------------------------------------------------------------------ NumPy references
def _pool1d_ref(x, k, s, padding, op):
    n, length, c = x.shape
    if padding == "valid":
        out = (length - k) // s + 1
        lo = 0
    else:
        out = -(-length // s)
        lo = max((out - 1) * s + k - length, 0) // 2
    y = np.zeros((n, out, c))
    for i in range(out):
        a, b = i * s - lo, i * s - lo + k
        win = x[:, max(a, 0):min(b, length), :]
        y[:, i, :] = win.max(axis=1) if op == "max" else win.mean(axis=1)
    return y


def _pad_ref(x, p):
    (t, b), (l, r) = p
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


# ------------------------------------------------------------------ pooling
@pytest.mark.parametrize("cls,op", [(L.MaxPooling1D, "max"), (L.AveragePooling1D, "avg")])
@pytest.mark.parametrize("k,s,padding,length", [(2, None, "valid", 7), (3, 2, "same", 11),
                                                 (3, 1, "same", 5), (5, 3, "valid", 13),
                                                 (2, 2, "same", 1)])
@pytest.mark.parametrize("n", [1, 3])
def test_pool1d_forward_and_backward(rng, cls, op, k, s, padding, length, n):
    x = rng.standard_normal((n, length, 5))
    layer = cls(pool_size=k, strides=s, padding=padding, dtype="float64")
    y = _check_grads(layer, x)
    ref = _pool1d_ref(x, k, k if s is None else s, padding, op)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert layer.compute_output_shape((None, length, 5)) == (None,) + ref.shape[1:]


@pytest.mark.parametrize("cls,shape,axes,op", [
    (L.GlobalMaxPooling1D, (3, 7, 5), (1,), "max"),
    (L.GlobalMaxPooling2D, (2, 5, 3, 7), (1, 2), "max"),
    (L.GlobalAveragePooling1D, (3, 11, 2), (1,), "mean"),
    (L.GlobalMaxPooling2D, (1, 1, 1, 3), (1, 2), "max"),
    (L.GlobalAveragePooling1D, (1, 1, 13), (1,), "mean")])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(rng, cls, shape, axes, op, keepdims):
    x = rng.standard_normal(shape)
    layer = cls(keepdims=keepdims, dtype="float64")
    y = _check_grads(layer, x)
    ref = getattr(x, op)(axis=axes, keepdims=keepdims)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + ref.shape[1:]


def test_global_max_pooling_ties_go_to_the_first_maximum():
    x = np.zeros((1, 4, 2))
    x[0, 1, 0] = x[0, 3, 0] = 2.0
    layer = L.GlobalMaxPooling1D(dtype="float64")
    layer(x, training=True)
    dx = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(dx[0, :, 0], [0, 1, 0, 0])
    assert dx[0, :, 1].sum() == 1


# ------------------------------------------------------------------ reshaping
def test_repeat_vector(rng):
    x = rng.standard_normal((3, 5))
    y = _check_grads(L.RepeatVector(4), x)
    np.testing.assert_array_equal(y, np.repeat(x[:, None, :], 4, axis=1))
    assert L.RepeatVector(7).compute_output_shape((None, 5)) == (None, 7, 5)


@pytest.mark.parametrize("dims,shape", [((2, 1), (2, 3, 5)), ((3, 1, 2), (1, 2, 3, 7)),
                                        ((1, 2), (3, 4, 2))])
def test_permute(rng, dims, shape):
    x = rng.standard_normal(shape)
    layer = L.Permute(dims)
    y = _check_grads(layer, x)
    np.testing.assert_array_equal(y, np.transpose(x, (0,) + dims))
    assert y.flags.c_contiguous
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + y.shape[1:]


@pytest.mark.parametrize("size,shape", [(2, (2, 5, 3)), (3, (1, 1, 7)), (1, (2, 3, 2))])
def test_upsampling1d(rng, size, shape):
    x = rng.standard_normal(shape)
    y = _check_grads(L.UpSampling1D(size), x)
    np.testing.assert_array_equal(y, np.repeat(x, size, axis=1))


@pytest.mark.parametrize("size,shape", [((2, 2), (2, 3, 5, 3)), (3, (1, 2, 1, 7)),
                                        ((1, 3), (2, 5, 2, 1))])
def test_upsampling2d(rng, size, shape):
    x = rng.standard_normal(shape)
    layer = L.UpSampling2D(size)
    y = _check_grads(layer, x)
    sh, sw = (size, size) if isinstance(size, int) else size
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, sh, axis=1), sw, axis=2))
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + y.shape[1:]
    with pytest.raises(NotImplementedError, match="bicubic"):
        L.UpSampling2D(interpolation="bicubic")


def _bilinear_ref(x, sh, sw):
    """Half-pixel-centre bilinear resize with clamped edges, one output pixel at a time."""
    n, h, w, c = x.shape
    y = np.zeros((n, h * sh, w * sw, c))
    for a in range(h * sh):
        fy = min(max((a + 0.5) / sh - 0.5, 0), h - 1)
        y0 = int(np.floor(fy)); y1 = min(y0 + 1, h - 1); ty = fy - y0
        for b in range(w * sw):
            fx = min(max((b + 0.5) / sw - 0.5, 0), w - 1)
            x0 = int(np.floor(fx)); x1 = min(x0 + 1, w - 1); tx = fx - x0
            y[:, a, b] = ((1 - ty) * (1 - tx) * x[:, y0, x0] + (1 - ty) * tx * x[:, y0, x1] +
                          ty * (1 - tx) * x[:, y1, x0] + ty * tx * x[:, y1, x1])
    return y


@pytest.mark.parametrize("size,shape", [((2, 2), (2, 3, 5, 3)), (3, (1, 2, 1, 7)),
                                        ((1, 3), (2, 5, 2, 1))])
def test_upsampling2d_bilinear(rng, size, shape):
    x = rng.standard_normal(shape)
    layer = L.UpSampling2D(size, interpolation="bilinear")
    y = _check_grads(layer, x)
    sh, sw = (size, size) if isinstance(size, int) else size
    np.testing.assert_allclose(y, _bilinear_ref(x, sh, sw), rtol=1e-12, atol=1e-14)
    # a constant image stays constant; the example of TensorFlow's resize
    np.testing.assert_allclose(L.UpSampling2D(2, interpolation="bilinear")(
        np.ones((1, 3, 3, 1), np.float32)), 1.0)
    got = L.UpSampling2D((1, 2), interpolation="bilinear")(
        np.array([0.0, 4.0], np.float32).reshape(1, 1, 2, 1))
    np.testing.assert_allclose(got.reshape(-1), [0, 1, 3, 4])


@pytest.mark.parametrize("padding,norm", [(1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))),
                                          (((0, 3), (2, 1)), ((0, 3), (2, 1)))])
def test_zero_padding2d(rng, padding, norm):
    x = rng.standard_normal((2, 3, 5, 2))
    layer = L.ZeroPadding2D(padding)
    y = _check_grads(layer, x)
    np.testing.assert_array_equal(y, _pad_ref(x, norm))
    assert layer.compute_output_shape((None, 3, 5, 2)) == (None,) + y.shape[1:]


@pytest.mark.parametrize("cropping,norm", [(1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))),
                                           (((0, 3), (2, 1)), ((0, 3), (2, 1)))])
def test_cropping2d(rng, cropping, norm):
    x = rng.standard_normal((1, 7, 5, 3))
    layer = L.Cropping2D(cropping)
    y = _check_grads(layer, x)
    (t, b), (l, r) = norm
    np.testing.assert_array_equal(y, x[:, t:7 - b, l:5 - r, :])
    assert layer.compute_output_shape((None, 7, 5, 3)) == (None,) + y.shape[1:]


# ------------------------------------------------------------------ activation layers
@pytest.mark.parametrize("slope", [0.3, 0.0, 1.7])
def test_leaky_relu_layer(rng, slope):
    x = _away_from_kinks(rng, (3, 7))
    layer = L.LeakyReLU(negative_slope=slope) if slope != 0.3 else L.LeakyReLU()
    y = _check_grads(layer, x)
    np.testing.assert_allclose(y, np.where(x > 0, x, slope * x), rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_layer(rng, alpha):
    x = _away_from_kinks(rng, (2, 3, 5))
    y = _check_grads(L.ELU(alpha=alpha), x)
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * np.expm1(x)), rtol=1e-12)


@pytest.mark.parametrize("shape,shared,alpha_shape", [((3, 5), None, (5,)),
                                                      ((2, 4, 3, 5), [1, 2], (1, 1, 5)),
                                                      ((1, 7, 3), 2, (7, 1))])
def test_prelu_layer(rng, shape, shared, alpha_shape):
    x = _away_from_kinks(rng, shape)
    layer = L.PReLU(alpha_initializer="random_normal", shared_axes=shared, dtype="float64")
    y = _check_grads(layer, x)
    a = layer.get_weights()[0]
    assert a.shape == alpha_shape and len(layer.trainable_weights) == 1
    np.testing.assert_allclose(y, np.where(x > 0, x, a * x), rtol=1e-12)
    np.testing.assert_array_equal(L.PReLU()(x[:1]), np.maximum(x[:1], 0))  # zeros by default


# ------------------------------------------------------------------ activation names
def _erf(v):
    return np.vectorize(math.erf)(v)


_SELU_A, _SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_ACT_REFS = {
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: _SELU_S * np.where(x > 0, x, _SELU_A * np.expm1(x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "linear": lambda x: x,
    "exponential": np.exp,
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
}


@pytest.mark.parametrize("name", sorted(_ACT_REFS))
def test_activation_names_forward_and_backward(rng, name):
    x = _away_from_kinks(rng, (3, 7)) * 2.5
    x[np.abs(np.abs(x) - 3) < 1e-3] = 1.0          # hard_sigmoid's kinks
    ref = _ACT_REFS[name](x)
    a = activations.get(name)
    np.testing.assert_allclose(a.forward(x), ref, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(a.forward(x.astype(np.float32)), ref, rtol=2e-5, atol=1e-6)
    # the functional form, traced
    np.testing.assert_allclose(np.asarray(getattr(activations, name)(x)), ref, rtol=1e-7,
                               atol=1e-12)
    assert activations.get(getattr(activations, name)) is a
    # through the Activation layer and Dense (out= buffers, backward from the output)
    y = _check_grads(L.Activation(name), x)
    np.testing.assert_allclose(y, ref, rtol=1e-7, atol=1e-12)
    _check_grads(L.Dense(4, activation=name, dtype="float64"), x * 0.3, rtol=1e-5, atol=1e-6)


def test_input_derivative_activation_stays_correct_with_several_outputs(rng):
    """gelu's backward needs its input: two layers, interleaved calls, each backward right."""
    x1, x2 = rng.standard_normal((3, 5)), rng.standard_normal((3, 5)) * 3
    l1, l2 = L.Activation("gelu"), L.Activation("silu")
    l3 = L.Activation("gelu")
    l1(x1, training=True), l2(x2, training=True), l3(x2, training=True)
    d = lambda x: (0.5 * (1 + _erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi))
    np.testing.assert_allclose(l1.backward(np.ones((3, 5))), d(x1), rtol=1e-7)
    np.testing.assert_allclose(l3.backward(np.ones((3, 5))), d(x2), rtol=1e-7)
    with pytest.raises(RuntimeError, match="gelu"):
        activations.get("gelu").backward(np.ones(3), np.ones(3))


def test_conv2d_with_an_input_derivative_activation(rng):
    x = rng.standard_normal((2, 5, 5, 2))
    _check_grads(L.Conv2D(3, 3, activation="gelu", dtype="float64"), x)
    _check_grads(L.Conv2D(3, 3, activation="elu", padding="same", dtype="float64"), x)


def test_unknown_activation_name():
    with pytest.raises(ValueError, match="gelu"):   # the message lists the known names
        activations.get("geluu")


# ------------------------------------------------------------------ noise
def test_noise_layers_are_the_identity_at_inference(rng):
    x = rng.standard_normal((3, 4, 5, 2))
    for layer in (L.SpatialDropout2D(0.5), L.GaussianNoise(1.0), L.GaussianDropout(0.5),
                  L.ActivityRegularization(l1=0.1)):
        np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(L.SpatialDropout1D(0.5)(x[:, 0]), x[:, 0])


@pytest.mark.parametrize("cls,shape", [(L.SpatialDropout1D, (64, 3, 40)),
                                       (L.SpatialDropout2D, (64, 2, 3, 40))])
def test_spatial_dropout_drops_whole_channels(rng, cls, shape):
    fastdl.set_seed(5)
    x = rng.standard_normal(shape) + 10.0
    layer = cls(0.4)
    y = layer(x, training=True)
    scale = y / x
    per_channel = scale.reshape(shape[0], -1, shape[-1])
    np.testing.assert_allclose(per_channel, np.broadcast_to(per_channel[:, :1, :],
                                                            per_channel.shape), rtol=1e-12)
    assert set(np.round(np.unique(scale), 6)) <= {0.0, round(1 / 0.6, 6)}
    assert 0.3 < (per_channel[:, 0, :] == 0).mean() < 0.5
    r = rng.standard_normal(shape)
    np.testing.assert_allclose(layer.backward(r), r * scale, rtol=1e-12)


def test_gaussian_noise_and_dropout_statistics_and_backward(rng):
    fastdl.set_seed(11)
    x = np.ones((200, 300))
    gn = L.GaussianNoise(0.5)
    y = gn(x, training=True)
    assert abs((y - 1).mean()) < 0.01 and abs((y - 1).std() - 0.5) < 0.01
    r = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(gn.backward(r), r)
    gd = L.GaussianDropout(0.2)
    y = gd(x, training=True)
    assert abs(y.mean() - 1) < 0.01 and abs(y.std() - math.sqrt(0.2 / 0.8)) < 0.01
    np.testing.assert_allclose(gd.backward(r), r * y, rtol=1e-12)
    assert L.GaussianNoise(0.1)(x.astype(np.float32), training=True).dtype == np.float32


@pytest.mark.parametrize("make", [lambda: L.GaussianNoise(0.3), lambda: L.GaussianDropout(0.3),
                                  lambda: L.SpatialDropout1D(0.3)])
def test_noise_is_repeatable_under_set_seed(rng, make):
    x = rng.standard_normal((4, 6, 5))

    def run():
        fastdl.set_seed(123)
        layer = make()
        return [layer(x, training=True) for _ in range(2)]
    a, b = run(), run()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])
    # an explicit seed: the same noise without set_seed
    l1, l2 = L.GaussianNoise(0.3, seed=9), L.GaussianNoise(0.3, seed=9)
    np.testing.assert_array_equal(l1(x, training=True), l2(x, training=True))


def test_activity_regularization_adds_its_penalty(rng):
    x = rng.standard_normal((3, 4))
    layer = L.ActivityRegularization(l1=0.1, l2=0.01)
    y = layer(x, training=True)
    np.testing.assert_array_equal(np.asarray(y), x)
    (loss,) = layer.losses
    ref = 0.1 * np.abs(x).sum() + 0.01 * (x ** 2).sum()
    np.testing.assert_allclose(float(np.asarray(fastdl.ops.convert_to_numpy(loss))), ref,
                               rtol=1e-6)
    # the gradient of (penalty + sum(y * r)) through the traced call
    r = rng.standard_normal(x.shape)
    with fastdl.GradientTape() as tape:
        xt = fastdl.ops.convert_to_tensor(x)
        tape.watch(xt)
        out = layer(xt, training=True)
        total = fastdl.ops.sum(out * r) + layer.losses[0]
    g = np.asarray(tape.gradient(total, xt))
    np.testing.assert_allclose(g, r + 0.1 * np.sign(x) + 0.02 * x, rtol=1e-6)
    assert L.ActivityRegularization()(x).shape == x.shape and \
        not L.ActivityRegularization().losses


# ------------------------------------------------------------------ configs
_ALL = [
    lambda: L.MaxPooling1D(3, strides=2, padding="same"),
    lambda: L.AveragePooling1D(pool_size=4),
    lambda: L.GlobalMaxPooling1D(keepdims=True),
    lambda: L.GlobalMaxPooling2D(),
    lambda: L.GlobalAveragePooling1D(keepdims=True),
    lambda: L.RepeatVector(3),
    lambda: L.Permute((2, 1)),
    lambda: L.UpSampling1D(size=3),
    lambda: L.UpSampling2D(size=(2, 3)),
    lambda: L.UpSampling2D(interpolation="bilinear"),
    lambda: L.ZeroPadding2D(((1, 2), (0, 3))),
    lambda: L.Cropping2D((1, 2)),
    lambda: L.LeakyReLU(negative_slope=0.1),
    lambda: L.PReLU(alpha_initializer="ones", shared_axes=[1, 2]),
    lambda: L.PReLU(alpha_regularizer="l2"),
    lambda: L.ELU(alpha=0.7),
    lambda: L.SpatialDropout1D(0.25, seed=3),
    lambda: L.SpatialDropout2D(0.3),
    lambda: L.GaussianNoise(0.2, seed=1),
    lambda: L.GaussianDropout(0.1),
    lambda: L.ActivityRegularization(l1=0.01, l2=0.02),
]


@pytest.mark.parametrize("i", range(len(_ALL)))
def test_config_round_trip(i):
    layer = _ALL[i]()
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    back = layers.deserialize(layers.serialize(layer))
    assert type(back) is type(layer) and back.get_config() == cfg


# ------------------------------------------------------------------ symbolic shapes
@pytest.mark.parametrize("make,in_shape,out_shape", [
    (lambda: L.MaxPooling1D(2), (9, 4), (4, 4)),
    (lambda: L.AveragePooling1D(3, 2, "same"), (9, 4), (5, 4)),
    (lambda: L.GlobalMaxPooling1D(), (9, 4), (4,)),
    (lambda: L.GlobalMaxPooling2D(keepdims=True), (5, 6, 4), (1, 1, 4)),
    (lambda: L.GlobalAveragePooling1D(), (9, 4), (4,)),
    (lambda: L.RepeatVector(5), (3,), (5, 3)),
    (lambda: L.Permute((3, 1, 2)), (5, 6, 4), (4, 5, 6)),
    (lambda: L.UpSampling1D(2), (9, 4), (18, 4)),
    (lambda: L.UpSampling2D((2, 3)), (5, 6, 4), (10, 18, 4)),
    (lambda: L.ZeroPadding2D((1, 2)), (5, 6, 4), (7, 10, 4)),
    (lambda: L.Cropping2D(((1, 0), (2, 1))), (5, 6, 4), (4, 3, 4)),
    (lambda: L.LeakyReLU(), (5, 6), (5, 6)),
    (lambda: L.PReLU(), (5, 6), (5, 6)),
    (lambda: L.ELU(), (5, 6), (5, 6)),
    (lambda: L.SpatialDropout1D(0.1), (5, 6), (5, 6)),
    (lambda: L.SpatialDropout2D(0.1), (5, 6, 2), (5, 6, 2)),
    (lambda: L.GaussianNoise(0.1), (5, 6), (5, 6)),
    (lambda: L.GaussianDropout(0.1), (5, 6), (5, 6)),
    (lambda: L.ActivityRegularization(0.1), (5, 6), (5, 6)),
])
def test_symbolic_output_shapes(rng, make, in_shape, out_shape):
    inp = keras.Input(in_shape)
    layer = make()
    out = layer(inp)
    assert tuple(out.shape) == (None,) + out_shape
    model = keras.Model(inp, out)
    y = model.predict(rng.standard_normal((2,) + in_shape).astype(np.float32), verbose=0)
    assert y.shape == (2,) + out_shape


# ------------------------------------------------------------------ training
def test_fit_1d_stack_loss_decreases(rng):
    fastdl.set_seed(0)
    x = rng.standard_normal((64, 12, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    model = keras.Sequential([
        keras.Input((12, 3)),
        L.UpSampling1D(2),
        L.MaxPooling1D(2, padding="same"),
        L.SpatialDropout1D(0.1),
        L.GaussianNoise(0.05),
        L.AveragePooling1D(2),
        L.LeakyReLU(),
        L.Permute((2, 1)),
        L.Permute((2, 1)),
        L.GlobalAveragePooling1D(),
        L.RepeatVector(2),
        L.GlobalMaxPooling1D(),
        L.Dense(16, activation="gelu"),
        L.PReLU(),
        L.GaussianDropout(0.1),
        L.Dense(8, activation="silu"),
        L.ELU(),
        L.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    h = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_fit_2d_stack_with_activity_regularization_loss_decreases(rng):
    fastdl.set_seed(1)
    x = rng.standard_normal((48, 6, 6, 2)).astype(np.float32)
    y = x[:, 2:4, 2:4, :].mean(axis=(1, 2, 3))[:, None]
    inp = keras.Input((6, 6, 2))
    h = L.ZeroPadding2D(1)(inp)
    h = L.Conv2D(4, 3, activation="elu")(h)
    h = L.Cropping2D(1)(h)
    h = L.UpSampling2D(2)(h)
    h = L.SpatialDropout2D(0.1)(h)
    h = L.ActivityRegularization(l2=1e-4)(h)
    h = L.GlobalMaxPooling2D()(h)
    out = L.Dense(1, activation="softsign")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    hist = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert model.predict(x[:3], verbose=0).shape == (3, 1)


@pytest.mark.parametrize("act", ["gelu", "silu", "selu", "softplus", "hard_sigmoid",
                                 "leaky_relu", "exponential", "softsign"])
def test_fit_dense_with_each_activation(rng, act):
    fastdl.set_seed(2)
    x = rng.standard_normal((64, 5)).astype(np.float32) * 0.5
    y = (x @ rng.standard_normal((5, 1))).astype(np.float32)
    inp = keras.Input((5,))
    out = L.Dense(1)(L.Activation(act)(L.Dense(8, activation=act)(inp)))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    h = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


# ------------------------------------------------------------------ argument checks
@pytest.mark.parametrize("make,name", [
    (lambda: L.MaxPooling1D(pool_size=-1), "MaxPooling1D"),
    (lambda: L.MaxPooling1D(pool_size=0), "MaxPooling1D"),
    (lambda: L.AveragePooling1D(2, strides=-2), "AveragePooling1D"),
    (lambda: L.AveragePooling1D(2, padding="full"), "AveragePooling1D"),
    (lambda: L.MaxPooling1D(2, data_format="channels_first"), "MaxPooling1D"),
    (lambda: L.GlobalMaxPooling2D(data_format="channels_first"), "GlobalMaxPooling2D"),
    (lambda: L.RepeatVector(0), "RepeatVector"),
    (lambda: L.RepeatVector(-3), "RepeatVector"),
    (lambda: L.Permute((1, 3)), "Permute"),
    (lambda: L.Permute((0, 1)), "Permute"),
    (lambda: L.UpSampling1D(-1), "UpSampling1D"),
    (lambda: L.UpSampling2D((2, 0)), "UpSampling2D"),
    (lambda: L.UpSampling2D(interpolation="cubic"), "UpSampling2D"),
    (lambda: L.ZeroPadding2D(-1), "ZeroPadding2D"),
    (lambda: L.ZeroPadding2D(((1, -1), (0, 0))), "ZeroPadding2D"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "ZeroPadding2D"),
    (lambda: L.Cropping2D(-2), "Cropping2D"),
    (lambda: L.LeakyReLU(negative_slope=-0.1), "LeakyReLU"),
    (lambda: L.LeakyReLU(negative_slope=None), "LeakyReLU"),
    (lambda: L.ELU(alpha="x"), "ELU"),
    (lambda: L.PReLU(shared_axes=[0]), "PReLU"),
    (lambda: L.SpatialDropout1D(1.0), "SpatialDropout1D"),
    (lambda: L.SpatialDropout2D(-0.1), "SpatialDropout2D"),
    (lambda: L.GaussianNoise(-1.0), "GaussianNoise"),
    (lambda: L.GaussianDropout(1.5), "GaussianDropout"),
    (lambda: L.GaussianNoise(0.1, seed=-1), "GaussianNoise"),
    (lambda: L.ActivityRegularization(l1=-0.1), "ActivityRegularization"),
])
def test_bad_arguments_name_the_layer(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("make,shape,name", [
    (lambda: L.MaxPooling1D(2), (5, 6, 4), "MaxPooling1D"),
    (lambda: L.AveragePooling1D(4), (3, 2), "AveragePooling1D"),
    (lambda: L.GlobalMaxPooling1D(), (5, 6, 4), "GlobalMaxPooling1D"),
    (lambda: L.GlobalMaxPooling2D(), (5, 4), "GlobalMaxPooling2D"),
    (lambda: L.GlobalAveragePooling1D(), (5,), "GlobalAveragePooling1D"),
    (lambda: L.RepeatVector(2), (5, 4), "RepeatVector"),
    (lambda: L.Permute((2, 1)), (5, 6, 4), "Permute"),
    (lambda: L.UpSampling1D(2), (5,), "UpSampling1D"),
    (lambda: L.UpSampling2D(2), (5, 4), "UpSampling2D"),
    (lambda: L.ZeroPadding2D(1), (5, 4), "ZeroPadding2D"),
    (lambda: L.Cropping2D(3), (5, 6, 4), "Cropping2D"),
    (lambda: L.PReLU(shared_axes=[3]), (5, 4), "PReLU"),
    (lambda: L.SpatialDropout1D(0.1), (5, 6, 4), "SpatialDropout1D"),
    (lambda: L.SpatialDropout2D(0.1), (5, 4), "SpatialDropout2D"),
])
def test_bad_input_shapes_name_the_layer(make, shape, name):
    with pytest.raises(ValueError, match=name):
        make()(keras.Input(shape))


def test_model_with_breadth_layers_saves_and_loads(rng, tmp_path):
    fastdl.set_seed(4)
    model = keras.Sequential([
        keras.Input((8, 3)), L.UpSampling1D(2), L.MaxPooling1D(2), L.PReLU(shared_axes=[1]),
        L.GlobalMaxPooling1D(), L.RepeatVector(2), L.Permute((2, 1)), L.GlobalAveragePooling1D(),
        L.Dense(4, activation="gelu"), L.LeakyReLU(0.1), L.ELU(), L.GaussianNoise(0.1),
        L.ActivityRegularization(0.01), L.Dense(1, activation="swish")])
    x = rng.standard_normal((5, 8, 3)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.ones((5, 1)), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]


def test_keras_names_and_aliases():
    import warnings
    assert L.PReLU().name.startswith("p_re_lu") and L.LeakyReLU().name.startswith("leaky_re_lu")
    assert L.GlobalMaxPooling2D().name.startswith("global_max_pooling2d")
    assert L.MaxPool1D is L.MaxPooling1D and L.GlobalAvgPool1D is L.GlobalAveragePooling1D
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert L.LeakyReLU(alpha=0.2).negative_slope == 0.2     # Keras 2's name
    assert L.LeakyReLU().negative_slope == 0.3 and L.ELU().alpha == 1.0
    assert activations.get("swish") is activations.get("silu")
    assert activations.serialize(activations.get("swish")) == "silu"


def _breadth_model_1d(dtype):
    d = {"dtype": dtype}
    inp = keras.Input((10, 3), dtype=dtype)
    h = L.UpSampling1D(2, **d)(inp)
    h = L.MaxPooling1D(3, 2, padding="same", **d)(h)
    h = L.AveragePooling1D(2, **d)(h)
    h = L.SpatialDropout1D(0.2, **d)(h)
    h = L.GaussianNoise(0.05, **d)(h)
    h = L.PReLU(alpha_initializer="ones", shared_axes=[1], **d)(h)
    h = L.Permute((2, 1), **d)(h)
    h = L.Permute((2, 1), **d)(h)
    a = L.GlobalMaxPooling1D(**d)(h)
    b = L.GlobalAveragePooling1D(**d)(h)
    h = L.Concatenate(**d)([a, b])
    h = L.Dense(8, activation="softplus", **d)(h)
    h = L.GaussianDropout(0.1, **d)(h)
    h = L.LeakyReLU(**d)(h)
    h = L.ActivityRegularization(l2=1e-3, **d)(h)
    h = L.RepeatVector(2, **d)(h)
    h = L.GlobalMaxPooling1D(**d)(h)
    h = L.Dense(8, activation="selu", **d)(h)
    h = L.ELU(**d)(h)
    out = L.Dense(3, activation="softmax", **d)(h)
    m = keras.Model(inp, out)
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def _breadth_model_2d(dtype):
    d = {"dtype": dtype}
    m = keras.Sequential([
        keras.Input((5, 5, 2), dtype=dtype), L.ZeroPadding2D(((1, 0), (2, 1)), **d),
        L.Conv2D(3, 3, activation="silu", **d), L.Cropping2D(((1, 0), (0, 1)), **d),
        L.UpSampling2D((2, 1), **d), L.SpatialDropout2D(0.2, **d),
        L.UpSampling2D((1, 2), interpolation="bilinear", **d),
        L.GlobalMaxPooling2D(keepdims=True, **d), L.Flatten(**d),
        L.Dense(3, activation="softmax", **d)])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


@pytest.mark.cuda
@pytest.mark.parametrize("make", [_breadth_model_1d, _breadth_model_2d])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_breadth_models_on_cuda_fit_like_cpu(rng, make, dtype):
    x = rng.standard_normal((24,) + ((10, 3) if make is _breadth_model_1d else (5, 5, 2)))
    x = x.astype(dtype)
    y = rng.integers(0, 3, 24)
    runs = []
    for device in ("cpu", "cuda"):
        fastdl.set_seed(7)
        m = make(dtype)
        m.to(device)
        h = m.fit(x, y, batch_size=8, epochs=2, verbose=0)
        p = m.predict(x, verbose=0)
        m.to("cpu")
        runs.append((h.history["loss"], p, m.get_weights()))
    (h0, p0, w0), (h1, p1, w1) = runs
    t = dict(rtol=1e-3, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h1, h0, **t)
    np.testing.assert_allclose(p1, p0, **t)
    for a, b in zip(w1, w0):
        np.testing.assert_allclose(a, b, **t)


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(set(_ACT_REFS) - {"gelu"}))
def test_activation_names_on_cuda(rng, name):
    import cupy
    x = _away_from_kinks(rng, (3, 7)) * 2.5
    x[np.abs(np.abs(x) - 3) < 1e-3] = 1.0
    r = rng.standard_normal(x.shape)
    outs = []
    for device, arr in (("cpu", np.asarray), ("cuda", cupy.asarray)):
        m = keras.Sequential([keras.Input((7,), dtype="float64"),
                              L.Activation(name, dtype="float64")])
        m.to(device)
        y = m(arr(x), training=True)
        dx = m.backward(arr(r))
        assert type(y) is type(arr(x)) and type(dx) is type(arr(x))
        outs.append((cupy.asnumpy(y), cupy.asnumpy(dx)))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
