"""Keras 3 optimizers with fused one-pass C++ updates.

The base class owns the loop over (gradient, parameter) pairs, the step count
and the state slots (one set per parameter array, created on first sight);
each subclass writes its update rule for one parameter. ``apply_gradients``
updates the arrays in place.
"""
import numpy as np

from . import _device, _tape, ops

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "get", "KNOWN"]


class Optimizer:
    _slot_names = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, name=None, **kwargs):
        for k in ("clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.pop(k, None) is not None:
                raise NotImplementedError(f"{type(self).__name__}({k}=...) is not supported")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(kwargs)}")
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._state = {}  # id(param) -> (param, [slot arrays])

    # ------------------------------------------------------------ the loop
    def _current_lr(self):
        lr = self.learning_rate
        return float(lr(self.iterations) if callable(lr) else lr)

    def _slots(self, p):
        entry = self._state.get(id(p))
        if entry is None or entry[0] is not p:
            slots = [_zeros_like(p) for _ in self._slot_names]
            entry = (p, slots)
            self._state[id(p)] = entry
        return entry[1]

    def apply_gradients(self, grads_and_vars):
        """One step: every (grad, param) pair is updated in place; None grads are skipped."""
        lr = self._current_lr()
        self.iterations += 1
        step = self.iterations
        wd = self.weight_decay or 0.0
        for g, p in grads_and_vars:
            if g is None:
                continue
            g = _tape.value(g)
            if type(g) is not np.ndarray and not _device.is_device(g):
                g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {p.shape}")
            if g.dtype != p.dtype or not g.flags.c_contiguous:
                g = _device.xp(g).ascontiguousarray(g, dtype=p.dtype)
            self._update(p, g, self._slots(p), lr, step, wd)
        return step

    def apply(self, grads, trainable_variables):
        return self.apply_gradients(zip(grads, trainable_variables))

    def _update(self, p, g, slots, lr, step, wd):
        raise NotImplementedError

    # ------------------------------------------------------------ state (save/load)
    def get_state(self, params):
        """[iterations, then the slots of each param in order] as NumPy arrays."""
        out = []
        for p in params:
            out.extend(np.array(_host(s)) for s in self._slots(p))
        return self.iterations, out

    def set_state(self, params, iterations, arrays):
        arrays = list(arrays)
        need = len(self._slot_names) * len(params)
        if len(arrays) != need:
            raise ValueError(f"optimizer state has {len(arrays)} arrays, expected {need}")
        it = iter(arrays)
        for p in params:
            for s in self._slots(p):
                s[...] = next(it)
        self.iterations = int(iterations)

    def _move(self, to_array):
        self._state = {}

    def get_config(self):
        lr = self.learning_rate
        return {"name": self.name, "learning_rate": float(lr) if not callable(lr) else None,
                "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("learning_rate") is None:
            config.pop("learning_rate", None)
        return cls(**config)


def _zeros_like(p):
    z = _device.allocator(p)(p.shape, p.dtype)
    z.fill(0)
    return z


_host = _device.to_host


class SGD(Optimizer):
    """Keras 3 SGD: m = momentum*m - lr*g; p += m (nesterov: p += momentum*m - lr*g)."""
    _slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        if self.momentum == 0.0:
            self._slot_names = ()

    def _update(self, p, g, slots, lr, step, wd):
        ops.sgd_update(p, g, slots[0] if slots else None, learning_rate=lr,
                       momentum=self.momentum, nesterov=self.nesterov, weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras 3 Adam: m += (g-m)(1-b1); v += (g*g-v)(1-b2);
    p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)."""
    _slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, **kw):
        if amsgrad:
            raise NotImplementedError("Adam(amsgrad=True) is not supported")
        super().__init__(learning_rate, weight_decay, **kw)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _update(self, p, g, slots, lr, step, wd):
        ops.adam_update(p, g, slots[0], slots[1], step=step, learning_rate=lr, beta_1=self.beta_1,
                        beta_2=self.beta_2, epsilon=self.epsilon, weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: p -= lr*wd*p before the Adam step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **kw):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay=weight_decay, **kw)


class RMSprop(Optimizer):
    """Keras 3 RMSprop: v = rho*v + (1-rho)*g*g; inc = lr*g/sqrt(v+eps); p -= inc
    (momentum: mom = momentum*mom + inc; p -= mom)."""
    _slot_names = ("velocity", "momentum")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, **kw):
        if centered:
            raise NotImplementedError("RMSprop(centered=True) is not supported")
        super().__init__(learning_rate, weight_decay, **kw)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        if self.momentum == 0.0:
            self._slot_names = ("velocity",)

    def _update(self, p, g, slots, lr, step, wd):
        ops.rmsprop_update(p, g, slots[0], slots[1] if len(slots) > 1 else None,
                           learning_rate=lr, rho=self.rho, momentum=self.momentum,
                           epsilon=self.epsilon, weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon}


_REGISTRY = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
KNOWN = tuple(_REGISTRY)


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _REGISTRY:
        return _REGISTRY[identifier["class_name"].lower()].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown optimizer {identifier!r}; known optimizers: SGD, Adam, AdamW, RMSprop "
                     f"(as strings: {', '.join(KNOWN)})")


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
