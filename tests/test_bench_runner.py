"""The benchmark runner (python -m fastdl.bench) with tiny fake suites: no timing is checked."""
import json
import sys
import types

import pytest

from fastdl.bench import __main__ as runner
from fastdl.bench import _common, _plot
from fastdl.bench._common import Table


def fake_suite(monkeypatch, name, run):
    mod = types.ModuleType(f"fastdl.bench.{name}")
    mod.run = run
    monkeypatch.setitem(sys.modules, f"fastdl.bench.{name}", mod)
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
    assert "'nosuchsuite' is not part of this build" in cap.err
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
