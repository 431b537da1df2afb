"""Several Python threads calling fastdl at once: the kernels release the GIL and take their
scratch from a per-thread arena, so concurrent calls give exactly the results of one-at-a-time
calls (same thread count => same bits), and separate models can be fitted in parallel.

A single model object is not meant to be used from two threads at once (layers keep the
forward's state for backward); these tests give every thread its own model.
"""
import threading

import numpy as np
import pytest

import fastdl
from fastdl import layers, models, ops


@pytest.fixture(autouse=True)
def restore_threads():
    n = fastdl.get_num_threads()
    yield
    fastdl.set_num_threads(n)


def run_threads(fns):
    """Run fns concurrently (started together); returns their results, re-raises errors."""
    results = [None] * len(fns)
    errors = []
    start = threading.Barrier(len(fns))

    def wrap(i, fn):
        try:
            start.wait()
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i, f)) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    if errors:
        raise errors[0]
    return results


def _workloads(seed):
    """A mix of kernels with per-thread inputs: gemm (several shapes, threaded and not), conv
    forward/backward, pooling, the three recurrent cells, softmax, losses, dropout."""
    rng = np.random.default_rng(seed)
    f = np.float32
    a, b = rng.standard_normal((150, 200)).astype(f), rng.standard_normal((200, 90)).astype(f)
    x = rng.standard_normal((6, 14, 14, 3)).astype(f)
    w = rng.standard_normal((3, 3, 3, 8)).astype(f)
    xs = rng.standard_normal((5, 9, 6)).astype(f)
    h0 = np.zeros((5, 7), f)
    k4, r4 = rng.standard_normal((6, 28)).astype(f), rng.standard_normal((7, 28)).astype(f)
    k3, r3 = rng.standard_normal((6, 21)).astype(f), rng.standard_normal((7, 21)).astype(f)
    logits = rng.standard_normal((200, 10)).astype(f)
    labels = rng.integers(0, 10, 200)

    def run():
        y = ops.conv2d(x, w, strides=1, padding="same")
        dy = np.ones_like(y)
        return [
            ops.gemm(a, b), ops.gemm(b, a, trans_a=True, trans_b=True), ops.matmul_kernel(a[:3], b),
            y, *ops.conv2d_backward(dy, x, w, padding="same"),
            ops.max_pool2d(x, 2), ops.avg_pool2d_backward(np.ones((6, 7, 7, 3), f), x),
            ops.simple_rnn(xs, h0, k4[:, :7], r4[:, :7], np.zeros(7, f)),
            *ops.lstm(xs, h0, h0, k4, r4, np.zeros(28, f)),
            ops.gru(xs, h0, k3, r3, np.zeros((2, 21), f)),
            ops.softmax_kernel(logits), *ops.sparse_softmax_cross_entropy(logits, labels)[1:],
            ops.dropout(logits, 0.5, seed),
        ]
    return run


@pytest.mark.parametrize("kernel_threads", [1, 2])
def test_ops_from_many_threads_match_serial(kernel_threads):
    fastdl.set_num_threads(kernel_threads)
    runs = [_workloads(s) for s in range(4)]
    serial = [r() for r in runs]
    for _ in range(3):
        par = run_threads(runs * 2)          # two threads per workload, eight at once
        for got, want in zip(par, serial * 2):
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert np.array_equal(g, w)


def test_same_inputs_shared_between_threads_are_not_modified():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300)).astype(np.float32)
    a0 = a.copy()
    want = ops.gemm(a, a, trans_b=True)
    outs = run_threads([lambda: ops.gemm(a, a, trans_b=True)] * 6)
    for o in outs:
        assert np.array_equal(o, want)
    assert np.array_equal(a, a0)


def _build(kind, shape):
    if kind == "mlp":
        return models.Sequential([layers.Flatten(input_shape=shape),
                                  layers.Dense(64, activation="relu"),
                                  layers.Dense(10, activation="softmax")])
    if kind == "cnn":
        return models.Sequential([layers.Conv2D(6, 3, activation="relu", input_shape=shape),
                                  layers.MaxPooling2D(), layers.Flatten(),
                                  layers.Dense(10, activation="softmax")])
    return models.Sequential([layers.LSTM(12, input_shape=shape),
                              layers.Dense(10, activation="softmax")])


def _fit_fn(kind, init, x, y):
    def fit():
        m = _build(kind, x.shape[1:])
        m.set_weights(init)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        # no shuffling and no dropout: the library's random state is all the threads share
        h = m.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return m.get_weights(), h.history
    return fit


@pytest.mark.parametrize("kernel_threads", [1, 2])
def test_fit_separate_models_in_threads(kernel_threads):
    fastdl.set_num_threads(kernel_threads)
    rng = np.random.default_rng(5)
    jobs = []
    for kind, shape in [("mlp", (256, 12, 12)), ("cnn", (96, 10, 10, 2)), ("lstm", (128, 6, 5)),
                        ("mlp", (256, 8, 8))]:
        x = rng.random(shape, dtype=np.float32)
        y = rng.integers(0, 10, shape[0])
        fastdl.set_seed(len(jobs))
        jobs.append(_fit_fn(kind, _build(kind, shape[1:]).get_weights(), x, y))
    serial = [j() for j in jobs]
    par = run_threads(jobs)
    for (wp, hp), (ws, hs) in zip(par, serial):
        assert hp == hs
        for u, v in zip(wp, ws):
            assert np.array_equal(u, v)
