"""fastdl.random: Keras 3's random functions and seeding rules."""
import numpy as np
import pytest

import fastdl
from fastdl import ops
from fastdl import random as krandom
from fastdl._tape import GradientTape, Tensor


def test_int_seeds_are_deterministic_and_stateless():
    a = krandom.normal((3, 4), seed=7)
    b = krandom.normal((3, 4), seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, krandom.normal((3, 4), seed=8))
    assert a.dtype == np.float32 and a.shape == (3, 4)
    assert krandom.normal(5, dtype="float64", seed=1).dtype == np.float64


def test_seed_generator_advances_and_is_repeatable():
    g1, g2 = krandom.SeedGenerator(42), krandom.SeedGenerator(42)
    a1, b1 = krandom.uniform((4,), seed=g1), krandom.uniform((4,), seed=g1)
    a2, b2 = krandom.uniform((4,), seed=g2), krandom.uniform((4,), seed=g2)
    assert not np.array_equal(a1, b1)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    cfg = g1.get_config()
    assert cfg["seed"] == 42
    assert isinstance(krandom.SeedGenerator.from_config(cfg), krandom.SeedGenerator)


def test_seed_none_follows_the_global_seed():
    fastdl.set_seed(123)
    a = krandom.normal((5,))
    b = krandom.normal((5,))
    fastdl.set_seed(123)
    np.testing.assert_array_equal(krandom.normal((5,)), a)
    np.testing.assert_array_equal(krandom.normal((5,)), b)
    assert not np.array_equal(a, b)
    fastdl.set_seed(5)
    g = krandom.SeedGenerator()
    fastdl.set_seed(5)
    assert krandom.SeedGenerator().get_config()["seed"] == g.get_config()["seed"]


def test_distributions_moments_and_ranges():
    n = krandom.normal((20000,), mean=2.0, stddev=3.0, seed=1)
    assert abs(n.mean() - 2.0) < 0.1 and abs(n.std() - 3.0) < 0.1
    u = krandom.uniform((20000,), minval=-1.0, maxval=3.0, seed=2)
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.05
    t = krandom.truncated_normal((20000,), mean=1.0, stddev=0.5, seed=3)
    assert t.min() >= 0.0 and t.max() <= 2.0 and abs(t.mean() - 1.0) < 0.02
    r = krandom.randint((1000,), 3, 7, seed=4)
    assert r.dtype == np.int32 and r.min() == 3 and r.max() == 6
    c = krandom.categorical(np.log([[0.2, 0.8], [1.0, 1e-12]]), 4000, seed=5)
    assert c.shape == (2, 4000) and c.dtype == np.int32
    assert abs(c[0].mean() - 0.8) < 0.03 and c[1].max() == 0
    assert krandom.gamma((10,), 2.0, seed=1).dtype == np.float32
    with pytest.raises(ValueError):
        krandom.randint((2,), 0, 3, dtype="float32")


def test_dropout_scales_and_masks():
    x = np.ones((200, 50), np.float32)
    y = krandom.dropout(x, 0.3, seed=9)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(krandom.dropout(x, 0.3, seed=9), y)
    np.testing.assert_array_equal(krandom.dropout(x, 0.0, seed=9), x)
    ns = krandom.dropout(x, 0.5, noise_shape=(200, 1), seed=1)
    assert np.all((ns == 0).all(1) | (ns == 2).all(1))        # one mask value per row
    with pytest.raises(ValueError):
        krandom.dropout(x, 1.0)


@pytest.mark.parametrize("noise_shape", [None, (1, 6)])
def test_dropout_is_differentiable(noise_shape):
    x = np.random.default_rng(0).standard_normal((4, 6))
    with GradientTape() as tape:
        tape.watch(x)
        y = krandom.dropout(x, 0.5, noise_shape=noise_shape, seed=3)
        loss = ops.sum(ops.multiply(y, 2.0))
    assert isinstance(y, Tensor)
    g = tape.gradient(loss, x)
    mask = krandom.dropout(np.ones_like(x), 0.5, noise_shape=noise_shape, seed=3)
    np.testing.assert_allclose(g, 2.0 * mask)


def test_shuffle_permutes_and_differentiates():
    x = np.arange(12.0).reshape(6, 2)
    s = krandom.shuffle(x, seed=1)
    np.testing.assert_array_equal(np.sort(s[:, 0]), x[:, 0])
    np.testing.assert_array_equal(s[:, 1] - s[:, 0], 1)
    np.testing.assert_array_equal(krandom.shuffle(x, seed=1), s)
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(krandom.shuffle(x, axis=1, seed=2), np.array([1.0, 3.0])))
    g = tape.gradient(y, x)
    assert sorted(g[0]) == [1.0, 3.0]
