"""python -m fastdl.bench [gemm|conv|pool|rnn|train|all] [--threads 1,2] [--json FILE] [--plot FILE]"""
import argparse
import importlib
import json
import sys

from . import _common

SUITES = ["gemm", "conv", "pool", "rnn", "train"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastdl.bench", description=__doc__)
    p.add_argument("suites", nargs="*", default=["gemm"], help=f"any of {SUITES} or 'all'")
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    p.add_argument("--json", metavar="FILE", help="write every number to FILE")
    p.add_argument("--plot", metavar="FILE", help="bar chart of fastdl against NumPy/PyTorch")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    opts = p.parse_args(argv)
    suites = SUITES if "all" in opts.suites else opts.suites
    for s in suites:
        if s not in SUITES:
            p.error(f"unknown suite {s!r}; choose from {SUITES} or 'all'")
    import fastdl
    if opts.threads:
        opts.thread_list = [int(t) for t in opts.threads.split(",")]
    else:
        cores = fastdl.ops.available_cores()
        opts.thread_list = sorted({1, cores})
    print(f"fastdl {fastdl.__version__} on {_common.machine()}; "
          f"kernels: {fastdl.ops.get_capability()}; NumPy BLAS: {_common.numpy_blas()}")
    tables = []
    try:
        for s in suites:
            mod = importlib.import_module(f".{s}", __package__)
            for t in mod.run(opts):
                print()
                print(t.markdown())
                sys.stdout.flush()
                tables.append(t)
    except KeyboardInterrupt:
        print("\ninterrupted; results so far are kept", file=sys.stderr)
    if opts.json:
        import os
        import tempfile
        d = os.path.dirname(os.path.abspath(opts.json))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".bench-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"machine": _common.machine(), "tables": [t.as_dict() for t in tables]}, f, indent=1)
        os.replace(tmp, opts.json)
    if opts.plot:
        from ._plot import plot
        plot(tables, opts.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
