"""Every script in examples/ runs with --smoke (offline, a few batches) in a fresh interpreter.

Scripts that need parts of fastdl this build does not have yet (the model API, convolution or
recurrent layers) are skipped with the reason."""
import os
import subprocess
import sys

import pytest

import fastdl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastdl.__file__)))


def _model_api():
    try:
        from fastdl import layers, models, optimizers  # noqa: F401
    except ImportError as e:
        return None, f"the model API is not in this build ({e})"
    return (layers, models, optimizers), None


def missing(needs):
    """A reason to skip, or None when every listed part exists."""
    mods, reason = _model_api()
    if "model" in needs and mods is None:
        return reason
    layers = mods[0] if mods else None
    for op in needs.get("ops", ()):
        if not hasattr(fastdl.ops, op):
            return f"fastdl.ops.{op} is not in this build"
    for layer in needs.get("layers", ()):
        if layers is None or not hasattr(layers, layer):
            return f"fastdl.layers.{layer} is not in this build"
    return None


CASES = {
    "mnist_mlp.py": {"model": True, "layers": ["Flatten", "Dense", "Dropout"]},
    "mnist_convnet.py": {"model": True, "ops": ["conv2d", "max_pool2d"],
                         "layers": ["Input", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]},
    "rnn_rows.py": {"model": True, "ops": ["lstm"], "layers": ["LSTM", "Dense"]},
    "autoencoder.py": {"model": True, "layers": ["Dense"]},
    "linear_regression.py": {"ops": ["gemm", "linear"]},
    "gan.py": {"model": True, "ops": ["sigmoid"], "layers": ["Dense"]},
    "train_data_parallel.py": {"model": True, "ops": ["conv2d", "max_pool2d"],
                               "layers": ["Conv2D", "MaxPooling2D", "Dense"]},
}


def test_every_example_is_covered():
    scripts = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    assert scripts == sorted(CASES)


def run_example(script, *extra, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env["FASTDL_DATA_MIRROR"] = "http://127.0.0.1:9/"   # belt and braces: --smoke never downloads
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script), "--smoke", *extra],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_smoke(script):
    reason = missing(CASES[script])
    if reason:
        pytest.skip(reason)
    r = run_example(script)
    assert r.returncode == 0, f"{script} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = r.stdout
    if script == "linear_regression.py":
        assert "recovered the true weights" in out
    elif script == "autoencoder.py":
        assert "test reconstruction MSE" in out
    elif script == "gan.py":
        assert "discriminator loss" in out
    else:
        assert "test accuracy" in out
    if script != "linear_regression.py":
        assert "data: " in out
