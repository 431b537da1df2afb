"""python -m bench [gemm|conv|pool|norm|rnn|train|keras|cuda|conv_layers|embedding|all] [--threads 1,2] [--quick] [--json FILE] [--plot FILE]

Runs the microbenchmarks and end-to-end training comparisons and prints markdown tables.
Run from the repository root. Each suite is a module bench/<suite>.py with ``run(opts)``
returning (or, better, yielding) ``_common.Table`` objects; a suite that is missing from this checkout is reported and skipped.
Ctrl-C stops promptly: the tables finished so far are printed and still written by --json/--plot.
"""
import argparse
import datetime
import importlib
import json
import sys
import time
import traceback

from . import _common

SUITES = ["gemm", "conv", "pool", "norm", "rnn", "train", "keras", "cuda", "conv_layers",
          "embedding"]


def import_suite(name):
    """The suite module, or None when bench/<name>.py does not exist in this checkout.
    An ImportError raised *inside* an existing suite (a missing dependency) propagates."""
    full = f"{__package__}.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def _jsonable(v):
    if hasattr(v, "item"):          # NumPy scalars
        return v.item()
    if hasattr(v, "tolist"):        # NumPy arrays
        return v.tolist()
    return str(v)


def write_atomic(path, text):
    """Write text to path through a temporary file in the same folder and os.replace."""
    from fastdl._fileio import atomic_file
    with atomic_file(path, "w", prefix=".bench-") as f:
        f.write(text)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", default=["gemm"], help=f"any of {SUITES} or 'all' (default: gemm)")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    p.add_argument("--json", metavar="FILE", help="write every number to FILE (atomically)")
    p.add_argument("--markdown", metavar="FILE", help="write the tables as markdown to FILE")
    p.add_argument("--plot", metavar="FILE", help="bar charts of fastdl against NumPy/PyTorch (needs matplotlib)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--list", action="store_true", help="list the suites and whether this checkout has them")
    p.add_argument("--train-repeats", type=int, default=None, metavar="N",
                   help="train suite: rounds of fits per framework, alternating, medians "
                        "reported (default 3, 1 with --quick)")
    p.add_argument("--train-models", default=None, metavar="LIST",
                   help="train suite: comma-separated subset of mlp,convnet,simple_rnn,lstm,dae")
    p.add_argument("--cuda-parts", default=None, metavar="LIST",
                   help="cuda suite: comma-separated subset of " + ",".join(_common.CUDA_PARTS)
                        + " (default: all)")
    opts = p.parse_args(argv)
    if opts.cuda_parts is not None:
        opts.cuda_parts = [s.strip() for s in opts.cuda_parts.split(",") if s.strip()]
        bad = [s for s in opts.cuda_parts if s not in _common.CUDA_PARTS]
        if bad or not opts.cuda_parts:
            p.error(f"--cuda-parts takes a subset of {','.join(_common.CUDA_PARTS)}, "
                    f"got {bad or 'nothing'}")
    if opts.train_repeats is not None and opts.train_repeats < 1:
        p.error(f"--train-repeats must be at least 1, got {opts.train_repeats}")
    if opts.train_models is not None:
        opts.train_models = [m.strip() for m in opts.train_models.split(",") if m.strip()]
        bad = [m for m in opts.train_models
               if m not in ("mlp", "convnet", "simple_rnn", "lstm", "dae")]
        if bad or not opts.train_models:
            p.error(f"--train-models takes a subset of mlp,convnet,simple_rnn,lstm,dae, got {bad or 'nothing'}")
    suites = list(SUITES) if "all" in opts.suites else list(opts.suites)
    for s in suites:
        if s not in SUITES:
            p.error(f"unknown suite {s!r}; choose from {SUITES} or 'all'")
    opts.suites = list(dict.fromkeys(suites))   # keep order, drop repeats
    opts.thread_list = None
    if opts.threads:
        try:
            opts.thread_list = sorted({int(t) for t in opts.threads.split(",") if t.strip()})
        except ValueError:
            p.error(f"--threads takes comma-separated positive integers, got {opts.threads!r}")
        if not opts.thread_list or min(opts.thread_list) < 1:
            p.error(f"--threads takes comma-separated positive integers, got {opts.threads!r}")
    return opts


def main(argv=None):
    opts = parse_args(argv)
    try:
        import fastdl
    except ImportError as e:
        print(f"python -m bench needs fastdl: {type(e).__name__}: {e}\n"
              "Install it (pip install .) or build it in the checkout (see README, Build), "
              "then run python -m bench from the repository root.", file=sys.stderr)
        return 2
    if opts.list:
        for s in SUITES:
            try:
                mod = import_suite(s)
                state = "available" if mod is not None else "not in this checkout"
            except Exception as e:
                state = f"fails to import ({type(e).__name__}: {e})"
            print(f"{s:6s} {state}")
        return 0
    if opts.thread_list is None:
        cores = fastdl.ops.available_cores()
        opts.thread_list = sorted({1, cores})
    header = (f"fastdl {fastdl.__version__} on {_common.machine()}; "
              f"kernels: {fastdl.ops.get_capability()}; NumPy BLAS: {_common.numpy_blas()}; "
              f"threads: {','.join(map(str, opts.thread_list))}")
    print(header)
    sys.stdout.flush()

    tables, missing, failed, done = [], [], [], []
    interrupted = False
    started = datetime.datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    try:
        for s in opts.suites:
            try:
                mod = import_suite(s)
            except Exception as e:
                failed.append(s)
                print(f"\nsuite {s!r} could not be imported: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            if mod is None:
                missing.append(s)
                print(f"\nsuite {s!r} is not part of this checkout (no bench/{s}.py); skipped",
                      file=sys.stderr)
                continue
            try:
                for t in mod.run(opts):
                    t.suite = s
                    print()
                    print(t.markdown())
                    sys.stdout.flush()
                    tables.append(t)
                done.append(s)
            except KeyboardInterrupt:
                raise
            except Exception:
                failed.append(s)
                print(f"\nsuite {s!r} failed:", file=sys.stderr)
                traceback.print_exc()
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted; keeping the {len(tables)} table(s) finished so far", file=sys.stderr)

    elapsed = time.perf_counter() - t0
    summary = f"{len(tables)} table(s) from {', '.join(done) or 'no suite'} in {elapsed:.0f} s"
    if missing:
        summary += f"; not in this checkout: {', '.join(missing)}"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    print(f"\n{summary}", file=sys.stderr)

    try:
        if opts.json:
            doc = {"fastdl": fastdl.__version__, "machine": _common.machine(),
                   "capability": fastdl.ops.get_capability(), "numpy_blas": _common.numpy_blas(),
                   "threads": opts.thread_list, "quick": opts.quick, "device": opts.device,
                   "suites": opts.suites, "missing": missing, "failed": failed,
                   "interrupted": interrupted, "started": started, "seconds": round(elapsed, 1),
                   "tables": [t.as_dict() for t in tables]}
            write_atomic(opts.json, json.dumps(doc, indent=1, default=_jsonable) + "\n")
            print(f"wrote {opts.json}", file=sys.stderr)
        if opts.markdown:
            text = header + "\n\n" + "\n\n".join(t.markdown() for t in tables) + "\n"
            write_atomic(opts.markdown, text)
            print(f"wrote {opts.markdown}", file=sys.stderr)
        if opts.plot:
            from ._plot import plot
            if plot(tables, opts.plot, title=header):
                print(f"wrote {opts.plot}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted while writing the results", file=sys.stderr)
        return 130
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
