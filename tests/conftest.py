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
