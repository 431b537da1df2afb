"""Shared by every benchmark suite: timing, machine description, tables.

A suite is a module bench/<name>.py with ``run(opts)`` that returns a list of Table, or
better yields them one at a time (then Ctrl-C keeps the tables already finished). ``opts`` has
``thread_list`` (thread counts to measure), ``quick`` (fewer shapes and repeats) and ``device``.

Column names: a throughput column carries its unit, e.g. ``"fastdl GFLOP/s"``, ``"NumPy GFLOP/s"``,
``"PyTorch GFLOP/s"``, ``"fastdl GB/s"`` or ``"fastdl samples/s"``; ``--plot`` draws every column
whose name ends in a rate unit (see ``rate_columns``), one group of bars per row, the row labelled
by its text columns (shape, threads, ...). Ratio columns ("fastdl/PyTorch") are not drawn.
"""
import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list
    rows: list = field(default_factory=list)  # list of dicts keyed by column
    notes: list = field(default_factory=list)
    suite: str = None   # set by the runner

    def add(self, **row):
        """Append a row given as column=value keywords (unknown columns are an error)."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.title}: no column(s) {sorted(unknown)}; columns are {self.columns}")
        self.rows.append(row)
        return row

    def markdown(self):
        def fmt(v):
            if v is None:
                return "-"
            if isinstance(v, float):
                if v == 0 or abs(v) >= 100:
                    return f"{v:.0f}"
                if abs(v) >= 10:
                    return f"{v:.1f}"
                return f"{v:.2f}"
            return str(v)

        lines = [f"### {self.title}", "",
                 "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join(fmt(r.get(c)) for c in self.columns) + " |")
        for n in self.notes:
            lines.append("")
            lines.append(n)
        return "\n".join(lines)

    def as_dict(self):
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes,
                "suite": self.suite}


# The parts of the cuda suite (python -m bench cuda --cuda-parts gemm,conv,...).
CUDA_PARTS = ("gemm", "conv", "rnn", "train")

RATE_UNITS = ("GFLOP/s", "TFLOP/s", "GB/s", "samples/s", "images/s", "steps/s", "it/s")


def rate_columns(table):
    """The throughput columns of a table (names ending in one of RATE_UNITS)."""
    return [c for c in table.columns if isinstance(c, str) and c.strip().endswith(RATE_UNITS)]


def gflops(flops, seconds):
    """GFLOP/s for `flops` floating-point operations done in `seconds` (None if seconds is 0)."""
    return flops / seconds / 1e9 if seconds > 0 else None


def ratio(a, b):
    """a / b, or None when either is missing or b is 0 (printed as '-')."""
    if a is None or b is None or b == 0:
        return None
    return a / b


# Thread pools of the libraries compared here (fastdl's and PyTorch's OpenMP, NumPy's
# OpenBLAS) keep spinning for a while after each call. On a machine with few cores the
# spinning workers of one library starve the next library's threads, so every sample
# starts after a pause long enough for the previous library's workers to go to sleep.
SETTLE_S = 0.12


def settle():
    time.sleep(SETTLE_S)


def timeit(fn, *, warmup=2, repeat=7, min_time=0.05):
    """Median seconds per call of fn(): warm up, then `repeat` samples of enough calls
    to last at least `min_time` each."""
    settle()
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, int(min_time / one))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def side_by_side(fns, *, repeat=7, min_time=0.05, warmup=2):
    """Median seconds per call of each fn, samples interleaved so that machine
    noise hits all of them alike."""
    inner = []
    for fn in fns:
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        inner.append(max(1, int(min_time / max(time.perf_counter() - t0, 1e-9))))
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            settle()
            fn()
            t0 = time.perf_counter()
            for _ in range(inner[i]):
                fn()
            samples[i].append((time.perf_counter() - t0) / inner[i])
    return [statistics.median(s) for s in samples]


def time_passes(passes, *, repeat):
    """Time each (name, fastdl fn, torch fn or None, work) of ``passes`` side by side;
    yield (name, fastdl seconds, torch seconds or None, work)."""
    for name, ffn, tfn, work in passes:
        times = side_by_side([ffn] + ([tfn] if tfn else []), repeat=repeat)
        yield name, times[0], (times[1] if tfn else None), work


@contextlib.contextmanager
def threads_restored(torch):
    """Give fastdl's (and torch's, when not None) thread counts back on exit."""
    import fastdl
    old = fastdl.get_num_threads()
    old_torch = torch.get_num_threads() if torch else None
    try:
        yield
    finally:
        fastdl.set_num_threads(old)
        if torch:
            torch.set_num_threads(old_torch)


def set_threads(n, torch):
    """Run fastdl (and torch, when not None) on n threads."""
    import fastdl
    fastdl.set_num_threads(n)
    if torch:
        torch.set_num_threads(n)


def torch_or_none():
    try:
        import torch
        return torch
    except Exception:
        return None


def numpy_blas():
    """Name and version of the BLAS NumPy calls, via threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                arch = lib.get("architecture")
                return f"{lib.get('internal_api')} {lib.get('version')}" + (f" ({arch})" if arch else "")
    except Exception:
        pass
    return "unknown BLAS (install threadpoolctl to name it)"


def blas_threads(n):
    """Context manager limiting NumPy's BLAS (and OpenMP) to n threads, when threadpoolctl exists."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n)
    except Exception:
        import contextlib
        return contextlib.nullcontext()


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}"
