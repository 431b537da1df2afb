"""Finding, downloading and verifying the MNIST-style data sets (shared by mnist and fashion_mnist).

Search order for a data set called <name> ("mnist" or "fashion-mnist"):

 1. the ``path`` argument of ``load_data`` (a folder with the four IDX files, or an .npz file);
    a path given that holds no data is a FileNotFoundError naming it, never a fall-back;
 2. ``$FASTDL_DATA/<name>``;
 3. fastdl's cache, ``~/.fastdl/datasets/<name>``;
 4. Keras' cache: ``~/.keras/datasets/mnist.npz`` or ``~/.keras/datasets/fashion-mnist/``;
 5. ``/usr/share/datasets/<name>``, where Debian's ``dataset-fashion-mnist`` package installs.

A folder holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, gzip-compressed (``.gz``) or
not. If none of these has the data, ``load_data`` downloads the four ``.gz`` files from the
mirrors into fastdl's cache, checks their SHA-256 and writes each atomically (temporary name,
then ``os.replace``), so an interrupted download never leaves a half file behind.
"""
import gzip
import hashlib
import http.client
import os
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._idx import load_idx

CACHE_ROOT = os.path.join("~", ".fastdl", "datasets")
KERAS_ROOT = os.path.join("~", ".keras", "datasets")
SYSTEM_ROOTS = ("/usr/share/datasets",)   # Debian's dataset-* packages install here
ENV_DATA = "FASTDL_DATA"
ENV_MIRROR = "FASTDL_DATA_MIRROR"

# key -> file stem, in Keras' order
IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class IntegrityError(ValueError):
    """A downloaded file failed its checksum or was cut short (it was discarded)."""


@dataclass
class DatasetSpec:
    name: str                 # folder name: "mnist", "fashion-mnist"
    title: str                # for messages: "MNIST", "Fashion-MNIST"
    mirrors: list             # base URLs holding the four .gz files
    # file name (.gz) -> accepted SHA-256 digests, of the .gz bytes or of the decompressed IDX bytes
    sha256: dict
    keras_npz: str = None     # Keras' cache file name (mnist.npz) or None
    keras_dir: str = None     # Keras' cache folder (fashion-mnist) or None
    notes: list = field(default_factory=list)


def _expand(p):
    return os.path.abspath(os.path.expanduser(p))


def candidates(spec, path=None):
    """Every place looked at, in order: list of (label, filesystem path)."""
    out = []
    if path is not None:
        out.append(("the path argument", _expand(os.fspath(path))))
    env = os.environ.get(ENV_DATA)
    if env:
        out.append((f"${ENV_DATA}/{spec.name}", _expand(os.path.join(env, spec.name))))
    out.append(("fastdl's cache", _expand(os.path.join(CACHE_ROOT, spec.name))))
    if spec.keras_npz:
        out.append(("Keras' cache", _expand(os.path.join(KERAS_ROOT, spec.keras_npz))))
    if spec.keras_dir:
        out.append(("Keras' cache", _expand(os.path.join(KERAS_ROOT, spec.keras_dir))))
    for root in SYSTEM_ROOTS:
        out.append(("system data sets", os.path.join(root, spec.name)))
    return out


def _idx_files(folder):
    """The four IDX files in folder as {key: path}, and the stems that are missing."""
    found, missing = {}, []
    for key, stem in IDX_STEMS.items():
        dotted = stem.replace("-idx", ".idx")   # train-images.idx3-ubyte, as some unpackers name them
        for fname in (stem + ".gz", stem, dotted + ".gz", dotted):
            p = os.path.join(folder, fname)
            if os.path.isfile(p):
                found[key] = p
                break
        else:
            missing.append(stem)
    return found, missing


def _probe(spec, label, p):
    """('npz', file) | ('idx', {key: file}) | (None, reason) for one candidate place."""
    if os.path.isfile(p):
        if p.endswith(".npz"):
            return "npz", p
        return None, "is a file, not a folder or an .npz file"
    if not os.path.isdir(p):
        return None, "does not exist"
    found, missing = _idx_files(p)
    if not missing:
        return "idx", found
    if spec.keras_npz and os.path.isfile(os.path.join(p, spec.keras_npz)):
        return "npz", os.path.join(p, spec.keras_npz)
    if found:
        return None, "incomplete: missing " + ", ".join(missing)
    return None, "has none of the files"


def locate(spec, path=None):
    """Where the data set is on disk (a folder or an .npz file), or None. Never downloads."""
    for label, p in candidates(spec, path):
        kind, what = _probe(spec, label, p)
        if kind == "npz":
            return what
        if kind == "idx":
            return p
    return None


def _check(spec, where, arrays):
    (x_train, y_train), (x_test, y_test) = arrays
    for xn, x, yn, y in (("x_train", x_train, "y_train", y_train), ("x_test", x_test, "y_test", y_test)):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise ValueError(f"{where}: {xn} should be uint8 images (N, H, W), got {x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise ValueError(f"{where}: {yn} should be uint8 labels (N,), got {y.dtype} {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{where}: {xn} has {x.shape[0]} images but {yn} {y.shape[0]} labels")
    return arrays


def _load_npz(spec, p):
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = ((f["x_train"], f["y_train"]), (f["x_test"], f["y_test"]))
    except KeyError as e:
        raise ValueError(f"{p}: not a {spec.title} .npz file (no array {e})") from None
    except (OSError, ValueError, zlib.error) as e:
        raise ValueError(f"{p}: cannot read it as an .npz file ({e})") from None
    return _check(spec, p, arrays)


def _load_idx_folder(spec, files, folder):
    a = {k: load_idx(files[k]) for k in IDX_STEMS}
    return _check(spec, folder, ((a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])))


def load_from(spec, where):
    """Load from a folder of IDX files or an .npz file (as returned by locate)."""
    if os.path.isfile(where):
        return _load_npz(spec, where)
    files, missing = _idx_files(where)
    if missing:
        raise FileNotFoundError(f"{where}: missing " + ", ".join(missing))
    return _load_idx_folder(spec, files, where)


# ------------------------------------------------------------------------------------ download
def mirrors_for(spec, mirror=None):
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR) or None
    if mirror is None:
        return list(spec.mirrors)
    if isinstance(mirror, str):
        mirror = [m for m in mirror.split(",") if m.strip()]
    return [m.strip() for m in mirror]


def _url(base, fname):
    return base if base.endswith(fname) else base.rstrip("/") + "/" + fname


def _say(verbose, msg, end="\n"):
    if verbose:
        print(msg, end=end, file=sys.stderr, flush=True)


def _fetch_one(spec, url, fname, dest_dir, timeout, verbose):
    """Download url into dest_dir/fname after checking it; IntegrityError or OSError on failure."""
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{fname}.", suffix=".part")
    started = False
    try:
        h = hashlib.sha256()
        got = 0
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "fastdl"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                total = r.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                size = "" if total is None else f" ({total / 1e6:.1f} MB)" if total >= 100_000 else f" ({total} bytes)"
                _say(verbose, f"  {url}{size}", end="")
                started = True
                step = max((total or 0) // 10, 1 << 20)
                mark = step
                while True:
                    try:
                        chunk = r.read(1 << 16)
                    except Exception as e:   # http.client.IncompleteRead and friends
                        raise IntegrityError(f"{url}: download cut short after {got} bytes ({e})") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if got >= mark:
                        _say(verbose, ".", end="")
                        mark += step
        _say(verbose, " done")
        started = False
        if total is not None and got != total:
            raise IntegrityError(f"{url}: download cut short: got {got} of {total} bytes")
        digests = {h.hexdigest()}
        try:
            with gzip.open(tmp, "rb") as g:
                c = hashlib.sha256()
                for chunk in iter(lambda: g.read(1 << 20), b""):
                    c.update(chunk)
            digests.add(c.hexdigest())
        except (EOFError, OSError, zlib.error) as e:
            raise IntegrityError(f"{url}: not a complete gzip file, probably cut short ({e})") from None
        expected = set(spec.sha256.get(fname, ()))
        if expected and not (digests & expected):
            raise IntegrityError(f"{url}: SHA-256 mismatch: got {h.hexdigest()} (file) / "
                                 f"{c.hexdigest()} (content), expected one of {sorted(expected)}")
        try:
            load_idx(tmp)   # the structure check; the only check where no digest is known
        except ValueError as e:
            raise IntegrityError(f"{url}: {e}") from None
        os.replace(tmp, os.path.join(dest_dir, fname))
        tmp = None
    finally:
        if tmp is not None:
            if started:
                _say(verbose, " failed")
            try:
                os.unlink(tmp)
            except OSError:
                pass


def download(spec, mirror=None, timeout=30, verbose=True, cache=None):
    """Fetch the four .gz files into the cache folder; return that folder.

    Each mirror is tried in turn. Raises IntegrityError (a ValueError) if a mirror answered
    with a bad file and none answered with a good one, else OSError subclasses
    (FileNotFoundError listing the reasons) when no mirror could be reached.
    """
    dest = _expand(cache if cache is not None else os.path.join(CACHE_ROOT, spec.name))
    os.makedirs(dest, exist_ok=True)
    reasons = []
    integrity = None
    for base in mirrors_for(spec, mirror):
        _say(verbose, f"Downloading {spec.title} into {dest}")
        try:
            for stem in IDX_STEMS.values():
                fname = stem + ".gz"
                if os.path.isfile(os.path.join(dest, fname)):
                    continue   # kept from an earlier, interrupted run: it was verified then
                _fetch_one(spec, _url(base, fname), fname, dest, timeout, verbose)
            return dest
        except IntegrityError as e:
            integrity = integrity or e
            reasons.append(str(e))
            _say(verbose, f"  rejected: {e}")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = e.reason if type(e) is urllib.error.URLError else e   # HTTPError: "HTTP Error 404: ..."
            reasons.append(f"{base}: {type(e).__name__}: {reason}")
            _say(verbose, f"  failed: {reason}")
    try:
        os.rmdir(dest)   # only if empty: leave no trace of a download that never started
    except OSError:
        pass
    if integrity is not None:
        raise IntegrityError("; ".join(reasons) + ". The bad files were discarded.")
    raise DownloadError(reasons)


class DownloadError(OSError):
    def __init__(self, reasons):
        super().__init__("; ".join(reasons) or "no mirror to download from")
        self.reasons = list(reasons)


def not_found_message(spec, path, download_reasons):
    lines = [f"{spec.title} was not found. Looked in:"]
    for label, p in candidates(spec, path):
        kind, why = _probe(spec, label, p)
        lines.append(f"  - {label}: {p} ({why})")
    if os.environ.get(ENV_DATA) is None:
        lines.append(f"  - ${ENV_DATA} is not set")
    if download_reasons is None:
        lines.append("Downloading was not attempted (download=False).")
    else:
        lines.append("Downloading failed:")
        lines.extend(f"  - {r}" for r in download_reasons)
    stems = ", ".join(s + ".gz" for s in IDX_STEMS.values())
    mirrors = spec.mirrors[0] if spec.mirrors else ""
    lines.append(f"To get the data: on a machine with internet access run load_data() once, or download "
                 f"{stems} (from {mirrors}) into {_expand(os.path.join(CACHE_ROOT, spec.name))} or into "
                 f"a folder given as path= or ${ENV_DATA}/{spec.name}.")
    lines.extend(spec.notes)
    lines.append("A small digits set that needs no download: fastdl.datasets.digits.load_data().")
    return "\n".join(lines)


def explicit_path(spec, path):
    """The data at an explicit ``path`` argument, or FileNotFoundError naming it: an explicit
    path never falls back to the other places. Keras' own file name for the cache
    (``mnist.npz``, its default) keeps Keras' meaning: the usual search (None)."""
    raw = os.fspath(path)
    p = _expand(raw)
    kind, what = _probe(spec, "the path argument", p)
    if kind == "npz":
        return what
    if kind == "idx":
        return p
    if spec.keras_npz and raw == spec.keras_npz and not os.path.exists(p):
        return None
    raise FileNotFoundError(f"{spec.title}: the path given, {raw!r} ({p}), {what}; give a folder "
                            f"holding the four IDX files ({', '.join(IDX_STEMS.values())}, "
                            f".gz or not) or an .npz file, or leave path out to search the usual "
                            f"places")


def load_data(spec, path=None, download_ok=True, mirror=None, timeout=30, verbose=True):
    if path is not None:
        where = explicit_path(spec, path)
        if where is not None:
            return load_from(spec, where)
        path = None
    where = locate(spec, path)
    if where is not None:
        return load_from(spec, where)
    if not download_ok:
        raise FileNotFoundError(not_found_message(spec, path, None))
    try:
        where = download(spec, mirror=mirror, timeout=timeout, verbose=verbose)
    except DownloadError as e:
        raise FileNotFoundError(not_found_message(spec, path, e.reasons)) from None
    return load_from(spec, where)


def reachable(url, timeout=3.0):
    """True if a TCP connection to url's host opens within timeout seconds (name lookup included:
    it runs in a daemon thread, since socket timeouts do not cover DNS)."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    port = u.port or (443 if u.scheme == "https" else 80)
    if not host:
        return False
    ok = []

    def attempt():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


_LOAD_DATA_DOC = """Load {title} as ``(x_train, y_train), (x_test, y_test)``.

    x_train: uint8 (60000, 28, 28), y_train: uint8 (60000,), x_test: uint8 (10000, 28, 28),
    y_test: uint8 (10000,); pixels 0..255 (0 = background), labels 0..9{labels}.

    path: a folder holding the four IDX files (``.gz`` or not){npz}; looked at first. download:
    fetch into ``~/.fastdl/datasets/{name}`` when the data is nowhere on disk (checked by
    SHA-256). mirror: base URL(s) to download from instead of the default mirrors (also
    ``$FASTDL_DATA_MIRROR``). timeout: seconds per network operation. verbose: progress on
    stderr while downloading.

    Raises FileNotFoundError, listing every place looked at, when the data is not on disk and
    cannot be downloaded; ValueError naming the file when a file is corrupt.
    """


def public_functions(spec, module, labels=""):
    """The ``load_data`` and ``locate`` functions of the data set module ``module`` for ``spec``
    (the same for every MNIST-shaped data set); ``labels`` is added to the labels' description."""

    def public_load_data(path=None, *, download=True, mirror=None, timeout=30, verbose=True):
        return load_data(spec, path, download_ok=download, mirror=mirror, timeout=timeout,
                         verbose=verbose)

    def public_locate(path=None):
        return locate(spec, path)

    npz = f" or a Keras ``{spec.keras_npz}``" if spec.keras_npz else ""
    public_load_data.__doc__ = _LOAD_DATA_DOC.format(title=spec.title, name=spec.name,
                                                     labels=labels, npz=npz)
    public_locate.__doc__ = (f"The folder{' or .npz file' if spec.keras_npz else ''} load_data "
                             f"would read, or None if {spec.title} is not on disk.")
    for f, name in ((public_load_data, "load_data"), (public_locate, "locate")):
        f.__module__, f.__name__, f.__qualname__ = module, name, name
    return public_load_data, public_locate
