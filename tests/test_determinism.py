"""Determinism: the same seed and thread count give bit-identical weights after fit.

What changes across thread counts (docs/hardening.md):
- GEMM never splits the reduction (k) between threads: threads own blocks of C. But the size of
  a thread's block decides whether A and B are packed; unpacked problems run k as one block,
  packed ones cut it into KC-long blocks added into C one after the other, so the last bits of
  a GEMM may change with the thread count.
- Convolution backward splits the batch between threads and adds the per-thread dw/db partial
  sums at the end (in a fixed order): dw and db depend on the thread count in the last bits.
- Dropout masks come from a counter-based generator: the same mask on any thread count.
- The loss is summed in a fixed order after the per-row pass.
For a given thread count everything is repeatable bit for bit.
"""
import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops


@pytest.fixture(autouse=True)
def restore_threads():
    n = fastdl.get_num_threads()
    yield
    fastdl.set_num_threads(n)


def _model(kind):
    if kind == "mlp":   # the seed program's model
        return models.Sequential([layers.Flatten(input_shape=(28, 28)),
                                  layers.Dense(128, activation="relu"), layers.Dropout(0.2),
                                  layers.Dense(10, activation="softmax")])
    if kind == "cnn":
        return models.Sequential([layers.Conv2D(8, 3, activation="relu", input_shape=(12, 12, 2)),
                                  layers.MaxPooling2D(), layers.Dropout(0.1), layers.Flatten(),
                                  layers.Dense(10, activation="softmax")])
    if kind == "lstm":
        return models.Sequential([layers.LSTM(16, input_shape=(7, 5)),
                                  layers.Dense(10, activation="softmax")])
    return models.Sequential([layers.GRU(12, return_sequences=True, input_shape=(6, 4)),
                              layers.SimpleRNN(8), layers.Dense(10, activation="softmax")])


SHAPES = {"mlp": (600, 28, 28), "cnn": (160, 12, 12, 2), "lstm": (160, 7, 5), "rnn": (160, 6, 4)}


def _fit(kind, threads, seed=7, epochs=2):
    fastdl.set_num_threads(threads)
    fastdl.set_seed(seed)
    rng = np.random.default_rng(0)             # the data is fixed; the seed drives the rest
    x = rng.random(SHAPES[kind], dtype=np.float32)
    y = rng.integers(0, 10, SHAPES[kind][0])
    m = _model(kind)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=epochs, batch_size=32, verbose=0)   # shuffles and drops out
    return m.get_weights(), h.history["loss"]


def _same(a, b):
    return len(a) == len(b) and all(u.dtype == v.dtype and np.array_equal(u, v)
                                    for u, v in zip(a, b))


@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm", "rnn"])
@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_threads_bit_identical(kind, threads):
    w1, l1 = _fit(kind, threads)
    w2, l2 = _fit(kind, threads)
    assert _same(w1, w2)
    assert l1 == l2


def test_other_seed_other_weights():
    w1, _ = _fit("mlp", 1, seed=1, epochs=1)
    w2, _ = _fit("mlp", 1, seed=2, epochs=1)
    assert not _same(w1, w2)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm", "rnn"])
def test_models_close_across_thread_counts(kind):
    """Other thread counts: the same training up to rounding (the GEMM's k blocking and the
    convolution's partial gradient sums may change with the thread count)."""
    w1, l1 = _fit(kind, 1)
    w2, l2 = _fit(kind, 2)
    for u, v in zip(w1, w2):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(l1, l2, rtol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 300, 5), (64, 784, 128), (300, 37, 513),
                                   (1000, 64, 10), (33, 1000, 65)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_repeatable_and_close_across_thread_counts(shape, dtype):
    """Same thread count: the same bits, call after call. Other thread counts: each C element
    is still summed by one thread, but the per-thread block size decides whether operands are
    packed, and with it how k is blocked, so the last bits may differ."""
    m, k, n = shape
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)

    def run():
        return (ops.gemm(a, b, c, alpha=0.5, beta=2.0), ops.gemm(a.T.copy(), b, trans_a=True),
                ops.linear(a, b, c[0], activation="relu"))
    outs = {}
    for t in (1, 2, 3, 4):
        fastdl.set_num_threads(t)
        outs[t] = run()
        for u, v in zip(outs[t], run()):
            assert np.array_equal(u, v)
    eps = np.finfo(dtype).eps
    for t in (2, 3, 4):
        for u, v in zip(outs[1], outs[t]):
            np.testing.assert_allclose(u, v, rtol=0, atol=8 * eps * np.sqrt(k) * (np.abs(u).max() + 1))


def test_dropout_masks_do_not_depend_on_thread_count():
    x = np.ones((512, 300), np.float32)       # large enough for the threaded path
    masks = []
    for t in (1, 2, 4):
        fastdl.set_num_threads(t)
        masks.append(ops.dropout(x, 0.3, 12345))
    for m in masks[1:]:
        assert np.array_equal(masks[0], m)
    assert not np.array_equal(masks[0], ops.dropout(x, 0.3, 12346))
    fastdl.set_num_threads(2)
    d = ops.dropout_backward(x, 0.3, 12345)
    assert np.array_equal(d, masks[0])    # backward rebuilds the same mask from the seed
