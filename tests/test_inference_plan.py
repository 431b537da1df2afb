"""predict's cached inference plan (trainers/inference.py): the same bits as predict's
general path, invalidated by what changes the model, and bad input still reported."""
import copy
import pickle
import random
import threading

import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl import _random
from fastdl.callbacks import Callback


@pytest.fixture(autouse=True)
def _random_state_kept():
    """These tests seed fastdl; the tests after them find the random state unchanged."""
    saved = copy.deepcopy(_random._rng), np.random.get_state(), random.getstate()
    yield
    _random._rng = saved[0]
    np.random.set_state(saved[1])
    random.setstate(saved[2])


def mlp(seed=1, softmax=True):
    fastdl.utils.set_random_seed(seed)
    m = fastdl.Sequential([layers.Input((7, 9)), layers.Flatten(),
                           layers.Dense(13, activation="relu"), layers.Dropout(0.2),
                           layers.Dense(5, activation="softmax" if softmax else "tanh")])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def general(m, x, **kw):
    """predict through its general path (a callback turns the plan off)."""
    return m.predict(x, verbose=0, callbacks=[Callback()], **kw)


def data(n, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, 7, 9)).astype(dtype)


def test_plan_is_made_and_reused():
    m = mlp()
    x = data(1)
    m.predict(x, verbose=0)
    plan = m.__dict__.get("_inference_plan")
    assert plan is not None
    m.predict(data(3), verbose=0)
    assert m.__dict__["_inference_plan"] is plan


MR = fastdl.ops.gemm_kernel_info()["mr"]


@pytest.mark.parametrize("softmax", [True, False])
@pytest.mark.parametrize("n,bs", [(1, None), (2, None), (32, None), (33, None), (101, None),
                                  (1000, None), (5000, None), (1, 7), (40, 40), (50, 1), (40, 7),
                                  (997, 5 * MR), (130, 4 * MR)])
def test_same_bits_as_batch_by_batch(n, bs, softmax):
    m = mlp(softmax=softmax)
    x = data(n)
    got = m.predict(x, verbose=0, batch_size=bs)
    want = general(m, x, batch_size=bs)
    assert got.dtype == want.dtype and got.shape == want.shape == (n, 5)
    assert np.array_equal(got, want)
    assert m.__dict__.get("_inference_plan") is not None


@pytest.mark.parametrize("threads", [1, 2])
def test_many_batches_per_call(threads):
    old = fastdl.ops.get_num_threads()
    fastdl.ops.set_num_threads(threads)
    try:
        m = mlp()
        x = data(3000)
        got = m.predict(x, verbose=0)
        assert m.__dict__["_inference_plan"]._chunk(32) > 32
        # rows 30 and 31 of each batch fall in the GEMM's short edge tile of a batch
        want = np.concatenate([general(m, x[i:i + 32]) for i in range(0, len(x), 32)])
        assert np.array_equal(got, want)
    finally:
        fastdl.ops.set_num_threads(old)


def test_inputs_the_plan_casts_or_reads_in_place():
    m = mlp()
    x64 = data(30, dtype=np.float64)
    assert np.array_equal(m.predict(x64, verbose=0), general(m, x64))
    xi = (data(30) * 10).astype(np.int32)
    assert np.array_equal(m.predict(xi, verbose=0), general(m, xi))
    xs = data(60)[::2]   # not contiguous
    assert np.array_equal(m.predict(xs, verbose=0), general(m, xs))
    xt = np.asfortranarray(data(40))
    assert np.array_equal(m.predict(xt, verbose=0, batch_size=12),
                          general(m, xt, batch_size=12))


def test_steps_limits_batches():
    m = mlp()
    x = data(50)
    got = m.predict(x, verbose=0, batch_size=8, steps=3)
    assert got.shape == (24, 5)
    assert np.array_equal(got, general(m, x, batch_size=8, steps=3))
    assert m.predict(x, verbose=0, steps=0).shape == (0, 5)


def test_output_is_a_new_array():
    m = mlp()
    x = data(1)
    a = m.predict(x, verbose=0)
    b = m.predict(data(1, seed=5), verbose=0)
    assert not np.shares_memory(a, b)
    assert not np.array_equal(a, b)


def test_set_weights_is_seen():
    m = mlp()
    x = data(4)
    before = m.predict(x, verbose=0)
    ws = [w * 0.5 for w in m.get_weights()]
    m.set_weights(ws)
    after = m.predict(x, verbose=0)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, general(m, x))


def test_fit_is_seen():
    m = mlp()
    x = data(64)
    y = np.random.default_rng(1).integers(0, 5, 64)
    before = m.predict(x[:1], verbose=0)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    after = m.predict(x[:1], verbose=0)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, general(m, x[:1]))
    assert np.array_equal(m.predict(x, verbose=0), general(m, x))


def test_trainable_and_structure_changes_make_a_new_plan():
    m = mlp()
    x = data(3)
    m.predict(x, verbose=0)
    plan = m.__dict__["_inference_plan"]
    m.layers[1].trainable = False
    assert np.array_equal(m.predict(x, verbose=0), general(m, x))
    assert m.__dict__["_inference_plan"] is not plan
    plan = m.__dict__["_inference_plan"]
    m.add(layers.Dense(2))
    got = m.predict(x, verbose=0)
    assert got.shape == (3, 2) and m.__dict__["_inference_plan"] is not plan
    assert np.array_equal(got, general(m, x))
    m.pop()
    assert np.array_equal(m.predict(x, verbose=0), general(m, x))


def test_bad_input_still_raises():
    m = mlp()
    m.predict(data(2), verbose=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape"):
        m.predict(np.zeros((2, 9, 7), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape"):
        m.predict(np.zeros((2, 63), np.float32), verbose=0)
    with pytest.raises(TypeError, match=r"must hold numbers"):
        m.predict(np.full((2, 7, 9), "a"), verbose=0)
    with pytest.raises(ValueError, match=r"batch_size must be positive"):
        m.predict(data(40), verbose=0, batch_size=-1)
    assert m.predict(np.zeros((0, 7, 9), np.float32), verbose=0).shape == (0, 5)
    # a list is not an array: the general path takes it, with the same result
    x = data(2)
    assert np.array_equal(m.predict(x.tolist(), verbose=0), m.predict(x, verbose=0))


def test_overridden_predict_step_is_called():
    calls = []

    class M(fastdl.Sequential):
        def predict_step(self, data):
            calls.append(1)
            return super().predict_step(data)
    m = M([layers.Input((4,)), layers.Dense(3)])
    m.predict(np.ones((2, 4), np.float32), verbose=0)
    assert calls and m.__dict__.get("_inference_plan") is None


def test_callbacks_see_every_batch():
    seen = []

    class C(Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(batch)
    m = mlp()
    m.predict(data(70), verbose=0, batch_size=32, callbacks=[C()])
    assert seen == [0, 1, 2]


def test_threads_each_get_their_result():
    m = mlp()
    xs = [data(1, seed=s) for s in range(8)]
    want = [general(m, x) for x in xs]
    errors = []

    def work(i):
        for _ in range(200):
            if not np.array_equal(m.predict(xs[i], verbose=0), want[i]):
                errors.append(i)
                return
    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_generic_layers_run_their_call():
    # a layer without an inference function (BatchNormalization) runs call(training=False)
    fastdl.utils.set_random_seed(3)
    m = fastdl.Sequential([layers.Input((6,)), layers.Dense(8, activation="relu"),
                           layers.BatchNormalization(), layers.Dense(2)])
    x = np.random.default_rng(2).standard_normal((45, 6)).astype(np.float32)
    m.compile("sgd", "mse")
    m.fit(x, np.zeros((45, 2), np.float32), epochs=1, verbose=0)
    assert np.array_equal(m.predict(x, verbose=0), general(m, x))
    assert np.array_equal(m.predict(x[:1], verbose=0), general(m, x[:1]))


def test_copies_and_pickles_make_their_own_plan():
    m = mlp()
    x = data(3)
    want = m.predict(x, verbose=0)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert other.__dict__.get("_inference_plan") is None
        assert np.array_equal(other.predict(x, verbose=0), want)
        assert other.__dict__["_inference_plan"] is not m.__dict__["_inference_plan"]
    c = copy.deepcopy(m)
    c.set_weights([w * 2 for w in c.get_weights()])
    assert np.array_equal(m.predict(x, verbose=0), want)   # the original's plan is its own
    assert not np.array_equal(c.predict(x, verbose=0), want)
