import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl


def pytest_collection_modifyitems(config, items):
    if fastdl.cuda.is_available():
        return
    reason = "needs CUDA: " + (fastdl.ops._cuda_reason() or "not available")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_python(code, env_extra=None, timeout=300):
    """Run code in a fresh interpreter (for FASTDL_CPU_CAPABILITY and crash isolation)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------- both compiled modules
class Backend:
    """The arrays of one compiled module: "cpu" NumPy (fastdl._C) or "cuda" CuPy (fastdl._cuda,
    on a GPU or under the CPU emulation of tests/cuda_emu). Calling it moves a NumPy array
    there; under the emulation the CuPy array is a view of the same memory, so odd strides,
    zero-stride broadcasts and read-only flags reach the module unchanged."""

    def __init__(self, name):
        self.name = name
        self.cp = None
        if name == "cuda":
            import cupy
            self.cp = cupy
        # the emulation's CuPy arrays are NumPy arrays underneath
        self.emulated = self.cp is not None and issubclass(self.cp.ndarray, np.ndarray)

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __call__(self, a):
        if self.cp is None or type(a) is not np.ndarray:
            return a
        if self.emulated:
            return a.view(self.cp.ndarray)
        if a.size and not any(a.strides):  # a zero-stride view: keep it one (no huge copy)
            return self.cp.broadcast_to(self.cp.asarray(a[(0,) * a.ndim]), a.shape)
        return self.cp.asarray(a)

    def host(self, a):
        """Back to NumPy."""
        return a if self.cp is None else self.cp.asnumpy(a)

    @property
    def has_readonly(self):
        """Whether arrays of this backend can be read-only (CuPy's cannot, but the emulation's)."""
        return self.cp is None or self.emulated

    def not_an_array(self, name):
        """The TypeError for a list or scalar where an array goes: the CPU module names the
        argument; next to CuPy arrays, ops.py refuses the mix first."""
        return f"{name} must be a NumPy array" if self.cp is None else "mix NumPy and CuPy"


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def dev(request):
    """Each test using it runs on both compiled modules (the CUDA one where usable)."""
    return Backend(request.param)
