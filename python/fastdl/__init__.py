"""fastdl: a small, fast, readable deep-learning library that speaks Keras 3.

Hand-written C++ kernels (GEMM, convolution, pooling, recurrent cells and the
element-wise, loss and optimizer kernels around them) under Keras' API:
``import fastdl as keras`` serves Keras programs. ``fastdl.ops`` holds the
functional kernels and the differentiable NumPy-like ops; ``layers``,
``models``, ``optimizers``, ``losses``, ``metrics``, ``callbacks``, ... mirror
Keras. Submodules load on first use.
"""
import importlib as _importlib

from . import ops
from ._config import get_num_threads, set_num_threads, set_seed, show_config
from . import cuda

__version__ = ops.build_info()["version"]

_SUBMODULES = ("layers", "models", "optimizers", "losses", "callbacks", "datasets",
               "activations", "initializers", "metrics", "regularizers", "constraints", "utils",
               "random", "saving", "demo", "distribution")

# Keras' top-level names, each resolved from its module on first use.
_NAMES = {"Sequential": ("models", "Sequential"), "Model": ("models", "Model"),
          "Input": ("layers", "Input"), "Layer": ("layers", "Layer"),
          "GradientTape": ("_tape", "GradientTape"), "Variable": ("_variable", "Variable")}


def __getattr__(name):
    # `import fastdl; fastdl.layers.Dense(...)` works without importing every
    # submodule at start-up.
    if name in _SUBMODULES:
        return _importlib.import_module("." + name, __name__)
    where = _NAMES.get(name)
    if where is not None and where[0] is not None:
        return getattr(_importlib.import_module("." + where[0], __name__), where[1])
    raise AttributeError(f"module 'fastdl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + [k for k, v in _NAMES.items() if v[0]])


__all__ = ["ops", "cuda", "show_config", "set_num_threads", "get_num_threads", "set_seed",
           "__version__", "Sequential", "Model", "Input", "Layer", "GradientTape", "Variable", *_SUBMODULES]
