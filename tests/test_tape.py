"""The autodiff core (fastdl._tape): GradientTape semantics, graph structure, errors."""
import numpy as np
import pytest

import fastdl
from fastdl import ops
from fastdl._tape import GradientTape, Tensor, primitive, record, register_variable, \
    unregister_variable, value


def rng(seed=0):
    return np.random.default_rng(seed)


def test_simple_gradient_and_tensor_behaviour():
    x = rng().standard_normal((3, 4))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.square(x))
        assert isinstance(y, Tensor) and y.shape == () and y.ndim == 0
    np.testing.assert_allclose(tape.gradient(y, x), 2 * x)
    assert float(y) == pytest.approx(float(np.sum(x * x)))
    np.testing.assert_allclose(y.numpy(), np.sum(x * x))


def test_only_watched_values_are_traced():
    x, c = rng(1).standard_normal(3), rng(2).standard_normal(3)
    with GradientTape() as tape:
        tape.watch(x)
        k = ops.exp(c)               # depends on nothing watched: a plain array
        y = ops.sum(ops.multiply(x, k))
    assert type(k) is np.ndarray
    gx, gc = tape.gradient(y, [x, c])
    np.testing.assert_allclose(gx, np.exp(c))
    assert gc is None


def test_outside_a_tape_ops_return_raw_arrays():
    x = np.arange(3.0)
    assert type(ops.add(x, 1)) is np.ndarray
    assert type(ops.sum(x)) in (np.float64, np.ndarray)


def test_persistent_tape_answers_several_gradients():
    x = np.array([1.0, 2.0])
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ops.sum(ops.square(x))
        z = ops.sum(ops.multiply(x, 3.0))
    np.testing.assert_allclose(tape.gradient(y, x), [2, 4])
    np.testing.assert_allclose(tape.gradient(z, x), [3, 3])
    np.testing.assert_allclose(tape.gradient(y, x), [2, 4])


def test_non_persistent_tape_second_gradient_raises():
    x = np.array([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.square(x))
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="only once"):
        tape.gradient(y, x)


def test_rejected_gradient_call_leaves_tape_usable():
    x = np.array([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.square(x)
    with pytest.raises(ValueError, match="scalar"):
        tape.gradient(y, x)
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=np.ones(2)), [2, 4])


def test_nested_tapes_each_follow_what_they_watch():
    x, y = np.array([2.0]), np.array([3.0])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(y)
            z = ops.sum(ops.multiply(ops.square(x), y))
        np.testing.assert_allclose(inner.gradient(z, y), [4.0])   # x^2
        assert inner.gradient is not None
        w = ops.multiply(z, 2.0)
    np.testing.assert_allclose(outer.gradient(w, x), [24.0])      # 2 * 2xy
    with GradientTape(persistent=True) as outer2:
        outer2.watch(x)
        with GradientTape() as inner2:
            inner2.watch(y)
            z = ops.sum(ops.multiply(x, y))
    assert outer2.gradient(z, y) is None                           # outer did not watch y
    np.testing.assert_allclose(outer2.gradient(z, x), [3.0])


def test_fan_out_sums_gradients():
    x = np.array([1.5, -2.0])
    with GradientTape() as tape:
        tape.watch(x)
        a = ops.multiply(x, 3.0)
        y = ops.sum(ops.add(ops.multiply(a, a), ops.sin(a)))   # a used three times
    np.testing.assert_allclose(tape.gradient(y, x), 3 * (2 * 3 * x + np.cos(3 * x)))


def test_same_array_twice_in_one_op():
    x = np.array([1.0, 2.0, 3.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(x, x))
    np.testing.assert_allclose(tape.gradient(y, x), 2 * x)


def test_multi_output_node():
    x = rng(3).standard_normal((6, 2))
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        a, b, c = ops.split(x, 3)
        only_b = ops.sum(ops.multiply(b, 5.0))
        both = ops.add(ops.sum(a), ops.sum(ops.square(c)))
    g = tape.gradient(only_b, x)
    np.testing.assert_allclose(g, np.r_[np.zeros((2, 2)), 5 * np.ones((2, 2)), np.zeros((2, 2))])
    g = tape.gradient(both, x)
    np.testing.assert_allclose(g, np.r_[np.ones((2, 2)), np.zeros((2, 2)), 2 * x[4:]])


def test_record_with_custom_multi_output_vjp():
    x = np.array([1.0, 2.0])

    def sincos(v):
        out = (np.sin(value(v)), np.cos(value(v)))
        return record("sincos", out, (v,),
                      lambda gs: ((0 if gs[0] is None else gs[0] * np.cos(value(v))) +
                                  (0 if gs[1] is None else -gs[1] * np.sin(value(v))),))
    with GradientTape() as tape:
        tape.watch(x)
        s, c = sincos(x)
        y = ops.sum(ops.add(s, ops.multiply(c, 2.0)))
    np.testing.assert_allclose(tape.gradient(y, x), np.cos(x) - 2 * np.sin(x))


def test_primitive_defines_a_differentiable_op():
    cube = primitive("cube", lambda v: v ** 3, lambda g, out, v: g * 3 * v * v)
    x = np.array([1.0, -2.0])
    assert type(cube(x)) is np.ndarray
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(cube(x))
    np.testing.assert_allclose(tape.gradient(y, x), 3 * x * x)


def test_broadcasting_gradients_are_reduced_to_the_source_shape():
    x = rng(4).standard_normal((3, 1))
    b = rng(5).standard_normal((4,))
    s = np.array(2.0)
    with GradientTape() as tape:
        tape.watch([x, b, s])
        y = ops.sum(ops.multiply(ops.add(x, b), s))      # (3, 4)
    gx, gb, gs = tape.gradient(y, [x, b, s])
    assert gx.shape == (3, 1) and gb.shape == (4,) and gs.shape == ()
    np.testing.assert_allclose(gx, np.full((3, 1), 4 * 2.0))
    np.testing.assert_allclose(gb, np.full(4, 3 * 2.0))
    np.testing.assert_allclose(gs, np.sum(x + b))


def test_unconnected_sources_give_none_or_zero():
    x, u = np.array([1.0]), np.array([5.0, 6.0])
    with GradientTape(persistent=True) as tape:
        tape.watch([x, u])
        y = ops.sum(ops.square(x))
    assert tape.gradient(y, u) is None
    gx, gu = tape.gradient(y, [x, u])
    assert gu is None
    np.testing.assert_array_equal(tape.gradient(y, u, unconnected_gradients="zero"), [0, 0])
    d = tape.gradient(y, {"x": x, "u": u})
    assert set(d) == {"x", "u"} and d["u"] is None


def test_non_scalar_target_needs_output_gradients():
    x = np.array([1.0, 2.0])
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ops.square(x)
    with pytest.raises(ValueError, match="scalar"):
        tape.gradient(y, x)
    np.testing.assert_allclose(tape.gradient(y, x, output_gradients=[1.0, 10.0]), [2, 40])
    with pytest.raises(ValueError, match="output_gradients has shape"):
        tape.gradient(y, x, output_gradients=np.ones(3))


def test_target_not_computed_under_the_tape():
    x = np.array([1.0])
    y = ops.sum(ops.square(x))
    with GradientTape() as tape:
        tape.watch(x)
    with pytest.raises(ValueError, match="not computed under this tape"):
        tape.gradient(y, x)
    with GradientTape() as other:
        other.watch(x)
        z = ops.sum(x)
    with GradientTape() as tape2:
        pass
    with pytest.raises(ValueError, match="not computed under this tape"):
        tape2.gradient(z, x)


def test_numpy_function_on_traced_value_raises_naming_it():
    x = np.array([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        t = ops.multiply(x, 2.0)
        with pytest.raises(TypeError, match="numpy.exp"):
            np.exp(t)
        with pytest.raises(TypeError, match="numpy.concatenate"):
            np.concatenate([t, t])
        with pytest.raises(TypeError, match="converted to a NumPy array"):
            np.asarray(t)
        with pytest.raises(TypeError, match="in place"):
            t[0] = 3.0
    # outside its recording the same Tensor is just its value
    np.testing.assert_array_equal(np.asarray(t), [2.0, 4.0])
    np.testing.assert_allclose(np.exp(t), np.exp([2.0, 4.0]))
    np.testing.assert_array_equal(np.concatenate([t, t]), [2, 4, 2, 4])


def test_numpy_operators_mixing_with_tensors_trace():
    x = rng(6).standard_normal((3, 4))
    a = rng(7).standard_normal((3, 4))
    m = rng(8).standard_normal((2, 3))
    with GradientTape() as tape:
        tape.watch(x)
        t = ops.multiply(x, 1.0)
        y1 = a + t                 # ndarray.__add__ -> Tensor.__array_ufunc__ -> ops.add
        y2 = m @ t                 # ndarray.__matmul__ -> ops.matmul
        y3 = a * t - a / (t * t + 1) + (-t) ** 2
        assert isinstance(y1, Tensor) and isinstance(y2, Tensor) and isinstance(y3, Tensor)
        mask = a < t               # comparisons: constants
        assert type(mask) is np.ndarray and mask.dtype == bool
        y = ops.sum(y1) + ops.sum(y2) + ops.sum(y3)
    g = tape.gradient(y, x)
    want = 1 + m.sum(0)[:, None] + a + a * 2 * x / (x * x + 1) ** 2 + 2 * x
    np.testing.assert_allclose(g, want, rtol=1e-10)


def test_tensor_python_operators_and_methods():
    x = rng(9).standard_normal((2, 3))
    with GradientTape() as tape:
        tape.watch(x)
        t = ops.multiply(x, 1.0)
        y = (t.T.reshape(6).sum() + t.mean(axis=0).sum() + abs(t).sum() + t[1, ::2].sum()
             + (2.0 ** t).sum() + t.astype("float64").sum() + (1 - t).sum())
    g = tape.gradient(y, x)
    sel = np.zeros((2, 3))
    sel[1, ::2] = 1
    want = 1 + 0.5 + np.sign(x) + sel + np.log(2) * 2.0 ** x + 1 - 1
    np.testing.assert_allclose(g, want, rtol=1e-10)
    assert len(t) == 2 and [r.shape for r in t] == [(3,), (3,)]


def test_variables_are_watched_automatically():
    w = register_variable(np.array([1.0, 2.0]))
    try:
        with GradientTape() as tape:
            y = ops.sum(ops.square(w))
        np.testing.assert_allclose(tape.gradient(y, w), [2, 4])
        with GradientTape(watch_accessed_variables=False) as tape:
            y = ops.sum(ops.square(w))
        assert not isinstance(y, Tensor)
    finally:
        unregister_variable(w)


def test_stop_gradient_and_stop_recording():
    x = np.array([3.0])
    with GradientTape() as tape:
        tape.watch(x)
        a = ops.square(x)
        y = ops.sum(ops.add(a, ops.stop_gradient(a)))
        with tape.stop_recording():
            b = ops.square(x)
        assert not isinstance(b, Tensor)
    np.testing.assert_allclose(tape.gradient(y, x), [6.0])


def test_watching_a_tensor_of_a_finished_recording():
    x = np.array([2.0])
    with GradientTape() as t1:
        t1.watch(x)
        old = ops.square(x)
    with GradientTape() as t2:
        t2.watch(old)
        y = ops.sum(ops.multiply(old, 3.0))
    np.testing.assert_allclose(t2.gradient(y, old), [3.0])


def test_gradient_keeps_float32():
    x = np.ones((2, 2), np.float32)
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(ops.exp(x), 0.5))
    g = tape.gradient(y, x)
    assert g.dtype == np.float32


def test_top_level_gradient_tape_is_the_same_class():
    tape_cls = getattr(fastdl, "GradientTape", GradientTape)
    assert tape_cls is GradientTape


def test_custom_training_loop_with_ops_learns():
    """A two-layer MLP written with keras.ops only, trained by GradientTape + SGD."""
    r = rng(11)
    x = r.standard_normal((256, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)           # XOR-like: needs the hidden layer
    w1 = (r.standard_normal((2, 16)) * 0.5).astype(np.float32)
    b1 = np.zeros(16, np.float32)
    w2 = (r.standard_normal((16, 2)) * 0.5).astype(np.float32)
    b2 = np.zeros(2, np.float32)
    params = [w1, b1, w2, b2]
    losses = []
    for step in range(300):
        with GradientTape() as tape:
            tape.watch(params)
            h = ops.tanh(ops.add(ops.matmul(x, w1), b1))
            logits = h @ w2 + b2                       # Tensor operators
            loss = ops.mean(ops.sparse_categorical_crossentropy(y, logits, from_logits=True))
        grads = tape.gradient(loss, params)
        for p, g in zip(params, grads):
            assert g.dtype == np.float32 and g.shape == p.shape
            p -= 0.5 * g                               # in place: the watched arrays stay
        losses.append(float(loss))
    acc = np.mean(np.argmax(ops.matmul(np.tanh(x @ w1 + b1), w2) + b2, axis=1) == y)
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9, (losses[0], losses[-1], acc)


def test_nested_tapes_share_the_leaf_of_an_array_both_watch():
    x = np.array([3.0])
    with GradientTape() as outer:
        outer.watch(x)
        a = ops.square(x)                       # the outer tape meets x first
        with GradientTape() as inner:
            inner.watch(x)
            b = ops.sum(ops.multiply(a, x))     # x^3
        # a was computed before the inner tape started: a constant for it (TensorFlow's rule)
        np.testing.assert_allclose(inner.gradient(b, x), [9.0])
        c = ops.sum(ops.multiply(b, 1.0))
    np.testing.assert_allclose(outer.gradient(c, x), [27.0])   # d x^3 / dx


def test_nested_tape_gradient_as_target_says_higher_order_is_not_supported():
    x = np.array([1.0, 2.0])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sum(ops.power(x, 3))
        g = inner.gradient(y, x)
    np.testing.assert_allclose(g, 3 * x ** 2)
    with pytest.raises(NotImplementedError, match="Higher-order gradients"):
        outer.gradient(g, x)
