"""Normalization layers: BatchNormalization, LayerNormalization (Keras 3's arguments,
defaults and weight order)."""
import numpy as np

from .. import _device, initializers, ops
from .core import _regularizer_config
from .layer import Layer, shape_str


def _set_constraints(layer, beta_constraint, gamma_constraint):
    """beta_constraint / gamma_constraint: applied by the optimizer after each update."""
    from .. import constraints
    layer.beta_constraint = constraints.get(beta_constraint)
    layer.gamma_constraint = constraints.get(gamma_constraint)


def _epsilon(layer, epsilon):
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"{layer}: epsilon must be a number, got {epsilon!r}") from None
    if not eps > 0 or not np.isfinite(eps):
        raise ValueError(f"{layer}: epsilon must be a positive number, got {epsilon!r}")
    return eps


def _axis_in(layer, axis, input_shape):
    """axis of an input of input_shape (batch included) in [0, ndim), else ValueError."""
    nd = len(input_shape)
    if not -nd <= axis < nd:
        raise ValueError(f"{layer}: axis {axis} is out of range for inputs of shape "
                         f"{shape_str(tuple(input_shape))} ({nd} dimensions)")
    a = axis % nd
    if a == 0:
        raise ValueError(f"{layer}: axis {axis} is the batch axis of inputs of shape "
                         f"{shape_str(tuple(input_shape))}; normalize over a feature axis")
    if input_shape[a] is None:
        raise ValueError(f"{layer}: axis {axis} of inputs of shape "
                         f"{shape_str(tuple(input_shape))} must have a known size")
    return a


class BatchNormalization(Layer):
    """Normalizes each channel (``axis``) with the batch's mean and variance in training
    and with the moving statistics otherwise (Keras 3).

    ``training=True`` on a trainable layer uses the batch statistics (over every axis
    but ``axis``) and moves the moving statistics towards them:
    ``moving = moving * momentum + batch * (1 - momentum)``, with the biased batch
    variance, as Keras does. A layer with ``trainable=False`` always runs in inference
    mode (Keras 3). Weights, in Keras' order: gamma (``scale``), beta (``center``),
    moving_mean, moving_variance (the last two non-trainable). The kernels are fused
    (``ops.batch_norm``: one pass for the statistics, one to normalize; the backward
    pass one for the sums, one for dx).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kw):
        super().__init__(**kw)
        me = f"BatchNormalization {self.name!r}"
        from .. import regularizers
        if isinstance(axis, (list, tuple)) or not isinstance(axis, (int, np.integer)) or \
                isinstance(axis, bool):
            raise TypeError(f"{me}: axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        try:
            momentum_f = float(momentum)
        except (TypeError, ValueError):
            raise TypeError(f"{me}: momentum must be a number, got {momentum!r}") from None
        if not 0.0 <= momentum_f <= 1.0:
            raise ValueError(f"{me}: momentum must be in [0, 1], got {momentum!r}")
        self.momentum = momentum_f
        self.epsilon = _epsilon(me, epsilon)
        _set_constraints(self, beta_constraint, gamma_constraint)
        if synchronized:
            raise NotImplementedError(f"{me}: synchronized=True (statistics across devices) is "
                                      f"not supported")
        self.synchronized = False
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self._batch = False

    def build(self, input_shape):
        a = _axis_in(f"BatchNormalization {self.name!r}", self.axis, input_shape)
        self._ax = a
        shape = (input_shape[a],)
        if self.scale:
            self.add_weight(shape, self.gamma_initializer, name="gamma",
                            regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.add_weight(shape, self.beta_initializer, name="beta",
                            regularizer=self.beta_regularizer, constraint=self.beta_constraint)
        self.add_weight(shape, self.moving_mean_initializer, name="moving_mean", trainable=False)
        self.add_weight(shape, self.moving_variance_initializer, name="moving_variance",
                        trainable=False)

    def _gamma_beta(self):
        w = self._weights
        gamma = w[0] if self.scale else None
        beta = w[int(self.scale)] if self.center else None
        return gamma, beta

    @property
    def gamma(self):
        return self._gamma_beta()[0]

    @property
    def beta(self):
        return self._gamma_beta()[1]

    @property
    def moving_mean(self):
        return self._weights[-2]

    @property
    def moving_variance(self):
        return self._weights[-1]

    def call(self, x, training=False):
        gamma, beta = self._gamma_beta()
        mm, mv = self._weights[-2], self._weights[-1]
        ax = self._ax
        self._x = x
        self._batch = bool(training) and self.trainable
        if self._batch:
            y, mean, var = ops.batch_norm(x, gamma, beta, axis=ax, epsilon=self.epsilon,
                                          out=self._buf("y", x.shape))
            if x.size:
                m = self.momentum
                mm *= m
                mm += mean * (1.0 - m)
                mv *= m
                mv += var * (1.0 - m)
            self._mean, self._var = mean, var
            return y
        # the statistics this call used (copies: a later training call moves them)
        self._mean, self._var = mm.copy(), mv.copy()
        return ops.batch_norm_inference(x, mm, mv, gamma, beta, axis=ax, epsilon=self.epsilon,
                                        out=self._buf("y", x.shape))

    def backward(self, dy, need_dx=True):
        gamma, _ = self._gamma_beta()
        dx, dgamma, dbeta = ops.batch_norm_backward(
            dy, self._x, self._mean, self._var, gamma, axis=self._ax,
            epsilon=self.epsilon, batch_stats=self._batch, need_dx=need_dx,
            out=self._buf("dx", dy.shape) if need_dx else None)
        g = self._grads
        if self.scale:
            _device.assign(g[0], dgamma)
        if self.center:
            _device.assign(g[int(self.scale)], dbeta)
        return dx if need_dx else None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "synchronized": self.synchronized,
                **_norm_regularizer_config(self)}


def _norm_regularizer_config(layer):
    from .. import constraints, regularizers
    cfg = {k: regularizers.serialize(getattr(layer, k))
           for k in ("beta_regularizer", "gamma_regularizer") if getattr(layer, k) is not None}
    cfg.update({k: constraints.serialize(getattr(layer, k))
                for k in ("beta_constraint", "gamma_constraint") if getattr(layer, k) is not None})
    return cfg


class LayerNormalization(Layer):
    """Normalizes each sample over ``axis`` (an int or a list of axes) with its own mean
    and variance, then scales by gamma and shifts by beta (Keras 3). ``rms_scaling=True``
    does what Keras 3 does: ``x * gamma / sqrt(var(x) + epsilon)``, the input scaled by
    its (centered) variance without being centered, and no beta (Keras deprecates the
    argument for that reason; it is kept for compatibility). Weights: gamma (``scale``
    or ``rms_scaling``), beta (``center``, unless ``rms_scaling``), shaped like the
    normalized axes."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kw):
        super().__init__(**kw)
        me = f"LayerNormalization {self.name!r}"
        from .. import regularizers
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                           for a in axes):
            raise TypeError(f"{me}: axis must be an integer or a list of integers, got {axis!r}")
        self.axis = [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = _epsilon(me, epsilon)
        _set_constraints(self, beta_constraint, gamma_constraint)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        me = f"LayerNormalization {self.name!r}"
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        axes = sorted(_axis_in(me, a, input_shape) for a in axes)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{me}: axis {self.axis} names an axis twice")
        self._axes = tuple(axes)
        shape = tuple(input_shape[a] for a in axes)
        self._bshape = tuple(input_shape[a] if a in axes else 1 for a in range(len(input_shape)))
        nd = len(input_shape)
        # the trailing axes: rows of D elements, the fused kernel (ops.layer_norm)
        self._trailing = self._axes == tuple(range(nd - len(axes), nd))
        self._D = int(np.prod(shape))
        self._use_gamma = self.scale or self.rms_scaling
        self._use_beta = self.center and not self.rms_scaling
        if self._use_gamma:
            self.add_weight(shape, self.gamma_initializer, name="gamma",
                            regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self._use_beta:
            self.add_weight(shape, self.beta_initializer, name="beta",
                            regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _params(self):
        w = self._weights
        gamma = w[0].reshape(self._bshape[1:]) if self._use_gamma else None
        beta = w[int(self._use_gamma)].reshape(self._bshape[1:]) if self._use_beta else None
        return gamma, beta

    def _flat_params(self):
        w = self._weights
        gamma = w[0].reshape(-1) if self._use_gamma else None
        beta = w[int(self._use_gamma)].reshape(-1) if self._use_beta else None
        return gamma, beta

    def call(self, x, training=False):
        self._fast = self._trailing and _device.has_kernels(x)
        if self._fast:
            x2 = x.reshape(-1, self._D)
            gamma, beta = self._flat_params()
            y = self._buf("y", x.shape)   # returned itself: an eager call copies it
            _, self._mean, self._inv = ops.layer_norm(
                x2, gamma, beta, epsilon=self.epsilon, rms_scaling=self.rms_scaling,
                out=y.reshape(x2.shape))
            self._x2 = x2
            return y
        xp = _device.xp(x)
        axes = self._axes
        gamma, beta = self._params()
        mean = xp.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        inv = 1.0 / xp.sqrt(xp.mean(xp.square(xc), axis=axes, keepdims=True) + self.epsilon)
        # rms_scaling (Keras 3): x scaled by the same inverse deviation, not centered
        xhat = (x if self.rms_scaling else xc) * inv
        self._xhat, self._inv = xhat, inv.astype(x.dtype, copy=False)
        self._xc = xc
        y = xhat * gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta
        return y.astype(x.dtype, copy=False)

    def backward(self, dy, need_dx=True):
        g = self._grads
        if self._fast:
            dy2 = dy.reshape(-1, self._D)
            gamma, _ = self._flat_params()
            dx, dgamma, dbeta = ops.layer_norm_backward(
                dy2, self._x2, self._mean, self._inv, gamma, rms_scaling=self.rms_scaling,
                need_dx=need_dx, out=self._buf("dx", dy2.shape) if need_dx else None)
            if self._use_gamma:
                _device.assign(g[0], dgamma.reshape(g[0].shape))
            if self._use_beta:
                _device.assign(g[1], dbeta.reshape(g[1].shape))
            return dx.reshape(dy.shape) if need_dx else None
        xp = _device.xp(dy)
        axes = self._axes
        xhat, inv = self._xhat, self._inv
        gamma, _ = self._params()
        others = tuple(a for a in range(dy.ndim) if a not in axes)
        if self._use_gamma:
            _device.assign(g[0], xp.sum(dy * xhat, axis=others).reshape(g[0].shape))
        if self._use_beta:
            _device.assign(g[int(self._use_gamma)], xp.sum(dy, axis=others).reshape(
                g[int(self._use_gamma)].shape))
        if not need_dx:
            return None
        dxhat = dy * gamma if gamma is not None else dy
        proj = self._xc * inv * xp.mean(dxhat * xhat, axis=axes, keepdims=True)
        if self.rms_scaling:
            dx = inv * (dxhat - proj)
        else:
            dx = inv * (dxhat - xp.mean(dxhat, axis=axes, keepdims=True) - proj)
        return dx.astype(dy.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                **_norm_regularizer_config(self)}


class GroupNormalization(Layer):
    """Normalizes each sample's channels (``axis``) in ``groups`` groups of consecutive
    channels, each by the mean and (biased) variance over the group's channels and all
    other non-batch axes, then scales and shifts per channel (Keras 3). groups=-1: one
    channel per group (instance normalization); groups=1: layer normalization over all
    non-batch axes. Weights: gamma (``scale``), beta (``center``), shape (channels,)."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kw):
        super().__init__(**kw)
        me = f"GroupNormalization {self.name!r}"
        from .. import regularizers
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or \
                (groups <= 0 and groups != -1):
            raise ValueError(f"{me}: groups must be a positive integer or -1, got {groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{me}: axis must be an integer, got {axis!r}")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = _epsilon(me, epsilon)
        _set_constraints(self, beta_constraint, gamma_constraint)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        me = f"GroupNormalization {self.name!r}"
        self._ax = _axis_in(me, self.axis, input_shape)
        C = input_shape[self._ax]
        G = C if self.groups == -1 else self.groups
        if G > C:
            raise ValueError(f"{me}: groups ({G}) must not be more than the channels ({C}) of "
                             f"inputs of shape {shape_str(tuple(input_shape))}")
        if C % G:
            raise ValueError(f"{me}: the channels ({C}) of inputs of shape "
                             f"{shape_str(tuple(input_shape))} must be a multiple of groups "
                             f"({G})")
        self._G = G
        if self.scale:
            self.add_weight((C,), self.gamma_initializer, name="gamma",
                            regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.add_weight((C,), self.beta_initializer, name="beta",
                            regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _grouped(self, a):
        """a with the channel axis last, as (N, S, G, C/G)."""
        xp = _device.xp(a)
        a = xp.moveaxis(a, self._ax, -1)
        C = a.shape[-1]
        return a.reshape(a.shape[0], -1, self._G, C // self._G)

    def _ungrouped(self, a, shape):
        xp = _device.xp(a)
        moved = list(shape)
        c = moved.pop(self._ax)
        a = a.reshape(moved + [c])
        return xp.ascontiguousarray(xp.moveaxis(a, -1, self._ax))

    def _params(self):
        w = self._weights
        gamma = w[0].reshape(self._G, -1) if self.scale else None
        beta = w[int(self.scale)].reshape(self._G, -1) if self.center else None
        return gamma, beta

    def call(self, x, training=False):
        xp = _device.xp(x)
        xg = self._grouped(x)
        mean = xp.mean(xg, axis=(1, 3), keepdims=True)
        xc = xg - mean
        inv = 1.0 / xp.sqrt(xp.mean(xp.square(xc), axis=(1, 3), keepdims=True) + self.epsilon)
        xhat = xc * inv
        self._xhat, self._inv, self._shape = xhat, inv, x.shape
        gamma, beta = self._params()
        y = xhat * gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta
        return self._ungrouped(y, x.shape).astype(x.dtype, copy=False)

    def backward(self, dy, need_dx=True):
        xp = _device.xp(dy)
        dyg = self._grouped(dy)
        xhat, inv = self._xhat, self._inv
        gamma, _ = self._params()
        g = self._grads
        if self.scale:
            _device.assign(g[0], xp.sum(dyg * xhat, axis=(0, 1)).reshape(-1))
        if self.center:
            _device.assign(g[int(self.scale)], xp.sum(dyg, axis=(0, 1)).reshape(-1))
        if not need_dx:
            return None
        dxhat = dyg * gamma if gamma is not None else dyg
        dx = inv * (dxhat - xp.mean(dxhat, axis=(1, 3), keepdims=True) -
                    xhat * xp.mean(dxhat * xhat, axis=(1, 3), keepdims=True))
        return self._ungrouped(dx, self._shape).astype(dy.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                **_norm_regularizer_config(self)}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis`` (an int or a list of axes), as
    Keras 3: ``x * min(1 / sqrt(sum(x^2)), 1 / 1e-12)``. No weights."""

    _EPS = 1e-12

    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                           for a in axes):
            raise TypeError(f"UnitNormalization {self.name!r}: axis must be an integer or a "
                            f"list of integers, got {axis!r}")
        self.axis = [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)

    def build(self, input_shape):
        me = f"UnitNormalization {self.name!r}"
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        self._axes = tuple(sorted(set(_axis_in(me, a, input_shape) for a in axes)))

    def call(self, x, training=False):
        xp = _device.xp(x)
        ss = xp.sum(xp.square(x), axis=self._axes, keepdims=True)
        self._clamped = ss <= self._EPS * self._EPS      # 1 / sqrt(ss) >= 1 / eps
        with np.errstate(divide="ignore"):
            inv = xp.where(self._clamped, 1.0 / self._EPS, 1.0 / xp.sqrt(xp.maximum(ss, 1e-300)))
        self._inv = inv.astype(x.dtype, copy=False)
        self._y = x * self._inv
        return self._y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        xp = _device.xp(dy)
        y, inv = self._y, self._inv
        proj = xp.sum(dy * y, axis=self._axes, keepdims=True)
        dx = xp.where(self._clamped, dy * inv, inv * (dy - y * proj))
        return dx.astype(dy.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
