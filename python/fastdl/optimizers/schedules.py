"""Learning-rate schedules, as Keras 3's ``keras.optimizers.schedules``.

A schedule is called with the optimizer's step count (``optimizer.iterations``,
0 for the first update) and returns the learning rate for that step, a float.
Each one has ``get_config``/``from_config``; ``serialize``/``deserialize`` turn
schedules into JSON-able dicts and back (custom ones are found by class name
through ``custom_objects=`` or ``register_keras_serializable``).
"""
import math
import numbers

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize"]


class LearningRateSchedule:
    """Base class: subclasses define ``__call__(step)`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _positive(name, v, what):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v > 0:
        raise ValueError(f"{what}: argument `{name}` must be > 0. Received: {name}={v!r}")


def _number(name, v, what):
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{what}: argument `{name}` must be a number. Received: {name}={v!r}")
    return float(v)


def _step(step):
    try:
        return float(step)
    except (TypeError, ValueError):
        raise TypeError(f"a learning rate schedule is called with the step number (an int); "
                        f"got {step!r}") from None


class _StepDecay(LearningRateSchedule):
    """initial_learning_rate decayed by decay_rate every decay_steps steps: the two
    schedules below differ only in how (the progress p is floored with staircase=True)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name=None):
        what = type(self).__name__
        _number("initial_learning_rate", initial_learning_rate, what)
        _positive("decay_steps", decay_steps, what)
        _number("decay_rate", decay_rate, what)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name or what

    def _progress(self, step):
        p = _step(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """initial_learning_rate * decay_rate ** (step / decay_steps)."""

    def __call__(self, step):
        return float(self.initial_learning_rate) * float(self.decay_rate) ** self._progress(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <=
    boundaries[i], values[-1] after boundaries[-1]."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}.")
        for v in values:
            _number("values", v, "PiecewiseConstantDecay")
        for b in boundaries:
            _number("boundaries", b, "PiecewiseConstantDecay")
        if any(b1 > b2 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: boundaries must be increasing, got "
                             f"{boundaries}")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        s = _step(step)
        for b, v in zip(self.boundaries, self.values):
            if s <= b:
                return float(v)
        return float(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """(initial - end) * (1 - step/decay_steps) ** power + end, step capped at
    decay_steps (with cycle=True, decay_steps grows to the next multiple instead)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _number("initial_learning_rate", initial_learning_rate, "PolynomialDecay")
        _positive("decay_steps", decay_steps, "PolynomialDecay")
        _number("end_learning_rate", end_learning_rate, "PolynomialDecay")
        _number("power", power, "PolynomialDecay")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        s = _step(step)
        d = float(self.decay_steps)
        if self.cycle:
            d = d * (1.0 if s == 0 else math.ceil(s / d))
        else:
            s = min(s, d)
        p = s / d
        init, end = float(self.initial_learning_rate), float(self.end_learning_rate)
        return (init - end) * (1.0 - p) ** self.power + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(_StepDecay):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps)."""

    def __call__(self, step):
        return float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) *
                                                    self._progress(step))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from initial_learning_rate (or, with warmup_target, a linear warmup
    from initial_learning_rate to warmup_target over warmup_steps, then cosine decay
    from warmup_target) down to alpha times that over decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _number("initial_learning_rate", initial_learning_rate, "CosineDecay")
        _positive("decay_steps", decay_steps, "CosineDecay")
        _number("alpha", alpha, "CosineDecay")
        if warmup_target is not None:
            _number("warmup_target", warmup_target, "CosineDecay")
        if not isinstance(warmup_steps, numbers.Real) or isinstance(warmup_steps, bool) or \
                warmup_steps < 0:
            raise ValueError(f"CosineDecay: argument `warmup_steps` must be >= 0. Received: "
                             f"warmup_steps={warmup_steps!r}")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, decay_from):
        frac = step / float(self.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        s = _step(step)
        init = float(self.initial_learning_rate)
        d = float(self.decay_steps)
        if self.warmup_target is None:
            return self._decay(min(s, d), init)
        w = float(self.warmup_steps)
        target = float(self.warmup_target)
        s = min(s, d + w)
        if s < w:
            return (target - init) * (s / w) + init
        return self._decay(s - w, target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of first_decay_steps, each t_mul
    times longer than the last, peaks m_mul times lower."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        _number("initial_learning_rate", initial_learning_rate, "CosineDecayRestarts")
        _positive("first_decay_steps", first_decay_steps, "CosineDecayRestarts")
        _positive("t_mul", t_mul, "CosineDecayRestarts")
        _number("m_mul", m_mul, "CosineDecayRestarts")
        _number("alpha", alpha, "CosineDecayRestarts")
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        frac = _step(step) / float(self.first_decay_steps)
        t_mul, m_mul = float(self._t_mul), float(self._m_mul)
        if t_mul == 1.0:
            i = math.floor(frac)
            frac -= i
        else:
            i = math.floor(math.log(1.0 - frac * (1.0 - t_mul)) / math.log(t_mul))
            sum_r = (1.0 - t_mul ** i) / (1.0 - t_mul)
            frac = (frac - sum_r) / t_mul ** i
        cosine = 0.5 * m_mul ** i * (1.0 + math.cos(math.pi * frac))
        return float(self.initial_learning_rate) * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_BUILTIN = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                    InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """{'module', 'class_name', 'config', 'registered_name'}, as Keras writes it."""
    s = learning_rate_schedule
    if not isinstance(s, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got {s!r}")
    from ..saving import get_registered_name
    return {"module": "keras.optimizers.schedules", "class_name": type(s).__name__,
            "config": s.get_config(), "registered_name": get_registered_name(s)}


def deserialize(config, custom_objects=None):
    """A schedule from serialize()'s dict (custom classes via custom_objects or
    register_keras_serializable)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"deserialize: expected a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    name = config["class_name"]
    cls = _BUILTIN.get(name)
    if cls is None:
        from ..saving import _lookup
        cls = (_lookup(config.get("registered_name") or name, custom_objects)
               or _lookup(name, custom_objects))
    if cls is None:
        raise ValueError(f"unknown learning rate schedule {name!r}; known: "
                         f"{', '.join(_BUILTIN)} (pass custom ones with custom_objects=)")
    return cls.from_config(dict(config.get("config", {})))
