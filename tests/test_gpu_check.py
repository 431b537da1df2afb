"""The GPU check's pieces that run without a GPU: the cuda benchmark suite says why it cannot
run, the summary turns the files tools/gpu_check.sh leaves behind into one table (including
steps that failed or ran out of time), and the script itself parses."""
import json
import os
import shutil
import subprocess
import types

import pytest

from bench import __main__ as runner
from bench import cuda, gpu_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(cuda.unavailable_reason() is None, reason="a GPU is usable here")
def test_cuda_suite_without_gpu_reports_cleanly(tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = runner.main(["cuda", "--cuda-parts", "gemm,train", "--threads", "1", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    (t,) = doc["tables"]
    assert t["columns"] == gpu_report.COLUMNS
    assert [r["check"] for r in t["rows"]] == ["gemm", "train"]
    assert all(r["result"].startswith("skipped: no GPU") for r in t["rows"])
    assert "skipped: no GPU" in capsys.readouterr().out


def test_cuda_parts_option_is_checked(capsys):
    assert runner.parse_args(["cuda", "--cuda-parts", "conv, rnn"]).cuda_parts == ["conv", "rnn"]
    assert runner.parse_args(["cuda"]).cuda_parts is None
    with pytest.raises(SystemExit):
        runner.parse_args(["cuda", "--cuda-parts", "gemm,fft"])
    assert "fft" in capsys.readouterr().err


def test_add_row_verdicts():
    t = cuda._table("t")
    cuda._add(t, "a", "1 ms", "cuDNN 1 ms", 0.9, 0.8)
    cuda._add(t, "b", "1 ms", "cuDNN 1 ms", 0.7, 0.8)
    cuda._add(t, "c", "1 s", "CPU 1 s", 1.0, 1.0, strict=True)
    cuda._add(t, "d", "1 ms", "PyTorch is not installed", None, 0.5)
    cuda._add(t, "e", "1 ms", "cuDNN 2 ms", 2.0)
    res = {r["check"]: (r["target"], r["result"]) for r in t.rows}
    assert res == {"a": (">= 0.8", "met"), "b": (">= 0.8", "missed"), "c": ("> 1", "missed"),
                   "d": (">= 0.5", "no reference"), "e": (None, None)}


def _bench_json(path, rows, interrupted=False):
    doc = {"tables": [{"title": "x", "columns": gpu_report.COLUMNS, "rows": rows,
                       "notes": ["GPU: test"]}],
           "interrupted": interrupted, "failed": []}
    path.write_text(json.dumps(doc))


JUNIT_OK = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="0" failures="0" skipped="0" tests="3"><testcase classname="tests.test_cuda" name="a"/>
<testcase classname="tests.test_cuda" name="b"/><testcase classname="tests.test_cuda" name="c"/>
</testsuite></testsuites>"""

JUNIT_FAIL = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="0" failures="1" skipped="0" tests="2"><testcase classname="tests.test_cuda" name="ok"/>
<testcase classname="tests.test_cuda" name="test_gemm_x"><failure message="boom"/></testcase>
</testsuite></testsuites>"""


def test_report_all_met(tmp_path):
    (tmp_path / "steps.tsv").write_text("build\t0\t80\tok\ntests\t0\t60\tok\n"
                                        + "".join(f"bench-{p}\t0\t20\tok\n" for p in cuda.PARTS))
    (tmp_path / "pytest-cuda.xml").write_text(JUNIT_OK)
    for p in cuda.PARTS:
        _bench_json(tmp_path / f"bench-cuda-{p}.json",
                    [dict(check=f"{p} x", fastdl="1 ms", reference="ref 1 ms",
                          **{"speed vs ref": 1.2}, target=">= 0.5", result="met")])
    assert gpu_report.main([str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "| CUDA tests (pytest -m cuda) | 3 passed, 0 failed, 0 errors, 0 skipped |" in text
    assert "Targets met: 6 of 6" in text and "| train x | 1 ms | ref 1 ms | 1.20 |" in text


def test_report_failures_timeouts_and_missing_files(tmp_path, capsys):
    (tmp_path / "steps.tsv").write_text(
        "build\t0\t80\tok\ntests\t1\t60\tfailed (exit 1)\nbench-gemm\t0\t20\tok\n"
        "bench-conv\t124\t90\ttimed out (limit 90 s)\nbench-rnn\t1\t3\tfailed (exit 1)\n"
        "bench-train\t\t0\tskipped (out of time)\n")
    (tmp_path / "pytest-cuda.xml").write_text(JUNIT_FAIL)
    _bench_json(tmp_path / "bench-cuda-gemm.json",
                [dict(check="sgemm 4096x4096x4096 FP32", fastdl="40 TFLOP/s",
                      reference="cuBLAS FP32 50 TFLOP/s", **{"speed vs ref": 0.8}, target=">= 0.8",
                      result="met")])
    _bench_json(tmp_path / "bench-cuda-conv.json",
                [dict(check="conv fwd+bwd l1 FP32", fastdl="2 ms", reference="cuDNN 1 ms",
                      **{"speed vs ref": 0.5}, target=">= 0.5", result="met")], interrupted=True)
    assert gpu_report.main([str(tmp_path)]) == 1
    text = capsys.readouterr().out
    assert "missed: test_cuda::test_gemm_x" in text
    assert "cut short: step timed out (limit 90 s) after 90 s" in text
    assert "| rnn |" in text and "not measured: step failed (exit 1) after 3 s" in text
    assert "not measured: step skipped (out of time)" in text


JUNIT_SKIP = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="0" failures="0" skipped="1" tests="2"><testcase classname="tests.test_cuda" name="ok"/>
<testcase classname="tests.test_distribution" name="test_nccl"><skipped
 message="NCCL needs one GPU per rank: 2 ranks, 1 GPU(s) here"/></testcase>
</testsuite></testsuites>"""


def test_report_names_why_tests_were_skipped(tmp_path):
    (tmp_path / "steps.tsv").write_text("build\t0\t80\tok\ntests\t0\t60\tok\n")
    (tmp_path / "pytest-cuda.xml").write_text(JUNIT_SKIP)
    gpu_report.main([str(tmp_path)])
    text = (tmp_path / "summary.md").read_text()
    assert ("| 1 passed, 0 failed, 0 errors, 1 skipped | - | - | all pass | missed: 1 skipped "
            "(NCCL needs one GPU per rank: 2 ranks, 1 GPU(s) here) |") in text


def test_report_with_nothing_at_all(tmp_path):
    assert gpu_report.main([str(tmp_path)]) == 1
    text = (tmp_path / "summary.md").read_text()
    assert "missed: step not run" in text and "not run: step not run" in text


def test_gpu_check_script_parses():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = os.path.join(ROOT, "tools", "gpu_check.sh")
    assert subprocess.run([bash, "-n", script]).returncode == 0
    help_text = subprocess.run([bash, script, "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "pytest -m cuda" in help_text.stdout
