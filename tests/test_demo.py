"""python -m fastdl.demo: data choice, messages and (once the model API is in) a smoke run."""
import os
import subprocess
import sys

import pytest

import fastdl
from fastdl import demo

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(fastdl.__file__)))


def has_model_api():
    try:
        from fastdl import layers, models  # noqa: F401
        return hasattr(models, "Sequential") and hasattr(layers, "Dense")
    except ImportError:
        return False


needs_model = pytest.mark.skipif(not has_model_api(), reason="the model API is not in this build")


def run_demo(*args, home=None, timeout=240, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env["FASTDL_DATA_MIRROR"] = "http://127.0.0.1:9/"   # never the internet
    if home is not None:
        env["HOME"] = str(home)
    env.pop("FASTDL_DATA", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastdl.demo", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_options():
    a = demo.parse_args([])
    assert a.dataset == "auto" and a.epochs is None and a.plot is None
    a = demo.parse_args(["--dataset", "digits", "--epochs", "2", "--plot", "x.png"])
    assert (a.dataset, a.epochs, a.plot) == ("digits", 2, "x.png")
    for bad in (["--dataset", "cifar"], ["--epochs", "0"], ["--batch-size", "0"]):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)


def test_auto_prefers_mnist_then_fashion_then_digits(tmp_path, monkeypatch):
    from fastdl.datasets import _fetch, save_idx
    import numpy as np
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FASTDL_DATA", raising=False)
    monkeypatch.setattr(_fetch, "SYSTEM_ROOTS", (str(tmp_path / "none"),))
    args = demo.parse_args(["--no-download"])
    assert demo.load(args)[0] == "digits"
    stems = list(_fetch.IDX_STEMS.values())

    def put(name):
        folder = tmp_path / ".fastdl" / "datasets" / name
        folder.mkdir(parents=True)
        for stem in stems:
            a = np.zeros((2, 28, 28) if "images" in stem else (2,), np.uint8)
            save_idx(str(folder / (stem + ".gz")), a)

    put("fashion-mnist")
    assert demo.load(args)[0] == "fashion_mnist"
    put("mnist")
    assert demo.load(args)[0] == "mnist"


def test_explicit_dataset_not_found_is_a_clear_error(tmp_path):
    r = run_demo("--dataset", "mnist", "--no-download", home=tmp_path)
    assert r.returncode != 0
    if "no model API" in r.stderr:
        pytest.skip("the model API is not in this build")
    assert "MNIST was not found" in r.stderr and "Looked in" in r.stderr
    assert "Traceback" not in r.stderr


@needs_model
def test_smoke_run_on_digits(tmp_path):
    r = run_demo("--dataset", "digits", "--smoke", home=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Data: 8x8 digits (bundled)" in r.stdout
    assert "Test accuracy on 8x8 digits" in r.stdout


@needs_model
def test_smoke_run_auto(tmp_path):
    r = run_demo("--smoke", home=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Data: " in r.stdout and "Test accuracy on " in r.stdout


@needs_model
def test_plot_without_matplotlib_says_so(tmp_path):
    # Hide matplotlib (installed or not) behind a package that fails to import.
    hide = tmp_path / "hide"
    (hide / "matplotlib").mkdir(parents=True)
    (hide / "matplotlib" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    r = run_demo("--dataset", "digits", "--smoke", "--plot", str(tmp_path / "p.png"), home=tmp_path,
                 env_extra={"PYTHONPATH": str(hide) + os.pathsep + PKG_PARENT})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--plot needs matplotlib" in r.stderr
    assert not (tmp_path / "p.png").exists()


@needs_model
def test_plot_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "p.png"
    r = run_demo("--dataset", "digits", "--smoke", "--plot", str(out), home=tmp_path,
                 env_extra={"MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert out.stat().st_size > 1000
