"""fastdl: a small, fast, readable deep-learning library.

Hand-written C++ kernels (GEMM, convolution, pooling, recurrent cells and the
element-wise, loss and optimizer kernels around them) under a Keras-compatible
Python API. ``fastdl.ops`` holds the functional kernels; ``layers``, ``models``,
``optimizers``, ``losses``, ``callbacks`` and ``datasets`` mirror Keras.
"""
import importlib as _importlib

from . import ops
from ._config import get_num_threads, set_num_threads, set_seed, show_config
from . import cuda

__version__ = ops.build_info()["version"]

_SUBMODULES = ("layers", "models", "optimizers", "losses", "callbacks", "datasets",
               "activations", "initializers", "metrics", "demo")


def __getattr__(name):
    # `import fastdl; fastdl.layers.Dense(...)` works without importing every
    # submodule at start-up.
    if name in _SUBMODULES:
        return _importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'fastdl' has no attribute {name!r}")


__all__ = ["ops", "cuda", "show_config", "set_num_threads", "get_num_threads", "set_seed",
           "__version__", *_SUBMODULES]
