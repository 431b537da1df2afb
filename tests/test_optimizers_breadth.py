"""Optimizers beyond SGD/Adam/RMSprop, clipping, learning-rate schedules and
(de)serialization, against NumPy references of Keras 3's formulas (float64)."""
import math

import numpy as np
import pytest

import fastdl as keras
from fastdl import optimizers
from fastdl.optimizers import schedules


def _run(opt, ref_step, steps=6, shapes=((5, 3), (4,)), seed=0, dtype=np.float64):
    """Apply `steps` random gradients with opt and with ref_step(params, grads, state, t,
    lr) on float64 copies; return both."""
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    qs = [p.astype(np.float64) for p in ps]
    state = None
    for t in range(1, steps + 1):
        gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
        lr = opt.learning_rate
        opt.apply_gradients(zip(gs, ps))
        qs, state = ref_step(qs, [g.astype(np.float64) for g in gs], state, t, lr)
    return ps, qs


def _per_param(step):
    """A reference for one parameter lifted to a list of parameters."""
    def ref(qs, gs, state, t, lr):
        state = state or [None] * len(qs)
        out = [step(q, g, s, t, lr) for q, g, s in zip(qs, gs, state)]
        return [o[0] for o in out], [o[1] for o in out]
    return ref


def _close(ps, qs, tol=1e-12):
    for p, q in zip(ps, qs):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)


def test_adam_amsgrad():
    b1, b2, eps = 0.9, 0.999, 1e-7

    def step(q, g, s, t, lr):
        m, v, vh = s or (0 * q, 0 * q, 0 * q)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        vh = np.maximum(vh, v)
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return q - m * alpha / (np.sqrt(vh) + eps), (m, v, vh)
    _close(*_run(optimizers.Adam(0.05, amsgrad=True), _per_param(step)))
    # AdamW with amsgrad: decay first
    def step_w(q, g, s, t, lr):
        return step(q - lr * 0.004 * q, g, s, t, lr)
    _close(*_run(optimizers.AdamW(0.05, amsgrad=True), _per_param(step_w)))


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_rmsprop_centered(momentum):
    rho, eps = 0.9, 1e-7

    def step(q, g, s, t, lr):
        v, a, mo = s or (0 * q, 0 * q, 0 * q)
        v = rho * v + (1 - rho) * g * g
        a = rho * a + (1 - rho) * g
        inc = lr * g / np.sqrt(v - a * a + eps)
        if momentum:
            mo = momentum * mo + inc
            return q - mo, (v, a, mo)
        return q - inc, (v, a, mo)
    _close(*_run(optimizers.RMSprop(0.01, momentum=momentum, centered=True), _per_param(step)))


def test_adagrad():
    eps = 1e-7

    def step(q, g, s, t, lr):
        acc = (0 * q + 0.1) if s is None else s
        acc = acc + g * g
        return q - lr * g / np.sqrt(acc + eps), acc
    _close(*_run(optimizers.Adagrad(0.1), _per_param(step)))
    opt = optimizers.Adagrad()
    assert (opt.learning_rate, opt.initial_accumulator_value, opt.epsilon) == (0.001, 0.1, 1e-7)


def test_adadelta():
    rho, eps = 0.95, 1e-7

    def step(q, g, s, t, lr):
        eg, ed = s or (0 * q, 0 * q)
        eg = rho * eg + (1 - rho) * g * g
        d = -np.sqrt(ed + eps) * g / np.sqrt(eg + eps)
        ed = rho * ed + (1 - rho) * d * d
        return q + lr * d, (eg, ed)
    _close(*_run(optimizers.Adadelta(1.0), _per_param(step)))
    opt = optimizers.Adadelta()
    assert (opt.learning_rate, opt.rho, opt.epsilon) == (0.001, 0.95, 1e-7)


def test_adamax():
    b1, b2, eps = 0.9, 0.999, 1e-7

    def step(q, g, s, t, lr):
        m, u = s or (0 * q, 0 * q)
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        return q - lr * m / ((1 - b1 ** t) * (u + eps)), (m, u)
    _close(*_run(optimizers.Adamax(0.02), _per_param(step)))


def test_nadam():
    b1, b2, eps = 0.9, 0.999, 1e-7
    prod = [1.0]

    def ref(qs, gs, state, t, lr):
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod[0] *= u_t
        p_t, p_t1 = prod[0], prod[0] * u_t1
        state = state or [(0 * q, 0 * q) for q in qs]
        out_q, out_s = [], []
        for q, g, (m, v) in zip(qs, gs, state):
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            m_hat = u_t1 * m / (1 - p_t1) + (1 - u_t) * g / (1 - p_t)
            v_hat = v / (1 - b2 ** t)
            out_q.append(q - m_hat * lr / (np.sqrt(v_hat) + eps))
            out_s.append((m, v))
        return out_q, out_s
    _close(*_run(optimizers.Nadam(0.02), ref, steps=8))


def test_lion():
    b1, b2 = 0.9, 0.99

    def step(q, g, s, t, lr):
        m = 0 * q if s is None else s
        q = q - lr * np.sign(m * b1 + g * (1 - b1))
        return q, m * b2 + g * (1 - b2)
    _close(*_run(optimizers.Lion(0.01), _per_param(step)))
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)


def test_lamb():
    b1, b2, eps = 0.9, 0.999, 1e-7

    def step(q, g, s, t, lr):
        m, v = s or (0 * q, 0 * q)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        upd = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        wn, un = np.linalg.norm(q), np.linalg.norm(upd)
        r = wn / un if wn > 0 and un > 0 else 1.0
        return q - r * lr * upd, (m, v)
    _close(*_run(optimizers.Lamb(0.01), _per_param(step)))


@pytest.mark.parametrize("kw", [{}, {"l1_regularization_strength": 0.05,
                                     "l2_regularization_strength": 0.1,
                                     "l2_shrinkage_regularization_strength": 0.01,
                                     "beta": 0.5, "learning_rate_power": -0.3}])
def test_ftrl(kw):
    lp = -kw.get("learning_rate_power", -0.5)
    l1 = kw.get("l1_regularization_strength", 0.0)
    l2s = kw.get("l2_shrinkage_regularization_strength", 0.0)
    beta = kw.get("beta", 0.0)

    def step(q, g, s, t, lr):
        acc, lin = s or (0 * q + 0.1, 0 * q)
        l2 = kw.get("l2_regularization_strength", 0.0) + beta / (2 * lr)
        new = acc + g * g
        lin = lin + g + 2 * l2s * q - (new ** lp - acc ** lp) / lr * q
        quad = new ** lp / lr + 2 * l2
        return (np.clip(lin, -l1, l1) - lin) / quad, (new, lin)
    _close(*_run(optimizers.Ftrl(0.1, **kw), _per_param(step)))
    with pytest.raises(ValueError, match="learning_rate_power"):
        optimizers.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="l1_regularization_strength"):
        optimizers.Ftrl(l1_regularization_strength=-1.0)


@pytest.mark.parametrize("lr,relative", [(0.001, True), (0.5, True), (0.05, False)])
def test_adafactor(lr, relative):
    e1, e2, decay, clip = 1e-30, 1e-3, -0.8, 1.0

    def step(q, g, s, t, lr_now):
        r, c, v = s or (np.zeros(q.shape[:-1]) if q.ndim > 1 else 0.0,
                        np.zeros(q.shape[:-2] + q.shape[-1:]) if q.ndim > 1 else 0.0, 0 * q)
        a = min(lr_now, 1 / np.sqrt(t)) if relative else lr_now
        rho = min(a, 1 / np.sqrt(t))
        alpha = max(e2, np.sqrt(np.mean(q * q))) * rho
        g2 = g * g + e1
        b2 = 1 - t ** decay
        if q.ndim > 1:
            r = b2 * r + (1 - b2) * g2.mean(-1)
            c = b2 * c + (1 - b2) * g2.mean(-2)
            v = (r / r.mean(-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v = b2 * v + (1 - b2) * g2
        u = g / np.sqrt(v)
        u = u / max(1.0, np.sqrt(np.mean(u * u)) / clip)
        return q - alpha * u, (r, c, v)
    _close(*_run(optimizers.Adafactor(lr, relative_step=relative), _per_param(step),
                 shapes=((2, 5, 3), (5, 3), (4,))), tol=1e-11)


@pytest.mark.parametrize("cls", [optimizers.Nadam, optimizers.Adamax, optimizers.Adagrad,
                                 optimizers.Adadelta, optimizers.Lion, optimizers.Lamb,
                                 optimizers.Ftrl, optimizers.Adafactor])
def test_weight_decay_and_float32(cls):
    # float32 parameters stay float32 and in place; weight decay is p -= lr*wd*p first
    p = np.ones((3, 2), np.float32)
    before = p
    opt = cls(learning_rate=0.1, weight_decay=0.5)
    opt.apply_gradients([(np.zeros_like(p), p)])
    assert p is before and p.dtype == np.float32
    if cls in (optimizers.Nadam, optimizers.Adamax, optimizers.Lion):
        np.testing.assert_allclose(p, 0.95, rtol=1e-6)
    else:
        assert np.all(p <= 0.95 + 1e-6)


def test_build_variables_and_exclude_from_weight_decay():
    a, b = np.ones(3), np.ones(2)
    opt = optimizers.Adam(0.1, weight_decay=0.5)
    opt.build([a, b])
    assert len(opt.variables) == 4 and all(np.all(v == 0) for v in opt.variables)
    opt.exclude_from_weight_decay(var_list=[b])
    opt2 = optimizers.SGD(0.1, weight_decay=0.5)
    opt2.exclude_from_weight_decay(var_list=[b])
    opt2.apply_gradients([(np.zeros(3), a), (np.zeros(2), b)])
    np.testing.assert_allclose(a, 0.95)
    np.testing.assert_allclose(b, 1.0)
    with pytest.raises(NotImplementedError, match="var_names"):
        opt.exclude_from_weight_decay(var_names=["bias"])


# ------------------------------------------------------------------ clipping
def _sgd_once(grads, **kw):
    ps = [np.zeros_like(g) for g in grads]
    optimizers.SGD(1.0, **kw).apply_gradients(zip([g.copy() for g in grads], ps))
    return [-p for p in ps]   # the gradients as applied


def test_clipnorm_clips_each_gradient():
    g1 = np.array([3.0, 4.0])          # norm 5
    g2 = np.array([0.3, 0.4])          # norm 0.5: untouched
    a1, a2 = _sgd_once([g1, g2], clipnorm=1.0)
    np.testing.assert_allclose(a1, g1 / 5.0)
    np.testing.assert_allclose(a2, g2)


def test_global_clipnorm_scales_all_together():
    g1, g2 = np.array([3.0, 0.0]), np.array([0.0, 4.0])   # global norm 5
    a1, a2 = _sgd_once([g1, g2], global_clipnorm=2.5)
    np.testing.assert_allclose(a1, g1 * 0.5)
    np.testing.assert_allclose(a2, g2 * 0.5)
    b1, b2 = _sgd_once([g1, g2], global_clipnorm=10.0)
    np.testing.assert_allclose(b1, g1)
    np.testing.assert_allclose(b2, g2)


def test_clipvalue():
    (a,) = _sgd_once([np.array([-3.0, 0.2, 7.0])], clipvalue=0.5)
    np.testing.assert_allclose(a, [-0.5, 0.2, 0.5])


def test_only_one_clipping_argument():
    # Keras 3: at most one of clipnorm, clipvalue and global_clipnorm
    for kw in ({"clipnorm": 1.0, "clipvalue": 0.1}, {"clipnorm": 1.0, "global_clipnorm": 1.0},
               {"clipvalue": 1.0, "global_clipnorm": 1.0}):
        with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and "
                                             "`global_clipnorm`"):
            optimizers.Adam(**kw)


def test_clipping_does_not_touch_the_gradient_arrays():
    g = np.array([3.0, 4.0])
    p = np.zeros(2)
    optimizers.Adam(clipnorm=1.0).apply_gradients([(g, p)])
    np.testing.assert_array_equal(g, [3.0, 4.0])


def test_clipping_with_adam_matches_reference():
    eps, b1, b2 = 1e-7, 0.9, 0.999

    def ref(qs, gs, state, t, lr):
        n = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
        gs = [g * min(1.0, 0.7 / n) for g in gs]
        state = state or [(0 * q, 0 * q) for q in qs]
        out_q, out_s = [], []
        for q, g, (m, v) in zip(qs, gs, state):
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            out_q.append(q - m * alpha / (np.sqrt(v) + eps))
            out_s.append((m, v))
        return out_q, out_s
    _close(*_run(optimizers.Adam(0.01, global_clipnorm=0.7), ref))


def test_clip_argument_errors():
    for k in ("clipnorm", "clipvalue", "global_clipnorm"):
        with pytest.raises(ValueError, match=k):
            optimizers.SGD(**{k: -1.0})
    with pytest.raises(TypeError, match="unexpected keyword"):
        optimizers.SGD(clip_norm=1.0)


def test_clipping_in_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (100 * rng.standard_normal((32, 1))).astype(np.float32)
    keras.set_seed(0)
    m = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    m.compile(optimizers.SGD(0.1, clipvalue=1e-3), "mse")
    w0 = [w.copy() for w in m.get_weights()]
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    # one step, each gradient entry clipped to 1e-3: each weight moves by at most 1e-4
    for a, b in zip(m.get_weights(), w0):
        assert np.max(np.abs(a - b)) <= 1e-4 * 1.001


# ------------------------------------------------------------------ learning rate
def test_learning_rate_readable_and_settable():
    opt = optimizers.Adam(0.01)
    assert opt.learning_rate == 0.01 and isinstance(opt.learning_rate, float)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    opt.learning_rate = np.float32(0.25)
    assert opt.learning_rate == 0.25
    p = np.zeros(2)
    optimizers.SGD(0.1).apply_gradients([(np.ones(2), p)])
    sgd = optimizers.SGD(0.1)
    sgd.learning_rate = 1.0
    sgd.apply_gradients([(np.ones(2), p)])
    np.testing.assert_allclose(p, -1.1)
    assert sgd.iterations == 1
    with pytest.raises(TypeError, match="number"):
        opt.learning_rate = "fast"
    with pytest.raises(TypeError, match="number"):
        optimizers.SGD(learning_rate=None)


def test_schedule_learning_rate_is_not_settable_and_follows_iterations():
    sched = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    opt = optimizers.SGD(sched)
    p = np.zeros(1)
    seen = []
    for _ in range(4):
        seen.append(opt.learning_rate)
        opt.apply_gradients([(np.ones(1), p)])
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025, 0.0125])
    np.testing.assert_allclose(p, -sum(seen))
    assert opt.iterations == 4
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1


def test_callable_learning_rate():
    calls = []
    opt = optimizers.SGD(lambda: 0.5)
    p = np.zeros(1)
    opt.apply_gradients([(np.ones(1), p)])
    np.testing.assert_allclose(p, -0.5)
    opt2 = optimizers.SGD(lambda step: calls.append(step) or 0.1)
    opt2.apply_gradients([(np.ones(1), p)])
    assert calls == [0]


def test_schedule_returning_a_non_number_is_a_clear_error():
    class Bad(schedules.LearningRateSchedule):
        def __call__(self, step):
            return "oops"
    opt = optimizers.SGD(Bad())
    with pytest.raises(TypeError, match="schedule Bad.*must give a number"):
        opt.apply_gradients([(np.ones(1), np.zeros(1))])
    with pytest.raises(TypeError, match="must give a number"):
        optimizers.SGD(lambda: None).apply_gradients([(np.ones(1), np.zeros(1))])


STEPS = [0, 1, 3, 7, 10, 15, 25, 40]


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    st = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    for k in STEPS:
        assert s(k) == pytest.approx(0.1 * 0.5 ** (k / 10))
        assert st(k) == pytest.approx(0.1 * 0.5 ** (k // 10))


def test_piecewise_constant_decay():
    s = schedules.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1])
    assert [s(k) for k in (0, 5, 6, 10, 11, 100)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    with pytest.raises(ValueError, match="1 less than the length of values"):
        schedules.PiecewiseConstantDecay([5, 10], [1.0, 0.5])


def test_inverse_time_decay():
    s = schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5)
    st = schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5, staircase=True)
    for k in STEPS:
        assert s(k) == pytest.approx(0.1 / (1 + 0.5 * k / 5))
        assert st(k) == pytest.approx(0.1 / (1 + 0.5 * (k // 5)))


def test_polynomial_decay():
    s = schedules.PolynomialDecay(0.1, decay_steps=20, end_learning_rate=0.01, power=2.0)
    for k in STEPS:
        p = min(k, 20) / 20
        assert s(k) == pytest.approx((0.1 - 0.01) * (1 - p) ** 2 + 0.01)
    c = schedules.PolynomialDecay(0.1, decay_steps=10, cycle=True)
    for k in STEPS:
        d = 10 * (1 if k == 0 else math.ceil(k / 10))
        assert c(k) == pytest.approx((0.1 - 0.0001) * (1 - k / d) + 0.0001)


def test_cosine_decay():
    s = schedules.CosineDecay(0.1, decay_steps=20, alpha=0.1)
    for k in STEPS:
        f = min(k, 20) / 20
        assert s(k) == pytest.approx(0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * f)) + 0.1))


def test_cosine_decay_warmup():
    s = schedules.CosineDecay(0.0, decay_steps=20, warmup_target=0.2, warmup_steps=10)
    for k in STEPS:
        if k < 10:
            want = 0.2 * k / 10
        else:
            f = (min(k, 30) - 10) / 20
            want = 0.2 * 0.5 * (1 + math.cos(math.pi * f))
        assert s(k) == pytest.approx(want)
    assert s(10) == pytest.approx(0.2)


def test_cosine_decay_restarts():
    s = schedules.CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
    assert s(0) == pytest.approx(0.1)
    assert s(5) == pytest.approx(0.05)
    assert s(10) == pytest.approx(0.05)          # second period starts at half the peak
    assert s(20) == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s(30) == pytest.approx(0.025)


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.9)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.CosineDecay(0.1, decay_steps=-5)
    with pytest.raises(TypeError, match="initial_learning_rate"):
        schedules.InverseTimeDecay("0.1", 10, 0.5)
    with pytest.raises(NotImplementedError, match="get_config"):
        schedules.LearningRateSchedule().get_config()


@pytest.mark.parametrize("sched", [
    schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True),
    schedules.PiecewiseConstantDecay([3, 6], [0.3, 0.2, 0.1]),
    schedules.PolynomialDecay(0.1, 10, 0.001, 2.0, cycle=True),
    schedules.InverseTimeDecay(0.1, 10, 0.5),
    schedules.CosineDecay(0.01, 100, alpha=0.1, warmup_target=0.1, warmup_steps=10),
    schedules.CosineDecayRestarts(0.1, 10),
])
def test_schedule_serialization_roundtrip(sched):
    d = schedules.serialize(sched)
    assert d["class_name"] == type(sched).__name__
    back = schedules.deserialize(d)
    assert type(back) is type(sched) and back.get_config() == sched.get_config()
    for k in (0, 4, 9, 33):
        assert back(k) == sched(k)
    opt = optimizers.deserialize(optimizers.serialize(optimizers.SGD(sched, momentum=0.5)))
    assert type(opt._learning_rate) is type(sched) and opt.momentum == 0.5
    assert opt.learning_rate == sched(0)


def test_custom_schedule_serialization():
    class Halve(schedules.LearningRateSchedule):
        def __init__(self, lr):
            self.lr = lr

        def __call__(self, step):
            return self.lr / (step + 1)

        def get_config(self):
            return {"lr": self.lr}
    d = optimizers.serialize(optimizers.Adam(Halve(0.4)))
    with pytest.raises(ValueError, match="unknown learning rate schedule"):
        optimizers.deserialize(d)
    opt = optimizers.deserialize(d, custom_objects={"Halve": Halve})
    assert opt.learning_rate == 0.4


# ------------------------------------------------------------------ (de)serialization
ALL = [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.RMSprop,
       optimizers.Nadam, optimizers.Adamax, optimizers.Adagrad, optimizers.Adadelta,
       optimizers.Lion, optimizers.Lamb, optimizers.Ftrl, optimizers.Adafactor]


@pytest.mark.parametrize("cls", ALL)
def test_get_serialize_deserialize(cls):
    assert type(optimizers.get(cls.__name__.lower())) is cls
    assert type(optimizers.get(cls.__name__)) is cls
    opt = cls(learning_rate=0.123, clipvalue=0.5)
    cfg = opt.get_config()
    assert cfg["learning_rate"] == 0.123 and cfg["clipvalue"] == 0.5
    assert cfg["name"] == cls.__name__.lower()
    for k in ("weight_decay", "clipnorm", "global_clipnorm", "use_ema", "ema_momentum"):
        assert k in cfg
    back = cls.from_config(cfg)
    assert back.get_config() == cfg
    d = optimizers.serialize(opt)
    assert d["class_name"] == cls.__name__
    assert optimizers.deserialize(d).get_config() == cfg
    assert optimizers.get(d).get_config() == cfg


def test_serialization_of_specific_arguments():
    o = optimizers.deserialize(optimizers.serialize(
        optimizers.Adam(amsgrad=True, beta_1=0.8, global_clipnorm=2.0)))
    assert o.amsgrad and o.beta_1 == 0.8 and o.global_clipnorm == 2.0
    o = optimizers.deserialize(optimizers.serialize(optimizers.RMSprop(centered=True, rho=0.8)))
    assert o.centered and o.rho == 0.8
    o = optimizers.deserialize(optimizers.serialize(optimizers.Adagrad(initial_accumulator_value=0.5)))
    assert o.initial_accumulator_value == 0.5


def test_get_errors():
    with pytest.raises(ValueError, match="known optimizers.*Nadam"):
        optimizers.get("adamz")
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.Adam(use_ema=True, ema_momentum=2.0)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        optimizers.Adam(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.Adam(gradient_accumulation_steps=1)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_gradient_accumulation(clip):
    b1, b2, eps, n = 0.9, 0.999, 1e-7, 3
    rng = np.random.default_rng(0)
    p = rng.standard_normal(4)
    q, m, v, acc = p.copy(), 0 * p, 0 * p, 0 * p
    opt = optimizers.Adam(0.05, gradient_accumulation_steps=n, clipnorm=clip)
    for t in range(1, 10):
        g = rng.standard_normal(4)
        before = p.copy()
        opt.apply_gradients([(g, p)])
        if t % n:
            acc = acc + g
            np.testing.assert_array_equal(p, before)   # no update between
            continue
        gm = (acc + g) / n
        acc = 0 * p
        if clip:
            gm = gm * min(1.0, clip / np.linalg.norm(gm))
        m = m + (gm - m) * (1 - b1)
        v = v + (gm * gm - v) * (1 - b2)
        k = t // n                    # the update rule counts updates, as Keras does
        q = q - m * 0.05 * math.sqrt(1 - b2 ** k) / (1 - b1 ** k) / (np.sqrt(v) + eps)
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    assert opt.iterations == 3        # Keras: updates made, 9 calls // 3
    it, state = opt.get_state([p])
    assert it == 9 and len(state) == 3    # m, v and the accumulated gradients
    o2 = optimizers.Adam(0.05, gradient_accumulation_steps=n, clipnorm=clip)
    o2.set_state([p], it, state)
    assert o2.iterations == 3
    back = optimizers.deserialize(optimizers.serialize(opt))
    assert back.gradient_accumulation_steps == n


@pytest.mark.parametrize("cls", [optimizers.Nadam, optimizers.Adamax, optimizers.Adafactor])
def test_accumulating_two_equals_one_step_with_the_mean(cls):
    rng = np.random.default_rng(2)
    p, q = rng.standard_normal((3, 4)), None
    q = p.copy()
    acc, plain = cls(0.01, gradient_accumulation_steps=2), cls(0.01)
    for _ in range(3):
        g1, g2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        acc.apply_gradients([(g1, p)])
        acc.apply_gradients([(g2, p)])
        plain.apply_gradients([((g1 + g2) / 2, q)])
    np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    assert acc.iterations == plain.iterations == 3


@pytest.mark.parametrize("freq", [None, 3])
def test_ema(freq):
    mom = 0.9

    def ref(qs, gs, state, t, lr):
        (q,), (g,) = qs, gs
        avg = state if state is not None else 0 * q
        q = q - lr * g
        m = mom if t > 1 else 0.0
        avg = m * avg + (1 - m) * q
        if freq and t % freq == 0:
            q = avg.copy()
        return [q], avg
    opt = optimizers.SGD(0.1, use_ema=True, ema_momentum=mom, ema_overwrite_frequency=freq)
    rng = np.random.default_rng(0)
    p = rng.standard_normal(5)
    q, avg = [p.copy()], None
    for t in range(1, 8):
        g = rng.standard_normal(5)
        opt.apply_gradients([(g, p)])
        q, avg = ref(q, [g], avg, t, 0.1)
        np.testing.assert_allclose(p, q[0], rtol=1e-12, atol=1e-12)
    it, state = opt.get_state([p])
    assert len(state) == 1
    np.testing.assert_allclose(state[0], avg, rtol=1e-12)
    opt.finalize_variable_values([p])
    np.testing.assert_allclose(p, avg, rtol=1e-12)
    assert optimizers.deserialize(optimizers.serialize(opt)).use_ema


def test_ema_in_fit_ends_with_the_averages():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    keras.set_seed(0)
    m = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    m.compile(optimizers.Adam(0.05, use_ema=True, ema_momentum=0.5), "mse")
    seen = []
    m.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[keras.callbacks.LambdaCallback(
        on_train_end=lambda logs: seen.append([w.copy() for w in m.get_weights()]))])
    avgs = [m.optimizer._slots(w)[-1] for w in m.trainable_weights]
    for a, b in zip(m.get_weights(), avgs):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(seen[0], avgs):     # already in place when on_train_end runs
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", ALL)
def test_state_save_load_continues_identically(cls, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = rng.standard_normal((32, 2)).astype(np.float32)
    keras.set_seed(1)
    m = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    m.compile(cls(learning_rate=0.01), "mse")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    m.save(tmp_path / "m.keras")
    m2 = keras.models.load_model(tmp_path / "m.keras")
    assert type(m2.optimizer) is cls and m2.optimizer.iterations == 4
    m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    m2.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_model_saved_with_a_schedule(tmp_path):
    keras.set_seed(0)
    m = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    m.compile(optimizers.Adam(schedules.PolynomialDecay(0.1, 10)), "mse")
    m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
    m.save(tmp_path / "m.keras")
    m2 = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(m2.optimizer._learning_rate, schedules.PolynomialDecay)
    assert m2.optimizer.learning_rate == pytest.approx(schedules.PolynomialDecay(0.1, 10)(1))


def test_every_optimizer_trains():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    for cls, lr, f in [(optimizers.Nadam, 0.05, 0.5), (optimizers.Adamax, 0.05, 0.5),
                       (optimizers.Adagrad, 0.3, 0.5), (optimizers.Adadelta, 5.0, 0.9),
                       (optimizers.Lion, 0.05, 0.5)]:
        keras.set_seed(0)
        m = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
        m.compile(cls(learning_rate=lr), "mse")
        h = m.fit(x, y, epochs=10, batch_size=16, verbose=0)
        assert h.history["loss"][-1] < f * h.history["loss"][0], cls.__name__


@pytest.mark.parametrize("make", [
    lambda: optimizers.Adam(0.01, amsgrad=True, weight_decay=0.1),
    lambda: optimizers.RMSprop(0.01, centered=True, momentum=0.5),
    lambda: optimizers.Nadam(0.01), lambda: optimizers.Adamax(0.01),
    lambda: optimizers.Adagrad(0.1), lambda: optimizers.Adadelta(1.0),
    lambda: optimizers.Lion(0.01), lambda: optimizers.Lamb(0.01),
    lambda: optimizers.Ftrl(0.1, l1_regularization_strength=0.01), lambda: optimizers.Adafactor(),
    lambda: optimizers.SGD(0.1, momentum=0.9, clipnorm=0.5),
    lambda: optimizers.Adam(0.01, global_clipnorm=0.5),
    lambda: optimizers.Adam(0.01, clipvalue=0.1)])
def test_device_arrays_match_numpy(dev, make):
    # On both compiled modules: the same steps on NumPy arrays and on the device's arrays,
    # and the state saved from the device restores there.
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 3)).astype(np.float32)
    gs = [rng.standard_normal((7, 3)).astype(np.float32) for _ in range(4)]
    p_host, p_dev = p0.copy(), dev(p0.copy())
    o_host, o_dev = make(), make()
    for g in gs:
        o_host.apply_gradients([(g, p_host)])
        o_dev.apply_gradients([(dev(g), p_dev)])
    np.testing.assert_allclose(dev.host(p_dev), p_host, rtol=1e-5, atol=1e-6)
    it, state = o_dev.get_state([p_dev])
    o3 = make()
    o3.set_state([p_dev], it, state)
    assert o3.iterations == 4
