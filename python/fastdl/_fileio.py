"""Writing files atomically: into a temporary file beside the target, then os.replace,
so that a reader never sees half a file and a failed write leaves the old one."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_file(path, mode="w", prefix=None):
    """Open a temporary file in path's folder for writing (``prefix`` begins its name;
    default ".<name of path>."); on leaving the block it replaces path, and on any
    error (KeyboardInterrupt too) it is removed and the error propagates."""
    folder = os.path.dirname(os.path.abspath(path))
    if prefix is None:
        prefix = "." + os.path.basename(path) + "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_figure(fig, path, dpi):
    """fig.savefig to path through a temporary file beside it (format from path's
    extension, PNG without one), then close fig."""
    import matplotlib.pyplot as plt
    d = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(d, f".{stem}.tmp{ext or '.png'}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
