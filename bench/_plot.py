"""--plot: bar charts of the throughput columns (fastdl against NumPy and PyTorch), one per table."""
import sys

from ._common import rate_columns
from fastdl._fileio import save_figure

MATPLOTLIB_MISSING = ("--plot needs matplotlib, which is not installed: pip install matplotlib "
                      "(or pip install 'fastdl[plot]'); the tables above are complete without it")


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(v, "item")


def _row_label(table, row, rates):
    parts = []
    for c in table.columns:
        if c in rates:
            continue
        v = row.get(c)
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            parts.append(f"{c}={v}")
    return "\n".join(parts) if parts else str(table.rows.index(row) + 1)


def plottable(tables):
    """(table, rate columns) for every table that has at least one throughput number."""
    out = []
    for t in tables:
        rates = rate_columns(t)
        if rates and any(_number(r.get(c)) for r in t.rows for c in rates):
            out.append((t, rates))
    return out


def plot(tables, path, title=None):
    """Write the charts to path (format from its extension). Returns True when a file was written;
    prints a clear message and returns False when matplotlib is missing or nothing has numbers."""
    todo = plottable(tables)
    if not todo:
        print("--plot: no table with throughput columns (GFLOP/s, GB/s, samples/s) to draw",
              file=sys.stderr)
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(MATPLOTLIB_MISSING, file=sys.stderr)
        return False

    n = len(todo)
    fig, axes = plt.subplots(n, 1, figsize=(max(8, 1.2 * max(len(t.rows) for t, _ in todo) + 3), 3.6 * n),
                             squeeze=False)
    for ax, (t, rates) in zip(axes[:, 0], todo):
        labels = [_row_label(t, r, rates) for r in t.rows]
        width = 0.8 / len(rates)
        for j, c in enumerate(rates):
            xs = [i + (j - (len(rates) - 1) / 2) * width for i in range(len(t.rows))]
            ys = [float(r.get(c)) if _number(r.get(c)) else 0.0 for r in t.rows]
            ax.bar(xs, ys, width=width, label=c)
        ax.set_xticks(range(len(t.rows)))
        ax.set_xticklabels(labels, fontsize=7)
        units = sorted({c.split()[-1] for c in rates})
        ax.set_ylabel(" / ".join(units))
        ax.set_title(t.title, fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return True
