"""The GPU check's summary: one table of every CUDA result with its target.

    python -m bench.gpu_report OUT_DIR

Reads what tools/gpu_check.sh leaves in OUT_DIR: steps.tsv (one line per step: name, exit
status, seconds, how it ended), pytest-cuda.xml (pytest's JUnit report of ``-m cuda``) and
bench-cuda-<part>.json (``python -m bench cuda --cuda-parts <part> --json ...``, one per part).
Prints the table, writes it to OUT_DIR/summary.md, and exits 0 when every target was met and
every step ended well, else 1. A step that failed or ran out of time shows up as a row that
says so, never as a missing line.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

from ._common import CUDA_PARTS, Table

COLUMNS = ["check", "fastdl", "reference", "speed vs ref", "target", "result"]


def read_steps(out_dir):
    """{step name: (exit status or None, seconds, how it ended)} from steps.tsv."""
    steps = {}
    try:
        with open(os.path.join(out_dir, "steps.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 4:
                    continue
                name, rc, sec, how = parts[:4]
                try:
                    rc = int(rc)
                except ValueError:
                    rc = None
                steps[name] = (rc, sec, how)
    except OSError:
        pass
    return steps


def _step_text(steps, name):
    if name not in steps:
        return "step not run"
    rc, sec, how = steps[name]
    return f"step ok ({sec} s)" if how.startswith("ok") else f"step {how} after {sec} s"


def pytest_row(out_dir, steps):
    """The row for ``pytest -m cuda``: met when tests ran, none failed and none was skipped."""
    path = os.path.join(out_dir, "pytest-cuda.xml")
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return dict(check="CUDA tests (pytest -m cuda)", target="all pass",
                    result=f"not run: {_step_text(steps, 'tests')} ({type(e).__name__})")
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {k: sum(int(s.get(k, 0) or 0) for s in suites) for k in ("tests", "failures", "errors",
                                                                 "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    text = (f"{passed} passed, {n['failures']} failed, {n['errors']} errors, "
            f"{n['skipped']} skipped")
    if n["failures"] or n["errors"]:
        failed = [f"{c.get('classname', '').rsplit('.', 1)[-1]}::{c.get('name')}"
                  for c in root.iter("testcase")
                  if c.find("failure") is not None or c.find("error") is not None]
        result = "missed: " + ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
    elif passed == 0:
        result = "missed: no CUDA test ran"
    elif n["skipped"]:
        reasons = sorted({(c.find("skipped").get("message") or "no reason given").strip()
                          for c in root.iter("testcase") if c.find("skipped") is not None})
        result = f"missed: {n['skipped']} skipped ({'; '.join(reasons[:3])})"
    else:
        result = "met"
    rc = steps.get("tests", (0, "", "ok"))
    if result == "met" and not rc[2].startswith("ok"):
        result = f"missed: {_step_text(steps, 'tests')}"
    return dict(check="CUDA tests (pytest -m cuda)", fastdl=text, target="all pass", result=result)


def part_rows(out_dir, part, steps):
    """The rows of one part of the cuda suite, or one row saying why there are none."""
    name = f"bench-{part}"
    path = os.path.join(out_dir, f"bench-cuda-{part}.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return [dict(check=part, result=f"not measured: {_step_text(steps, name)} "
                                       f"(no results: {type(e).__name__})")], []
    rows, notes = [], []
    for t in doc.get("tables", []):
        if t.get("columns") != COLUMNS:
            continue
        rows.extend({c: r.get(c) for c in COLUMNS} for r in t.get("rows", []))
        notes.extend(t.get("notes", [])[:1])
    if doc.get("interrupted"):
        rows.append(dict(check=part, result=f"cut short: {_step_text(steps, name)}; "
                                            "the rows above were finished"))
    elif doc.get("failed"):
        rows.append(dict(check=part, result=f"failed: {_step_text(steps, name)} (see the log)"))
    if not rows:
        rows.append(dict(check=part, result=f"no results: {_step_text(steps, name)}"))
    return rows, notes


def summary(out_dir):
    """(Table, all good)."""
    steps = read_steps(out_dir)
    t = Table("fastdl GPU check", list(COLUMNS))
    build = steps.get("build")
    t.add(check="build (FASTDL_CUDA=ON)", target="builds",
          result="met" if build and build[2].startswith("ok") else f"missed: {_step_text(steps, 'build')}")
    t.add(**pytest_row(out_dir, steps))
    notes = []
    for part in CUDA_PARTS:
        rows, part_notes = part_rows(out_dir, part, steps)
        for r in rows:
            t.add(**r)
        notes.extend(n for n in part_notes if n not in notes)
    results = [str(r.get("result") or "") for r in t.rows]
    targets = [r for r in t.rows if r.get("target")]
    met = sum(1 for r in targets if r.get("result") == "met")
    bad = [x for x in results if x.startswith(("missed", "not ", "no ", "cut short", "failed"))]
    t.notes.append(f"Targets met: {met} of {len(targets)}. speed vs ref = the reference's time / "
                   f"fastdl's (above 1: fastdl faster).")
    t.notes.extend(notes)
    if steps:
        t.notes.append("Steps: " + "; ".join(f"{k}: {v[2]} ({v[1]} s)" for k, v in steps.items()))
    return t, not bad and met == len(targets)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_dir = argv[0] if argv else "gpu-check-out"
    table, good = summary(out_dir)
    text = table.markdown()
    print(text)
    try:
        with open(os.path.join(out_dir, "summary.md"), "w") as f:
            f.write(text + "\n")
    except OSError as e:
        print(f"could not write summary.md: {e}", file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
