"""The benchmark runner (python -m bench, from the repository root) with tiny fake suites:
no timing is checked. The bench package is imported from the checkout (pytest puts the
repository root on sys.path; see pythonpath in pyproject.toml), never from the fastdl wheel."""
import json
import sys
import types

import numpy as np
import pytest

import fastdl

from bench import __main__ as runner
from bench import _common, _plot
from bench._common import Table


def fake_suite(monkeypatch, name, run):
    mod = types.ModuleType(f"bench.{name}")
    mod.run = run
    monkeypatch.setitem(sys.modules, f"bench.{name}", mod)
    if name not in runner.SUITES:
        monkeypatch.setattr(runner, "SUITES", runner.SUITES + [name])
    return mod


def table(title, n=2):
    t = Table(title, ["shape", "threads", "fastdl GFLOP/s", "PyTorch GFLOP/s", "fastdl/PyTorch"])
    for i in range(n):
        t.add(shape=f"{i + 1}x8x8", threads=1, **{"fastdl GFLOP/s": 10.0 + i, "PyTorch GFLOP/s": 5.0,
                                                   "fastdl/PyTorch": (10.0 + i) / 5})
    return t


def test_tables_printed_and_json(monkeypatch, tmp_path, capsys):
    seen = {}

    def run(opts):
        seen["threads"] = opts.thread_list
        seen["quick"] = opts.quick
        return [table("one"), table("two", 3)]

    fake_suite(monkeypatch, "fake", run)
    out = tmp_path / "r.json"
    md = tmp_path / "r.md"
    rc = runner.main(["fake", "--threads", "2,1,2", "--quick", "--json", str(out), "--markdown", str(md)])
    assert rc == 0
    assert seen == {"threads": [1, 2], "quick": True}
    text = capsys.readouterr().out
    assert "### one" in text and "### two" in text and "| 3x8x8 | 1 | 12.0 | 5.00 | 2.40 |" in text
    doc = json.loads(out.read_text())
    assert [t["title"] for t in doc["tables"]] == ["one", "two"]
    assert doc["tables"][0]["suite"] == "fake" and doc["interrupted"] is False
    assert doc["threads"] == [1, 2] and doc["missing"] == [] and doc["failed"] == []
    assert "### two" in md.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bench-")]


def test_missing_suite_is_reported_and_skipped(monkeypatch, capsys):
    fake_suite(monkeypatch, "fake", lambda opts: [table("ok")])
    monkeypatch.setattr(runner, "SUITES", runner.SUITES + ["nosuchsuite"])
    rc = runner.main(["nosuchsuite", "fake", "--threads", "1"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "'nosuchsuite' is not part of this checkout" in cap.err
    assert "### ok" in cap.out


def test_failing_suite_does_not_stop_the_others(monkeypatch, capsys):
    def boom(opts):
        yield table("before")
        raise RuntimeError("kernel exploded")

    fake_suite(monkeypatch, "bad", boom)
    fake_suite(monkeypatch, "good", lambda opts: [table("after")])
    rc = runner.main(["bad", "good", "--threads", "1"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "### before" in cap.out and "### after" in cap.out
    assert "kernel exploded" in cap.err and "failed: bad" in cap.err


def test_suite_import_error_inside_is_a_failure(monkeypatch, capsys):
    def importer(name):
        raise ModuleNotFoundError("No module named 'somedep'", name="somedep")
    monkeypatch.setattr(runner, "SUITES", runner.SUITES + ["fake"])
    monkeypatch.setattr(runner, "import_suite", importer)
    assert runner.main(["fake", "--threads", "1"]) == 1
    assert "could not be imported" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_tables(monkeypatch, tmp_path, capsys):
    later = []

    def run(opts):
        yield table("finished")
        raise KeyboardInterrupt

    fake_suite(monkeypatch, "fake", run)
    fake_suite(monkeypatch, "later", lambda opts: later.append(1) or [table("never")])
    out = tmp_path / "r.json"
    rc = runner.main(["fake", "later", "--threads", "1", "--json", str(out)])
    cap = capsys.readouterr()
    assert rc == 130
    assert "### finished" in cap.out and "never" not in cap.out and later == []
    assert "interrupted" in cap.err
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and [t["title"] for t in doc["tables"]] == ["finished"]


def test_unknown_suite_and_bad_threads_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        runner.main(["nonsense"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        runner.main(["gemm", "--threads", "0"])
    with pytest.raises(SystemExit):
        runner.main(["gemm", "--threads", "a,b"])
    assert "positive integers" in capsys.readouterr().err


def test_fastdl_package_ships_no_benchmark_code():
    # The benchmarks (and their PyTorch/Keras comparison code) live in the checkout's bench/,
    # outside the package: the installed fastdl has no bench module and imports no framework.
    import importlib.util
    import pathlib
    import re
    import fastdl
    assert importlib.util.find_spec("fastdl.bench") is None
    pat = re.compile(r"^\s*(import|from)\s+(torch|keras|tensorflow)\b", re.M)
    pkg = pathlib.Path(fastdl.__file__).parent
    offenders = [str(p) for p in pkg.rglob("*.py") if pat.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_list(capsys):
    assert runner.main(["--list"]) == 0
    out = capsys.readouterr().out
    for s in ("gemm", "conv", "pool", "rnn", "train"):
        assert s in out


def test_json_handles_numpy_values(monkeypatch, tmp_path):
    np = pytest.importorskip("numpy")

    def run(opts):
        t = Table("np", ["shape", "fastdl GFLOP/s"])
        t.add(shape="a", **{"fastdl GFLOP/s": np.float32(3.5)})
        return [t]

    fake_suite(monkeypatch, "fake", run)
    out = tmp_path / "r.json"
    assert runner.main(["fake", "--threads", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["tables"][0]["rows"][0]["fastdl GFLOP/s"] == 3.5


def test_table_helpers():
    t = Table("t", ["a", "x GB/s", "y GFLOP/s", "x/y"])
    with pytest.raises(KeyError, match="nope"):
        t.add(nope=1)
    t.add(a="s", **{"x GB/s": 1.0})
    assert _common.rate_columns(t) == ["x GB/s", "y GFLOP/s"]
    assert "| s | 1.00 | - | - |" in t.markdown()
    assert _common.ratio(2.0, 4.0) == 0.5 and _common.ratio(1.0, 0) is None and _common.ratio(None, 1) is None
    assert _common.gflops(2e9, 1.0) == 2.0


def test_plot_without_matplotlib_is_a_clear_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import fails
    fake_suite(monkeypatch, "fake", lambda opts: [table("one")])
    out = tmp_path / "p.png"
    assert runner.main(["fake", "--threads", "1", "--plot", str(out)]) == 0
    assert "needs matplotlib" in capsys.readouterr().err
    assert not out.exists()


def test_plot_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "p.png"
    assert _plot.plot([table("one"), Table("empty", ["a"])], str(out), title="t")
    assert out.stat().st_size > 1000


def test_plot_nothing_to_draw(tmp_path, capsys):
    assert not _plot.plot([Table("empty", ["a", "b"])], str(tmp_path / "p.png"))
    assert "no table with throughput" in capsys.readouterr().err


def test_train_options_are_checked(capsys):
    opts = runner.parse_args(["train", "--train-repeats", "2", "--train-models", "mlp, lstm"])
    assert opts.train_repeats == 2 and opts.train_models == ["mlp", "lstm"]
    for bad in (["--train-repeats", "0"], ["--train-models", "mlp,resnet"], ["--train-models", ","]):
        with pytest.raises(SystemExit):
            runner.parse_args(["train"] + bad)
    err = capsys.readouterr().err
    assert "at least 1" in err and "resnet" in err


def test_train_rounds_alternate_and_report_medians(monkeypatch):
    # Three rounds: the frameworks alternate within each round and the table
    # shows each framework's median fit time, with the range of the rounds.
    from bench import train
    calls = []
    times = {"fastdl": [3.0, 1.0, 2.0], "Keras": [9.0, 7.0, 8.0], "PyTorch": [5.0, 4.0, 6.0]}

    def fake(fw):
        def run(*a, **k):
            calls.append(fw)
            t = times[fw][sum(c == fw for c in calls) - 1]
            return {"fit_s": t, "acc": 0.9, "version": "x"}, None
        return run

    monkeypatch.setattr(train, "_run_fastdl", fake("fastdl"))
    monkeypatch.setattr(train, "_run_keras", fake("Keras"))
    monkeypatch.setattr(train, "_run_torch", fake("PyTorch"))
    monkeypatch.setattr(train, "_datasets", lambda quick: {"mlp": {"x_train": np.zeros(1000)}})
    monkeypatch.setattr(train, "_inference_table", lambda data, threads, rounds: "inference")
    monkeypatch.setattr(fastdl.ops, "fma_peak_gflops", lambda threads: 100.0)
    opts = types.SimpleNamespace(quick=False, thread_list=[1], train_models=["mlp"],
                                 train_repeats=3)
    table, inference = train.run(opts)
    assert inference == "inference"
    assert calls == ["fastdl", "Keras", "PyTorch"] * 3
    rows = {r["framework"]: r for r in table.rows}
    assert rows["fastdl"]["fit s"] == 2.0 and rows["Keras"]["fit s"] == 8.0
    assert rows["PyTorch"]["fit s"] == 5.0 and rows["fastdl"]["fit s range"] == "1.00-3.00 (3)"
    assert rows["Keras"]["fastdl / this"] == 0.25 and "met" in rows["Keras"]["target"]
    assert rows["PyTorch"]["fastdl / this"] == 0.4 and "missed" in rows["PyTorch"]["target"]
    # fit eff: 1000 samples of the MLP's FLOPs per second over the 100 GFLOP/s peak
    eff = train.fit_flops("mlp", 1000, 5) / 2.0 / 100e9
    assert rows["fastdl"]["fit eff"] == f"{eff:.1%}"


def test_fit_flops_count_the_products_fit_needs():
    from bench import train
    # MLP: Dense 784->128 without an input gradient (first layer), Dense 128->10 with one
    assert train.fit_flops("mlp", 1, 1) == 2 * (784 * 128 * 2 + 128 * 10 * 3)
    assert train.fit_flops("mlp", 60000, 5) == 300000 * train.fit_flops("mlp", 1, 1)
    # LSTM(128) over 28 rows of 28: forward and weight gradients of 4 gates every step,
    # the state gradient for 27 steps, no input gradient; then Dense 128->10
    lstm = 28 * 4 * 128 * (28 + 128) * 2 + 27 * 4 * 128 * 128 + 128 * 10 * 3
    assert train.fit_flops("lstm", 1, 1) == 2 * lstm
    conv = 26 * 26 * 32 * 9 * 2 + 11 * 11 * 64 * 9 * 32 * 3 + 1600 * 128 * 3 + 128 * 10 * 3
    assert train.fit_flops("convnet", 1, 1) == 2 * conv
    for kind in ("simple_rnn", "dae"):
        assert train.fit_flops(kind, 1, 1) > 0


def test_inference_table_ratios(monkeypatch):
    from bench import train
    clock = [0.0]
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock[0])

    def takes(s):
        def f():
            clock[0] += s
        return f
    monkeypatch.setattr(train, "_inference_fns", lambda x, threads: {
        "fastdl": (takes(1e-5), takes(0.01)), "PyTorch": (takes(1e-4), takes(0.04)),
        "PyTorch, batches of 32": (None, takes(0.05))})
    monkeypatch.setattr(train, "_keras_python", lambda: (None, "not installed"))
    t = train._inference_table({"x_test": np.zeros((100, 28, 28), np.float32)}, 1, 3, calls=4)
    lat = [r for r in t.rows if r["measure"].startswith("predict(1 ")]
    thr = [r for r in t.rows if not r["measure"].startswith("predict(1 ")]
    assert [r["framework"] for r in lat] == ["fastdl", "PyTorch"]
    assert abs(lat[0]["best"] - 10.0) < 1e-6 and abs(lat[1]["fastdl / this (median)"] - 0.1) < 1e-9
    assert "met" in lat[1]["target"]
    assert [r["framework"] for r in thr] == ["fastdl", "PyTorch", "PyTorch, batches of 32"]
    assert abs(thr[0]["median"] - 100 / 0.01) < 1e-6
    assert abs(thr[1]["fastdl / this (best)"] - 0.25) < 1e-9 and "met" in thr[1]["target"]
    assert abs(thr[2]["fastdl / this (median)"] - 0.2) < 1e-9
    assert any("Keras: not installed" in n for n in t.notes)


def test_train_framework_missing_is_not_retried(monkeypatch):
    from bench import train
    n = {"keras": 0}

    def keras(*a, **k):
        n["keras"] += 1
        return None, "not installed"

    monkeypatch.setattr(train, "_run_fastdl", lambda *a: ({"fit_s": 1.0, "acc": 0.9, "version": "x"}, None))
    monkeypatch.setattr(train, "_run_keras", keras)
    monkeypatch.setattr(train, "_run_torch", lambda *a: ({"fit_s": 2.0, "acc": 0.9, "version": "y"}, None))
    monkeypatch.setattr(train, "_datasets", lambda quick: {"lstm": {"x_train": np.zeros(10)}})
    opts = types.SimpleNamespace(quick=False, thread_list=[1], train_models=["lstm"],
                                 train_repeats=2)
    (table,) = train.run(opts)
    rows = {r["framework"]: r for r in table.rows}
    assert n["keras"] == 1 and rows["Keras"]["version"] == "not installed"
    assert "fit s" not in rows["Keras"] and rows["PyTorch"]["fastdl / this"] == 0.5


# ------------------------------------------------------------------ conv: algorithm= columns
def _tiny_conv(monkeypatch):
    from bench import conv

    def one_call_each(fns, repeat):   # no timing: each fn runs once, times are made up
        times = []
        for i, fn in enumerate(fns):
            fn()
            times.append(0.001 * (i + 1))
        return times
    monkeypatch.setattr(conv, "side_by_side", one_call_each)
    monkeypatch.setattr(conv, "LAYERS", [("tiny 6x6x2->3 3x3", 2, (6, 6, 2), 3, 3, "valid", False)])
    return conv


def _fake_ops(real, *, fwd_algo, bwd_algo, refuse=(), kwargs_only=False):
    """fastdl.ops with conv2d (and conv2d_backward) taking algorithm= or not; records the calls."""
    calls = []

    def check(algorithm):
        if algorithm not in ("auto", "direct", "im2col"):
            raise ValueError(f"bad algorithm {algorithm!r}")
        if algorithm in refuse:
            raise ValueError(f"{algorithm} does not do this layer")
        calls.append(algorithm)

    if not fwd_algo:
        def conv2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1,
                   activation="linear"):
            return real.conv2d(x, w, b, strides=strides, padding=padding,
                               dilation_rate=dilation_rate, activation=activation)
    elif kwargs_only:
        def conv2d(x, w, b=None, **kw):
            algorithm = kw.pop("algorithm", "auto")
            check(algorithm)
            return real.conv2d(x, w, b, **kw)
    else:
        def conv2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1,
                   activation="linear", algorithm="auto"):
            check(algorithm)
            return real.conv2d(x, w, b, strides=strides, padding=padding,
                               dilation_rate=dilation_rate, activation=activation)
    if bwd_algo:
        def conv2d_backward(dy, x, w, *, padding="valid", need_dx=True, algorithm="auto"):
            check(algorithm)
            return real.conv2d_backward(dy, x, w, padding=padding, need_dx=need_dx)
    else:
        def conv2d_backward(dy, x, w, *, padding="valid", need_dx=True):
            return real.conv2d_backward(dy, x, w, padding=padding, need_dx=need_dx)
    return types.SimpleNamespace(conv2d=conv2d, conv2d_backward=conv2d_backward,
                                 fma_peak_gflops=lambda n: 100.0), calls


def _run_conv(conv):
    opts = types.SimpleNamespace(quick=True, thread_list=[1])
    (t,) = conv.run(opts)
    return t


def test_conv_without_algorithm_argument_keeps_the_old_table(monkeypatch):
    from fastdl import ops
    conv = _tiny_conv(monkeypatch)
    fake, _ = _fake_ops(ops, fwd_algo=False, bwd_algo=False)
    monkeypatch.setattr(conv, "ops", fake)
    assert conv.conv_algorithms() == ((), False)
    t = _run_conv(conv)
    assert not [c for c in t.columns if "direct" in c or "im2col" in c]
    assert [r["pass"] for r in t.rows] == ["fwd", "bwd", "fwd+bwd"]
    assert all(r["fastdl ms"] > 0 for r in t.rows)


@pytest.mark.parametrize("kwargs_only", [False, True])
def test_conv_shows_direct_and_im2col_beside_the_default(monkeypatch, kwargs_only):
    from fastdl import ops
    conv = _tiny_conv(monkeypatch)
    fake, calls = _fake_ops(ops, fwd_algo=True, bwd_algo=False, kwargs_only=kwargs_only)
    monkeypatch.setattr(conv, "ops", fake)
    assert conv.conv_algorithms() == (("direct", "im2col"), False)
    t = _run_conv(conv)
    for c in ("fastdl direct ms", "fastdl im2col ms", "fastdl direct GFLOP/s",
              "fastdl im2col GFLOP/s", "torch ms"):
        assert c in t.columns
    rows = {r["pass"]: r for r in t.rows}
    assert rows["fwd"]["fastdl direct ms"] > 0 and rows["fwd"]["fastdl im2col GFLOP/s"] > 0
    assert rows["fwd+bwd"]["fastdl im2col ms"] > 0
    # conv2d_backward takes no algorithm=: no forced numbers for the backward alone
    assert "fastdl direct ms" not in rows["bwd"]
    assert {"direct", "im2col"} <= set(calls)
    assert any("default backward" in n for n in t.notes)
    assert "| fastdl direct ms | fastdl im2col ms |" in t.markdown()


def test_conv_algorithm_in_backward_and_a_refused_layer(monkeypatch):
    from fastdl import ops
    conv = _tiny_conv(monkeypatch)
    fake, _ = _fake_ops(ops, fwd_algo=True, bwd_algo=True, refuse=("direct",))
    monkeypatch.setattr(conv, "ops", fake)
    assert conv.conv_algorithms() == (("direct", "im2col"), True)
    t = _run_conv(conv)
    rows = {r["pass"]: r for r in t.rows}
    assert rows["bwd"]["fastdl im2col ms"] > 0
    assert "fastdl direct ms" not in rows["fwd"]   # refused: printed as '-'
    assert any("Refused" in n and "direct" in n for n in t.notes)
