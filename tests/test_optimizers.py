"""Optimizers against NumPy references of the Keras 3 formulas over many steps."""
import contextlib

import numpy as np
import pytest

import fastdl
from fastdl import ops, optimizers

import ref_nn


def _run(opt, ref_step, dtype, steps=60, shape=(37, 5), seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    q = p.astype(np.float64)
    state = None
    for t in range(1, steps + 1):
        g = rng.standard_normal(shape).astype(dtype)
        opt.apply_gradients([(g, p)])
        q, state = ref_step(q, g.astype(np.float64), state, t)
    return p, q


TOL = {np.float32: 2e-5, np.float64: 1e-12}


@contextlib.contextmanager
def _capability(cap):
    """Runs the block at SIMD level cap (skipping where this CPU lacks it), then restores
    the level that was set."""
    if cap not in ops.supported_capabilities():
        pytest.skip(f"{cap} not supported on this CPU")
    old = ops.get_capability()
    try:
        ops._C.set_capability(cap)
        yield
    finally:
        ops._C.set_capability(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, None), (0.9, False, None),
                                                  (0.9, True, None), (0.5, False, 0.01)])
def test_sgd(dtype, momentum, nesterov, wd):
    def ref(q, g, m, t):
        m = np.zeros_like(q) if m is None else m
        q, m = ref_nn.sgd(q, g, m, 0.05, momentum, nesterov, wd or 0.0)
        return q, m
    p, q = _run(optimizers.SGD(0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd), ref, dtype)
    np.testing.assert_allclose(p, q, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,wd", [(optimizers.Adam, 0.0), (optimizers.AdamW, 0.004)])
def test_adam_adamw(dtype, cls, wd):
    def ref(q, g, s, t):
        m, v = (np.zeros_like(q), np.zeros_like(q)) if s is None else s
        q, m, v = ref_nn.adam(q, g, m, v, t, lr=0.01, wd=wd)
        return q, (m, v)
    p, q = _run(cls(learning_rate=0.01), ref, dtype, steps=100)
    np.testing.assert_allclose(p, q, rtol=TOL[dtype] * 5, atol=TOL[dtype] * 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_rmsprop(dtype, momentum):
    def ref(q, g, s, t):
        v, mo = (np.zeros_like(q), np.zeros_like(q)) if s is None else s
        q, v, mo = ref_nn.rmsprop(q, g, v, mo, lr=0.01, momentum=momentum)
        return q, (v, mo)
    p, q = _run(optimizers.RMSprop(0.01, momentum=momentum), ref, dtype, steps=80)
    np.testing.assert_allclose(p, q, rtol=TOL[dtype] * 5, atol=TOL[dtype] * 5)


@pytest.mark.parametrize("cap", ["generic", "avx2", "avx512"])
def test_every_isa_level_matches_reference(cap):
    def ref(q, g, s, t):
        m, v = (np.zeros_like(q), np.zeros_like(q)) if s is None else s
        q, m, v = ref_nn.adam(q, g, m, v, t, lr=0.01)
        return q, (m, v)
    with _capability(cap):
        p, q = _run(optimizers.Adam(0.01), ref, np.float32, steps=30, shape=(1031,))
    np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)


def test_large_threaded_update_matches_single_thread():
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(300001).astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)
    out = []
    n = fastdl.get_num_threads()
    try:
        for t in (1, 2):
            fastdl.set_num_threads(t)
            p = p0.copy()
            opt = optimizers.Adam(0.01)
            for _ in range(3):
                opt.apply_gradients([(g, p)])
            out.append(p)
    finally:
        fastdl.set_num_threads(n)
    np.testing.assert_array_equal(out[0], out[1])


def test_apply_gradients_in_place_and_state():
    p = np.ones((3, 2), np.float32)
    before = p
    opt = optimizers.get("adam")
    opt.apply_gradients(zip([np.ones_like(p)], [p]))
    assert p is before and opt.iterations == 1
    assert np.all(p < 1)
    it, state = opt.get_state([p])
    assert it == 1 and len(state) == 2
    opt2 = optimizers.Adam()
    opt2.set_state([p], it, state)
    assert opt2.iterations == 1


def test_errors():
    with pytest.raises(ValueError, match="known optimizers"):
        optimizers.get("adagradx")
    p = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="shape"):
        optimizers.SGD().apply_gradients([(np.ones(4, np.float32), p)])


def test_update_bad_arguments(dev):
    # On both compiled modules (dev: NumPy arrays for fastdl._C, CuPy arrays for fastdl._cuda).
    def ones(*shape, dtype=np.float32):
        return dev(np.ones(shape, dtype))

    with pytest.raises(ValueError, match="grad must have shape"):
        ops.sgd_update(ones(3), ones(4), learning_rate=0.1)
    with pytest.raises(ValueError, match="contiguous"):
        ops.sgd_update(ones(4, 4)[:, ::2], ones(4, 2), learning_rate=0.1)
    with pytest.raises(TypeError, match="grad has dtype float64"):
        ops.sgd_update(ones(3), ones(3, dtype=np.float64), learning_rate=0.1)
    with pytest.raises(TypeError, match="param must be float32 or float64"):
        ops.sgd_update(ones(3, dtype=np.int32), ones(3, dtype=np.int32), learning_rate=0.1)
    with pytest.raises(ValueError, match="momentum > 0 needs a momentum slot m"):
        ops.sgd_update(ones(3), ones(3), learning_rate=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum > 0 needs a momentum slot"):
        ops.rmsprop_update(ones(3), ones(3), ones(3), momentum=0.9)
    with pytest.raises(ValueError, match="v must have shape"):
        ops.adam_update(ones(3), ones(3), ones(3), ones(2), step=1)
    if dev.has_readonly:
        ro = np.ones(3, np.float32)
        ro.flags.writeable = False
        with pytest.raises(ValueError, match="param is read-only"):
            ops.sgd_update(dev(ro), ones(3), learning_rate=0.1)


# ------------------------------------------------------------ multi-tensor Adam
ODD_SHAPES = [(1,), (7, 13), (0,), (3,), (101, 1031), (5,)]   # 104,249 elements in all


def _adam_state(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    p = [rng.standard_normal(s).astype(dtype) for s in shapes]
    g = [rng.standard_normal(s).astype(dtype) for s in shapes]
    m = [(0.1 * rng.standard_normal(s)).astype(dtype) for s in shapes]
    v = [np.abs(rng.standard_normal(s)).astype(dtype) for s in shapes]
    return p, g, m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_adam_update_multi_matches_one_call_per_tensor(dtype, threads):
    # every element gets the bits of adam_update, for any split of the elements over
    # threads (two threads split this many elements in the middle of the largest array)
    wds = [0.0, 0.01, 0.0, 0.5, 0.004, 0.0]
    p1, g, m1, v1 = _adam_state(ODD_SHAPES, dtype, 1)
    p2, m2, v2 = [a.copy() for a in p1], [a.copy() for a in m1], [a.copy() for a in v1]
    n = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(threads)
        for t in (1, 2, 3):
            ops.adam_update_multi(p1, g, m1, v1, step=t, learning_rate=0.01, weight_decay=wds)
            for i in range(len(p2)):
                ops.adam_update(p2[i], g[i], m2[i], v2[i], step=t, learning_rate=0.01,
                                weight_decay=wds[i])
    finally:
        fastdl.set_num_threads(n)
    for a, b in zip(p1 + m1 + v1, p2 + m2 + v2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_multi_matches_reference(dtype):
    p, g, m, v = _adam_state([(3, 5), (11,), (1,)], dtype, 2)
    ref = [ref_nn.adam(a.astype(np.float64), b.astype(np.float64), c.astype(np.float64),
                       d.astype(np.float64), 4, lr=0.01, wd=0.1)
           for a, b, c, d in zip(p, g, m, v)]
    ops.adam_update_multi(p, g, m, v, step=4, learning_rate=0.01, weight_decay=0.1)
    for got, want in zip(zip(p, m, v), ref):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=TOL[dtype] * 5, atol=TOL[dtype] * 5)


@pytest.mark.parametrize("cap", ["generic", "avx2", "avx512"])
def test_adam_update_multi_every_isa_level_matches_generic(cap):
    out = {}
    for c in ("generic", cap):
        with _capability(c):
            p, g, m, v = _adam_state(ODD_SHAPES, np.float32, 3)
            ops.adam_update_multi(p, g, m, v, step=2, learning_rate=0.01)
        out[c] = p + m + v
    for a, b in zip(out["generic"], out[cap]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adam_update_multi_bad_arguments():
    p, g, m, v = _adam_state([(3,), (4, 2)], np.float32, 4)
    with pytest.raises(ValueError, match="same length"):
        ops.adam_update_multi(p, g[:1], m, v, step=1)
    with pytest.raises(ValueError, match=r"v\[1\] must have shape"):
        ops.adam_update_multi(p, g, m, [v[0], v[0]], step=1)
    with pytest.raises(ValueError, match=r"grads\[1\] must have shape"):
        ops.adam_update_multi(p, [g[0], g[0]], m, v, step=1)
    with pytest.raises(TypeError, match=r"params\[1\] has another dtype"):
        p64 = [p[0], p[1].astype(np.float64)]
        ops.adam_update_multi(p64, [g[0], g[1].astype(np.float64)], [m[0], m[1].astype(np.float64)],
                              [v[0], v[1].astype(np.float64)], step=1)
    with pytest.raises(ValueError, match=r"m\[0\] must be C-contiguous"):
        ops.adam_update_multi([np.ones((4, 2), np.float32)], [np.ones((4, 2), np.float32)],
                              [np.ones((4, 4), np.float32)[:, ::2]], [np.ones((4, 2), np.float32)],
                              step=1)
    ro = p[0].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        ops.adam_update_multi([ro], g[:1], m[:1], v[:1], step=1)
    ops.adam_update_multi([], [], [], [], step=1)   # nothing to update


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_optimizer_several_weights_same_bits_as_one_at_a_time(amsgrad):
    # apply_gradients on all weights at once (the multi-tensor call) against one weight
    # per call, with weight decay excluded for one of them and a float64 weight among them
    rng = np.random.default_rng(5)
    ps = [rng.standard_normal(s).astype(np.float32) for s in [(9, 4), (4,), (1,)]]
    ps.append(rng.standard_normal(6))
    qs = [p.copy() for p in ps]
    a = optimizers.AdamW(0.01, amsgrad=amsgrad)
    b = optimizers.AdamW(0.01, amsgrad=amsgrad)
    a.exclude_from_weight_decay([ps[1]])
    b.exclude_from_weight_decay([qs[1]])
    for _ in range(4):
        gs = [rng.standard_normal(p.shape).astype(p.dtype) for p in ps]
        a.apply_gradients(zip(gs, ps))
        for g, q in zip(gs, qs):
            b.apply_gradients([(g, q)])
            b._iterations -= 1
        b._iterations += 1
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p, q)


def test_repeated_pairs_list_follows_every_change():
    # A training step plan hands apply_gradients the same list of (gradient, weight) pairs
    # at every step, and the per-step lists are kept for it; a changed list, weight decay,
    # exclusion or optimizer state must still be seen, with the bits of a fresh list.
    rng = np.random.default_rng(6)
    ps = [rng.standard_normal(s).astype(np.float32) for s in [(5, 3), (3,)]]
    qs = [p.copy() for p in ps]
    gs = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
    a, b = optimizers.AdamW(0.01), optimizers.AdamW(0.01)
    pairs = list(zip(gs, ps))

    def both(change=None):
        if change:
            change(a, b)
        a.apply_gradients(pairs)                    # the same list every time
        b.apply_gradients(list(zip(gs, qs)))        # a new list every time
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(p, q)
    both()
    both()
    assert a._plain_lists is not None               # kept for the repeated list
    gs[0][...] = rng.standard_normal(gs[0].shape)   # new values in the same arrays
    both()
    g2 = rng.standard_normal(ps[1].shape).astype(np.float32)
    pairs[1] = (g2, ps[1])                           # the list changed in place

    def new_grad(a, b):
        gs[1] = g2
    both(new_grad)
    both(lambda a, b: (setattr(a, "weight_decay", 0.1), setattr(b, "weight_decay", 0.1)))
    both(lambda a, b: (a.exclude_from_weight_decay([ps[0]]),
                       b.exclude_from_weight_decay([qs[0]])))
    both(lambda a, b: (a._move(None), b._move(None)))   # state dropped (a device move)
    grads64 = [g.astype(np.float64) for g in gs]      # converted: never kept
    a.apply_gradients(list(zip(grads64, ps)))
    assert a._plain_lists is None
