"""Keras 3 optimizers with fused one-pass C++ updates.

The base class owns the loop over (gradient, parameter) pairs, the step count,
gradient clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``), weight
decay, the learning rate (a float, a ``schedules.LearningRateSchedule`` or a
callable), gradient accumulation, the moving average of the weights (``use_ema``)
and the state slots (one set per parameter array, created on first sight); each
subclass writes its update rule for one parameter. SGD, Adam,
AdamW and RMSprop use the C++ kernels; the others (and Adam's amsgrad,
RMSprop's centered form) are element-wise array math. ``apply_gradients``
updates the arrays in place.
"""
import inspect
import math
import numbers
import operator

import numpy as np

from .. import _device, _tape, constraints, ops
from .._variable import Variable
from . import schedules
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Nadam", "Adamax", "Adagrad",
           "Adadelta", "Lion", "Lamb", "Ftrl", "Adafactor", "get", "serialize", "deserialize",
           "schedules", "KNOWN"]


def _lr_value(v, where):
    """A learning rate as a float; a clear error for anything that is not a number."""
    if isinstance(v, bool) or v is None:
        ok = False
    else:
        try:
            f = float(v)
            ok = getattr(v, "ndim", 0) == 0 or getattr(v, "size", 1) == 1
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise TypeError(f"{where} must give a number (a float learning rate), got {v!r} "
                        f"of type {type(v).__name__}")
    return f


def _takes_no_args(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    for p in sig.parameters.values():
        if p.default is inspect.Parameter.empty and p.kind in (
                inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            return False
    return True


class Optimizer:
    _slot_names = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        what = type(self).__name__
        if kwargs:
            raise TypeError(f"{what}: unexpected keyword argument(s) {', '.join(kwargs)}")
        if use_ema and not 0.0 <= ema_momentum <= 1.0:
            raise ValueError(f"{what}: ema_momentum must be in [0, 1], got {ema_momentum!r}")
        if ema_overwrite_frequency is not None and (
                not isinstance(ema_overwrite_frequency, numbers.Integral) or
                ema_overwrite_frequency < 1):
            raise ValueError(f"{what}: ema_overwrite_frequency must be a positive integer or "
                             f"None, got {ema_overwrite_frequency!r}")
        if loss_scale_factor is not None:
            raise NotImplementedError(f"{what}(loss_scale_factor=...) is not supported")
        if gradient_accumulation_steps is not None and (
                not isinstance(gradient_accumulation_steps, numbers.Integral) or
                isinstance(gradient_accumulation_steps, bool) or gradient_accumulation_steps < 2):
            raise ValueError(f"`gradient_accumulation_steps` must be an integer >= 2. Received: "
                             f"gradient_accumulation_steps={gradient_accumulation_steps!r}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                     ("global_clipnorm", global_clipnorm)):
            if v is not None and (not isinstance(v, numbers.Real) or isinstance(v, bool) or
                                  not v > 0):
                raise ValueError(f"{what}: {k} must be a positive number or None, got {v!r}")
        if weight_decay is not None and (not isinstance(weight_decay, numbers.Real) or
                                         isinstance(weight_decay, bool) or weight_decay < 0):
            raise ValueError(f"{what}: weight_decay must be a non-negative number or None, got "
                             f"{weight_decay!r}")
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = None
        self.gradient_accumulation_steps = (None if gradient_accumulation_steps is None else
                                            int(gradient_accumulation_steps))
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.name = name or what.lower()
        self._iterations = 0   # calls of apply_gradients
        self._state = {}  # id(param) -> (param, [slot arrays])
        self._no_decay = None   # ids of the parameters exclude_from_weight_decay named
        self._plain_lists = None   # _apply_plain's lists for the last list of pairs

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self):
        """The learning rate of the next step, a float (settable, unless the optimizer
        was made with a LearningRateSchedule)."""
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or (callable(value) and
                                                       not hasattr(value, "__float__")):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object as "
                            "its `learning_rate` constructor argument, hence its learning rate "
                            "is not settable. If you need the learning rate to be settable, you "
                            "should instantiate the optimizer with a float `learning_rate` "
                            "argument.")
        self._learning_rate = _lr_value(value, f"{type(self).__name__}: learning_rate")

    def _current_lr(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return _lr_value(lr(self._iterations),
                             f"the learning rate schedule {type(lr).__name__} (at step "
                             f"{self._iterations})")
        if callable(lr):
            v = lr() if _takes_no_args(lr) else lr(self._iterations)
            return _lr_value(v, f"the learning rate function {getattr(lr, '__name__', lr)!r}")
        return lr

    @property
    def iterations(self):
        """The number of updates so far (of apply_gradients calls; with
        gradient_accumulation_steps, of the updates they made), as Keras counts."""
        n = self.gradient_accumulation_steps
        return self._iterations // n if n else self._iterations

    @iterations.setter
    def iterations(self, value):
        n = self.gradient_accumulation_steps
        self._iterations = int(value) * (n or 1)

    # ------------------------------------------------------------ the loop
    def _slots(self, p):
        entry = self._state.get(id(p))
        if entry is None or entry[0] is not p:
            slots = [self._new_slot(p, n) for n in self._slot_names]
            if self.gradient_accumulation_steps:
                slots.append(_zeros_like(p))   # the gradients summed since the last update
            if self.use_ema:
                slots.append(_zeros_like(p))   # the moving average of p
            entry = (p, slots)
            self._state[id(p)] = entry
        return entry[1]

    def _apply_plain(self, grads_and_vars):
        """apply_gradients without clipping, accumulation or EMA: one pass (the hot path)."""
        lr = self._current_lr()
        self._iterations += 1
        step = self._iterations
        self._begin_step(step)
        wd = self.weight_decay or 0.0
        skip = self._no_decay
        c = self._plain_lists
        pairs = tuple(grads_and_vars) if type(grads_and_vars) is list else None
        if (c is not None and pairs is not None and c[0] is grads_and_vars and
                c[2] is self._state and c[3] == wd and c[4] is skip and len(pairs) == len(c[1])
                and all(map(operator.is_, pairs, c[1]))):
            # the same pairs as the last step (a training step plan's list): the same
            # arrays and slots, so the same per-step lists
            ps, gs, slots, wds, params = c[5]
        else:
            ps, gs, slots, wds, params = self._plain_step_lists(grads_and_vars, wd, skip)
            self._plain_lists = None
            # cached only when each gradient is the pair's own array and each parameter
            # array is the pair's, or the plain array a Variable holds for its lifetime
            if pairs is not None and len(ps) == len(pairs) and \
                    all(g is pair[0] and (q is p or type(p) is Variable)
                        for q, p, g, pair in zip(ps, params, gs, pairs)):
                self._plain_lists = (grads_and_vars, pairs, self._state, wd, skip,
                                     (ps, gs, slots, wds, params))
        self._update_many(ps, gs, slots, wds, lr, step)
        if constraints._attached:
            constraints.apply(params)   # kernel_constraint & co., after the update (Keras)
        return self.iterations

    def _plain_step_lists(self, grads_and_vars, wd, skip):
        """(params' arrays, gradients, slots, weight decays, params) of one update."""
        ps, gs, slots, wds, params = [], [], [], [], []
        for g, p in grads_and_vars:
            if g is None:
                continue
            if type(g) is not np.ndarray:
                g = _tape.value(g)
                if type(g) is not np.ndarray and not _device.is_device(g):
                    g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {p.shape}")
            if g.dtype != p.dtype or not g.flags.c_contiguous:
                g = _device.xp(g).ascontiguousarray(g, dtype=p.dtype)
            params.append(p)
            # (a Variable's plain array: the update kernels' fast type check)
            ps.append(p if type(p) is np.ndarray else _tape.value(p))
            gs.append(g)
            slots.append(self._slots(p))
            wds.append(0.0 if skip and id(p) in skip else wd)
        return ps, gs, slots, wds, params

    def _update_many(self, ps, gs, slots, wds, lr, step):
        """_update on every parameter of one step (lists: the arrays, their gradients,
        slots and weight decays); an optimizer with a multi-tensor kernel updates them
        all in one call."""
        for p, g, sl, wd in zip(ps, gs, slots, wds):
            self._update(p, g, sl, lr, step, wd)

    def _new_slot(self, p, name):
        return _zeros_like(p)

    def apply_gradients(self, grads_and_vars):
        """One step: every (grad, param) pair is updated in place; None grads are skipped."""
        if _tape._state.active:   # called under a GradientTape: the update is not recorded
            with _tape.untraced():
                return self.apply_gradients(grads_and_vars)
        hook = self.__dict__.get("_gradient_hook")
        if hook is not None:
            # fit under fastdl.distribution.DataParallel: the gradients are reduced over
            # the ranks first (the hook calls back here without itself)
            return hook(grads_and_vars)
        if not (self.use_ema or self.gradient_accumulation_steps or self.clipnorm or
                self.global_clipnorm or self.clipvalue):
            return self._apply_plain(grads_and_vars)
        lr = self._current_lr()
        pairs = []
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
            pairs.append((g, p))
        params = [p for _, p in pairs]
        raw = self._iterations
        self._iterations = raw + 1
        k = len(self._slot_names)
        n_acc = self.gradient_accumulation_steps
        before = raw // n_acc if n_acc else raw   # Keras' `iterations` before this call
        step = before + 1                          # the update rules' step, from 1
        if n_acc:
            # Keras 3: sum the gradients; every n_acc-th call update with their mean (the
            # update rules then count updates, not calls)
            update = (raw + 1) % n_acc == 0
            mean = []
            for g, p in pairs:
                acc = self._slots(p)[k]
                if update:
                    mean.append(((g + acc) / g.dtype.type(n_acc), p))
                    acc.fill(0)
                else:
                    acc += g
            pairs = mean
        if pairs:
            if self.clipnorm or self.global_clipnorm or self.clipvalue:
                pairs = self._clip(pairs)
            wd = self.weight_decay or 0.0
            self._begin_step(step)
            skip = self._no_decay
            if not (self.use_ema or n_acc):
                for g, p in pairs:
                    self._update(_tape.value(p), g, self._slots(p), lr, step,
                                 0.0 if skip and id(p) in skip else wd)
                constraints.apply(params)
                return self.iterations
            for g, p in pairs:
                self._update(_tape.value(p), g, self._slots(p)[:k], lr, step,
                             0.0 if skip and id(p) in skip else wd)
        if not self.use_ema:
            constraints.apply(params)
            return self.iterations
        # Keras 3: average = m*average + (1-m)*p (m = 0 at the first step), and every
        # ema_overwrite_frequency steps the parameters take the average's value
        mom = self.ema_momentum if before != 0 else 0.0
        overwrite = bool(self.ema_overwrite_frequency) and step % self.ema_overwrite_frequency == 0
        for p in params:
            avg = self._slots(p)[-1]
            t = p.dtype.type
            avg *= t(mom)
            avg += t(1.0 - mom) * p
            if overwrite:
                p[...] = avg
        constraints.apply(params)
        return self.iterations

    def finalize_variable_values(self, var_list):
        """With use_ema, give the variables their moving averages (fit calls this at
        the end of training)."""
        if not self.use_ema:
            return
        for p in var_list:
            entry = self._state.get(id(p))
            if entry is not None and entry[0] is p:
                p[...] = entry[1][-1]

    def build(self, var_list):
        """Create the state slots of every variable now (they are made on first use
        otherwise)."""
        for p in var_list:
            self._slots(p)

    @property
    def variables(self):
        """The state arrays (slots) made so far, parameter by parameter."""
        return [s for _, slots in self._state.values() for s in slots]

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Apply no weight decay to the arrays in var_list (var_names, which Keras
        matches against variable names, is not supported: fastdl's weights are plain
        arrays)."""
        if var_names:
            raise NotImplementedError("exclude_from_weight_decay(var_names=...) is not "
                                      "supported; pass the arrays as var_list")
        self._no_decay = {id(p) for p in (var_list or [])} or None

    def apply(self, grads, trainable_variables):
        return self.apply_gradients(zip(grads, trainable_variables))

    def _clip(self, pairs):
        """clipnorm (each gradient), global_clipnorm (all together) or clipvalue."""
        if self.clipnorm:
            c = float(self.clipnorm)
            out = []
            for g, p in pairs:
                n = _norm(g)
                out.append((g * g.dtype.type(c / n) if n > c else g, p))
            return out
        if self.global_clipnorm:
            c = float(self.global_clipnorm)
            n = math.sqrt(sum(_norm(g) ** 2 for g, _ in pairs))
            if not math.isfinite(n):
                return [(g * g.dtype.type(float("nan")), p) for g, p in pairs]
            if n <= c:
                return pairs
            return [(g * g.dtype.type(c / n), p) for g, p in pairs]
        v = float(self.clipvalue)
        return [(_device.xp(g).clip(g, -v, v), p) for g, p in pairs]

    def _begin_step(self, step):
        pass

    def _update(self, p, g, slots, lr, step, wd):
        raise NotImplementedError

    # ------------------------------------------------------------ state (save/load)
    def get_state(self, params):
        """[iterations, then the slots of each param in order] as NumPy arrays."""
        out = []
        for p in params:
            out.extend(np.array(_host(s)) for s in self._slots(p))
        return self._iterations, out

    def set_state(self, params, iterations, arrays):
        arrays = list(arrays)
        need = (len(self._slot_names) + (1 if self.use_ema else 0) +
                (1 if self.gradient_accumulation_steps else 0)) * len(params)
        if len(arrays) != need:
            raise ValueError(f"optimizer state has {len(arrays)} arrays, expected {need}")
        it = iter(arrays)
        for p in params:
            for s in self._slots(p):
                s[...] = _device.xp(s).asarray(next(it))
        self._iterations = int(iterations)

    def _move(self, to_array):
        self._state = {}

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            lr = None
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        lr = config.get("learning_rate")
        if lr is None:
            config.pop("learning_rate", None)
        elif isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr, custom_objects)
        return cls(**config)



def _norm(g):
    xp = _device.xp(g)
    return float(xp.sqrt(xp.sum(xp.square(g.astype(np.float64)))))


def _zeros_like(p):
    z = _device.allocator(p)(p.shape, p.dtype)
    z.fill(0)
    return z


_host = _device.to_host


def _decay(p, lr, wd):
    """Keras 3's weight decay, before the update: p -= lr * wd * p."""
    if wd:
        p -= p.dtype.type(lr * wd) * p


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


class _Moments(Optimizer):
    """The optimizers with Adam's arguments: beta_1, beta_2 and epsilon (Keras 3 defaults)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Adam(_Moments):
    """Keras 3 Adam: m += (g-m)(1-b1); v += (g*g-v)(1-b2); (amsgrad: v_hat = max(v_hat, v),
    used for v); p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)."""
    _slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, **kw):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, **kw)
        self.amsgrad = bool(amsgrad)
        if self.amsgrad:
            self._slot_names = ("m", "v", "v_hat")

    def _update_many(self, ps, gs, slots, wds, lr, step):
        dt = ps[0].dtype if ps else None
        if self.amsgrad or not all(type(p) is np.ndarray and p.dtype == dt for p in ps):
            return Optimizer._update_many(self, ps, gs, slots, wds, lr, step)
        ops.adam_update_multi(ps, gs, [s[0] for s in slots], [s[1] for s in slots], step=step,
                              learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2,
                              epsilon=self.epsilon, weight_decay=wds)

    def _update(self, p, g, slots, lr, step, wd):
        if not self.amsgrad:
            ops.adam_update(p, g, slots[0], slots[1], step=step, learning_rate=lr,
                            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                            weight_decay=wd)
            return
        xp, t = _device.xp(p), p.dtype.type
        m, v, vh = slots
        _decay(p, lr, wd)
        alpha = lr * math.sqrt(1.0 - self.beta_2 ** step) / (1.0 - self.beta_1 ** step)
        m += (g - m) * t(1.0 - self.beta_1)
        v += (g * g - v) * t(1.0 - self.beta_2)
        xp.maximum(vh, v, out=vh)
        p -= m * t(alpha) / (xp.sqrt(vh) + t(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay: p -= lr*wd*p before the Adam step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kw):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, **kw)


class RMSprop(Optimizer):
    """Keras 3 RMSprop: v = rho*v + (1-rho)*g*g; inc = lr*g/sqrt(v+eps) (centered: a =
    rho*a + (1-rho)*g; inc = lr*g/sqrt(v - a*a + eps)); p -= inc (momentum: mom =
    momentum*mom + inc; p -= mom)."""
    _slot_names = ("velocity", "momentum")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        names = ["velocity"]
        if self.momentum > 0.0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        self._slot_names = tuple(names)

    def _update(self, p, g, slots, lr, step, wd):
        if not self.centered:
            ops.rmsprop_update(p, g, slots[0], slots[1] if len(slots) > 1 else None,
                               learning_rate=lr, rho=self.rho, momentum=self.momentum,
                               epsilon=self.epsilon, weight_decay=wd)
            return
        xp, t = _device.xp(p), p.dtype.type
        v, a = slots[0], slots[-1]
        _decay(p, lr, wd)
        rho = t(self.rho)
        v *= rho
        v += t(1.0 - self.rho) * g * g
        a *= rho
        a += t(1.0 - self.rho) * g
        inc = t(lr) * g / xp.sqrt(v - a * a + t(self.epsilon))
        if self.momentum > 0.0:
            mom = slots[1]
            mom *= t(self.momentum)
            mom += inc
            p -= mom
        else:
            p -= inc

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Keras 3 Adagrad: acc += g*g; p -= lr*g/sqrt(acc + eps); acc starts at
    initial_accumulator_value."""
    _slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        if initial_accumulator_value < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value!r}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _new_slot(self, p, name):
        z = _zeros_like(p)
        z.fill(self.initial_accumulator_value)
        return z

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        acc = slots[0]
        _decay(p, lr, wd)
        acc += g * g
        p -= t(lr) * g / xp.sqrt(acc + t(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value":
                self.initial_accumulator_value, "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras 3 Adadelta: Eg = rho*Eg + (1-rho)*g*g; d = -sqrt(Ed + eps)/sqrt(Eg + eps)*g;
    Ed = rho*Ed + (1-rho)*d*d; p += lr*d."""
    _slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        eg, ed = slots
        rho, eps = t(self.rho), t(self.epsilon)
        _decay(p, lr, wd)
        eg *= rho
        eg += t(1.0 - self.rho) * g * g
        d = -(xp.sqrt(ed + eps) * g) / xp.sqrt(eg + eps)
        ed *= rho
        ed += t(1.0 - self.rho) * d * d
        p += t(lr) * d

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(_Moments):
    """Keras 3 Adamax: m += (g-m)(1-b1); u = max(b2*u, |g|); p -= lr*m/((1-b1^t)(u+eps))."""
    _slot_names = ("m", "u")

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        m, u = slots
        _decay(p, lr, wd)
        m += (g - m) * t(1.0 - self.beta_1)
        xp.maximum(u * t(self.beta_2), xp.abs(g), out=u)
        p -= (t(lr) * m) / (t(1.0 - self.beta_1 ** step) * (u + t(self.epsilon)))


class Nadam(_Moments):
    """Keras 3 Nadam: Adam with Nesterov momentum and the momentum schedule
    u_t = b1*(1 - 0.5*0.96^t); m_hat = u_{t+1}*m/(1 - prod u_1..u_{t+1}) +
    (1-u_t)*g/(1 - prod u_1..u_t); v_hat = v/(1-b2^t); p -= lr*m_hat/(sqrt(v_hat)+eps)."""
    _slot_names = ("m", "v")

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._u_cache = (0, 1.0)

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _u_product(self, step):
        """u_1 * ... * u_step."""
        k, prod = self._u_cache
        if k > step:
            k, prod = 0, 1.0
        while k < step:
            k += 1
            prod *= self._u(k)
        self._u_cache = (k, prod)
        return prod

    def _begin_step(self, step):
        self._step_consts = (self._u(step), self._u(step + 1), self._u_product(step))

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        m, v = slots
        u_t, u_t1, prod_t = self._step_consts
        prod_t1 = prod_t * u_t1
        _decay(p, lr, wd)
        m += (g - m) * t(1.0 - self.beta_1)
        v += (g * g - v) * t(1.0 - self.beta_2)
        m_hat = t(u_t1 / (1.0 - prod_t1)) * m + t((1.0 - u_t) / (1.0 - prod_t)) * g
        v_hat = v / t(1.0 - self.beta_2 ** step)
        p -= m_hat * t(lr) / (xp.sqrt(v_hat) + t(self.epsilon))


class Lion(Optimizer):
    """Keras 3 Lion: p -= lr*sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g."""
    _slot_names = ("momentum",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the "
                             f"optimizer degenerates to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        m = slots[0]
        _decay(p, lr, wd)
        p -= t(lr) * xp.sign(m * t(self.beta_1) + g * t(1.0 - self.beta_1))
        m *= t(self.beta_2)
        m += g * t(1.0 - self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Lamb(_Moments):
    """Keras 3 Lamb: Adam's moments; update = m_hat/(sqrt(v_hat)+eps); p -= lr * r *
    update with the trust ratio r = |p|/|update| (1 where either norm is 0)."""
    _slot_names = ("m", "v")

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        m, v = slots
        _decay(p, lr, wd)
        m += (g - m) * t(1.0 - self.beta_1)
        v += (g * g - v) * t(1.0 - self.beta_2)
        update = (m / t(1.0 - self.beta_1 ** step)) / (
            xp.sqrt(v / t(1.0 - self.beta_2 ** step)) + t(self.epsilon))
        w_norm, u_norm = _norm(p), _norm(update)
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        p -= t(ratio * lr) * update


class Ftrl(Optimizer):
    """Keras 3 FTRL-proximal: n' = n + g*g; z += g + 2*l2s*p - (n'^-lp - n^-lp)/lr * p;
    p = (clip(z, -l1, l1) - z) / (n'^-lp/lr + 2*(l2 + beta/(2*lr))); n = n'."""
    _slot_names = ("accumulator", "linear")

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        for name, v in (("initial_accumulator_value", initial_accumulator_value),
                        ("l1_regularization_strength", l1_regularization_strength),
                        ("l2_regularization_strength", l2_regularization_strength),
                        ("l2_shrinkage_regularization_strength",
                         l2_shrinkage_regularization_strength)):
            if v < 0.0:
                raise ValueError(f"`{name}` needs to be positive or zero. Received: {name}={v}.")
        if learning_rate_power > 0.0:
            raise ValueError(f"`learning_rate_power` needs to be negative or zero. Received: "
                             f"learning_rate_power={learning_rate_power}.")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def _new_slot(self, p, name):
        z = _zeros_like(p)
        if name == "accumulator":
            z.fill(self.initial_accumulator_value)
        return z

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        acc, lin = slots
        _decay(p, lr, wd)
        lp = -self.learning_rate_power
        l1 = self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        g_use = g + t(2 * self.l2_shrinkage_regularization_strength) * p
        new_acc = acc + g * g
        pow_new = new_acc ** t(lp)
        lin += g_use - (pow_new - acc ** t(lp)) / t(lr) * p
        quadratic = pow_new / t(lr) + t(2 * l2)
        p[...] = (xp.clip(lin, -l1, l1) - lin) / quadratic
        acc[...] = new_acc

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}


class Adafactor(Optimizer):
    """Keras 3 Adafactor: second moments factored over the last two axes (rows r, columns
    c) for parameters of 2+ dimensions; relative step size min(lr, 1/sqrt(t)) scaled by
    max(epsilon_2, rms(p)); the update's rms clipped to clip_threshold."""
    _slot_names = ("r", "c", "v")

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, weight_decay=None, **kw):
        super().__init__(learning_rate, weight_decay, **kw)
        self.beta_2_decay = float(beta_2_decay)
        self.epsilon_1 = float(epsilon_1)
        self.epsilon_2 = float(epsilon_2)
        self.clip_threshold = float(clip_threshold)
        self.relative_step = bool(relative_step)

    def _new_slot(self, p, name):
        if name == "v" or p.ndim >= 2:
            shape = {"r": p.shape[:-1], "c": p.shape[:-2] + p.shape[-1:], "v": p.shape}[name]
        else:
            shape = ()
        z = _device.allocator(p)(shape, p.dtype)
        z.fill(0)
        return z

    def _update(self, p, g, slots, lr, step, wd):
        xp, t = _device.xp(p), p.dtype.type
        r, c, v = slots
        _decay(p, lr, wd)
        inv = 1.0 / math.sqrt(step)
        if not callable(self._learning_rate) and self.relative_step:
            lr = min(lr, inv)
        rho = min(lr, inv)
        rms_p = math.sqrt(float(xp.mean(xp.square(p.astype(np.float64)))))
        alpha = max(self.epsilon_2, rms_p) * rho
        g2 = g * g + t(self.epsilon_1)
        b2 = 1.0 - step ** self.beta_2_decay
        if p.ndim >= 2:
            r[...] = t(b2) * r + t(1.0 - b2) * xp.mean(g2, axis=-1)
            c[...] = t(b2) * c + t(1.0 - b2) * xp.mean(g2, axis=-2)
            v[...] = (r / xp.mean(r, axis=-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v[...] = t(b2) * v + t(1.0 - b2) * g2
        u = g / xp.sqrt(v)
        rms_u = math.sqrt(float(xp.mean(xp.square(u.astype(np.float64)))))
        p -= t(alpha) * (u / t(max(1.0, rms_u / self.clip_threshold)))

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1, "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold, "relative_step": self.relative_step}


_CLASSES = (SGD, Adam, AdamW, RMSprop, Nadam, Adamax, Adagrad, Adadelta, Lion, Lamb, Ftrl,
            Adafactor)
_REGISTRY = {c.__name__.lower(): c for c in _CLASSES}
KNOWN = tuple(_REGISTRY)


def serialize(optimizer):
    """{'module', 'class_name', 'config', 'registered_name'}, as Keras writes it."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize: expected an Optimizer, got {optimizer!r}")
    from ..saving import get_registered_name
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
            "config": optimizer.get_config(), "registered_name": get_registered_name(optimizer)}


def deserialize(config, custom_objects=None):
    """An optimizer from serialize()'s dict (custom classes via custom_objects or
    register_keras_serializable)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"deserialize: expected a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    name = str(config["class_name"])
    cls = _REGISTRY.get(name.lower())
    if cls is None:
        from ..saving import _lookup
        cls = (_lookup(config.get("registered_name") or name, custom_objects)
               or _lookup(name, custom_objects))
    if cls is None or not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: "
                         f"{', '.join(c.__name__ for c in _CLASSES)} (pass custom ones with "
                         f"custom_objects=)")
    return cls.from_config(dict(config.get("config") or {}), custom_objects=custom_objects) \
        if _takes_custom(cls) else cls.from_config(dict(config.get("config") or {}))


def _takes_custom(cls):
    try:
        return "custom_objects" in inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        return False


def get(identifier):
    """An optimizer from an instance, a class, a name ('adam', 'Nadam', ...) or a
    serialize() dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier)
    raise ValueError(f"unknown optimizer {identifier!r}; known optimizers: "
                     f"{', '.join(c.__name__ for c in _CLASSES)} "
                     f"(as strings: {', '.join(KNOWN)})")
