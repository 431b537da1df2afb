"""fastdl.datasets: IDX reading, the search order, downloads (from a local server only) and the
bundled digits. No test reaches the internet."""
import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from fastdl import datasets
from fastdl.datasets import _fetch, digits, fashion_mnist, load_idx, mnist, save_idx

STEMS = list(_fetch.IDX_STEMS.values())


# ---------------------------------------------------------------------------- helpers
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """HOME, $FASTDL_DATA, the mirror and the system folders all point into tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FASTDL_DATA", raising=False)
    monkeypatch.delenv("FASTDL_DATA_MIRROR", raising=False)
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setattr(_fetch, "SYSTEM_ROOTS", (str(system),))
    return tmp_path


def make_arrays(n_train, n_test, seed=0, side=28):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, side, side), dtype=np.uint8)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, side, side), dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    return (x_train, y_train), (x_test, y_test)


def write_idx_folder(folder, arrays, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = arrays
    for stem, a in zip(STEMS, (x_train, y_train, x_test, y_test)):
        save_idx(str(folder / (stem + (".gz" if gz else ""))), a)
    return folder


def gz_bytes(arrays):
    (x_train, y_train), (x_test, y_test) = arrays
    out = {}
    for stem, a in zip(STEMS, (x_train, y_train, x_test, y_test)):
        raw = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
        out[stem + ".gz"] = gzip.compress(raw, mtime=0)
    return out


def assert_same(got, want):
    (a, b), (c, d) = got
    (wa, wb), (wc, wd) = want
    for g, w in ((a, wa), (b, wb), (c, wc), (d, wd)):
        assert g.dtype == np.uint8 and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------------------- load_idx
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((3, 5, 7)) * 100).astype(dtype)
    p = str(tmp_path / ("a.idx" + (".gz" if gz else "")))
    save_idx(p, a)
    with open(p, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == gz
    b = load_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable


def test_idx_big_endian_on_disk(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(load_idx(p), np.array([0x0102, -2], dtype=np.int16))


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    save_idx(str(tmp_path / "plain.bin"), a, compress=True)
    np.testing.assert_array_equal(load_idx(tmp_path / "plain.bin"), a)


@pytest.mark.parametrize("content, what", [
    (b"", "only 0 bytes"),
    (b"\x00\x00", "only 2 bytes"),
    (b"PK\x03\x04rest", "magic"),
    (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), "type code"),
    (bytes([0, 0, 8, 0]), "no dimensions"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated IDX header"),
    (bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5]), "truncated IDX file"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "trailing bytes"),
])
def test_idx_bad_files_name_the_file(tmp_path, content, what):
    p = tmp_path / "bad-file-idx1-ubyte"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=what) as e:
        load_idx(p)
    assert "bad-file-idx1-ubyte" in str(e.value)


def test_idx_truncated_gzip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    p = tmp_path / "cut-images-idx3-ubyte.gz"
    save_idx(str(p), a)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut-images-idx3-ubyte.gz") as e:
        load_idx(p)
    assert "gzip" in str(e.value) or "truncated" in str(e.value)


def test_idx_corrupt_gzip(tmp_path):
    p = tmp_path / "junk.gz"
    p.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(ValueError, match="junk.gz"):
        load_idx(p)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nope")


def test_save_idx_rejects_unstorable(tmp_path):
    with pytest.raises(TypeError, match="uint64"):
        save_idx(str(tmp_path / "x"), np.zeros(3, dtype=np.uint64))


# ---------------------------------------------------------------------------- search order
@pytest.mark.parametrize("module", [mnist, fashion_mnist])
def test_load_from_path_argument(isolated, module):
    arrays = make_arrays(7, 3)
    folder = write_idx_folder(isolated / "mine", arrays)
    assert_same(module.load_data(path=str(folder), download=False), arrays)
    assert module.locate(folder) == str(folder)


def test_raw_and_dotted_names(isolated):
    arrays = make_arrays(4, 2, seed=1)
    folder = write_idx_folder(isolated / "raw", arrays, gz=False)
    for stem in STEMS:   # train-images-idx3-ubyte -> train-images.idx3-ubyte
        os.rename(folder / stem, folder / stem.replace("-idx", ".idx"))
    assert_same(mnist.load_data(path=folder, download=False), arrays)


def test_keras_npz_for_mnist(isolated):
    arrays = make_arrays(5, 2, seed=2)
    keras = isolated / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    (x_train, y_train), (x_test, y_test) = arrays
    np.savez_compressed(keras / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert_same(mnist.load_data(download=False), arrays)
    # an explicit .npz path works too
    assert_same(mnist.load_data(path=keras / "mnist.npz", download=False), arrays)


def test_bad_npz_is_a_clear_error(isolated):
    p = isolated / "other.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz"):
        mnist.load_data(path=p, download=False)


@pytest.mark.parametrize("module", [mnist, fashion_mnist])
def test_explicit_path_that_does_not_exist_is_an_error(isolated, module):
    # data in fastdl's cache must not be used in place of a path that was asked for
    write_idx_folder(isolated / "home" / ".fastdl" / "datasets" / module.SPEC.name,
                     make_arrays(3, 1))
    missing = isolated / "no" / "such" / "folder"
    with pytest.raises(FileNotFoundError, match="folder") as e:
        module.load_data(path=missing, download=False)
    assert str(missing) in str(e.value) and "does not exist" in str(e.value)
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has none of the files"):
        module.load_data(path=str(empty), download=False)
    partial = write_idx_folder(isolated / "partial", make_arrays(2, 1))
    (partial / (STEMS[0] + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        module.load_data(path=partial, download=False)
    # without a path the cache is found as before
    (x, _), _ = module.load_data(download=False)
    assert x.shape[0] == 3


def test_keras_default_npz_name_keeps_its_keras_meaning(isolated):
    arrays = make_arrays(4, 2, seed=5)
    keras = isolated / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    (x_train, y_train), (x_test, y_test) = arrays
    np.savez_compressed(keras / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
                        y_test=y_test)
    # keras.datasets.mnist.load_data(path="mnist.npz") names the file in Keras' cache
    assert_same(mnist.load_data(path="mnist.npz", download=False), arrays)


def test_search_order(isolated, monkeypatch):
    """path > $FASTDL_DATA/<name> > ~/.fastdl/datasets > Keras' cache > system folder."""
    home = isolated / "home"
    system = isolated / "system"
    places = [
        ("path", isolated / "arg" / "fashion-mnist"),
        ("env", isolated / "env" / "fashion-mnist"),
        ("cache", home / ".fastdl" / "datasets" / "fashion-mnist"),
        ("keras", home / ".keras" / "datasets" / "fashion-mnist"),
        ("system", system / "fashion-mnist"),
    ]
    for i, (_, folder) in enumerate(places):
        write_idx_folder(folder, make_arrays(i + 1, 1, seed=i))
    monkeypatch.setenv("FASTDL_DATA", str(isolated / "env"))
    expected_n = 1
    for label, folder in places:
        path = places[0][1] if label == "path" else None
        (x, _), _ = fashion_mnist.load_data(path=path, download=False)
        assert x.shape[0] == expected_n, label
        assert fashion_mnist.locate(path) == str(folder)
        if label != "path":
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()
        expected_n += 1


def test_incomplete_folder_is_skipped_and_reported(isolated):
    arrays = make_arrays(3, 2)
    cache = isolated / "home" / ".fastdl" / "datasets" / "mnist"
    write_idx_folder(cache, arrays)
    (cache / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data(download=False)
    assert "incomplete: missing t10k-labels-idx1-ubyte" in str(e.value)


def test_not_found_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv("FASTDL_DATA", str(isolated / "env"))
    with pytest.raises(FileNotFoundError) as e:
        fashion_mnist.load_data(download=False)
    msg = str(e.value)
    for where in ("$FASTDL_DATA/fashion-mnist", "fastdl's cache",
                  os.path.join(".fastdl", "datasets", "fashion-mnist"), "Keras' cache",
                  os.path.join(".keras", "datasets", "fashion-mnist"), str(isolated / "system"),
                  "download=False", "dataset-fashion-mnist", "digits.load_data"):
        assert where in msg, where


def test_mismatched_lengths_rejected(isolated):
    (x_train, y_train), test = make_arrays(5, 2)
    folder = write_idx_folder(isolated / "d", ((x_train, y_train[:4]), test))
    with pytest.raises(ValueError, match="5 images but y_train 4 labels"):
        mnist.load_data(path=folder, download=False)


# ---------------------------------------------------------------------------- downloads
class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}            # URL path -> bytes
    short = set()         # URL paths answered with a Content-Length larger than the body
    hits = []

    def do_GET(self):
        type(self).hits.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        declared = len(data) + 1000 if self.path in self.short else len(data)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if self.path in self.short:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    class H(_Handler):
        files, short, hits = {}, set(), []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, H, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _digests(files, which="content"):
    out = {}
    for name, data in files.items():
        raw = gzip.decompress(data) if which == "content" else data
        out[name] = {hashlib.sha256(raw).hexdigest()}
    return out


def _cache(isolated, name="mnist"):
    return isolated / "home" / ".fastdl" / "datasets" / name


@pytest.mark.parametrize("which", ["content", "file"])
def test_download_verified_and_cached(isolated, server, monkeypatch, which):
    srv, H, base = server
    arrays = make_arrays(6, 3, seed=5)
    files = gz_bytes(arrays)
    H.files.update({"/mnist/" + k: v for k, v in files.items()})
    monkeypatch.setattr(mnist.SPEC, "sha256", _digests(files, which))
    got = mnist.load_data(mirror=base + "/mnist/", timeout=10, verbose=False)
    assert_same(got, arrays)
    cache = _cache(isolated)
    assert sorted(os.listdir(cache)) == sorted(files)          # no temporary files left
    # second call: from the cache, no request
    n = len(H.hits)
    assert_same(mnist.load_data(mirror=base + "/mnist/", verbose=False), arrays)
    assert len(H.hits) == n


def test_download_mirror_from_env_and_fallback(isolated, server, monkeypatch, capsys):
    srv, H, base = server
    arrays = make_arrays(2, 2, seed=6)
    files = gz_bytes(arrays)
    H.files.update({"/good/" + k: v for k, v in files.items()})
    monkeypatch.setattr(fashion_mnist.SPEC, "sha256", _digests(files))
    # the first mirror answers 404 for everything, the second has the files
    monkeypatch.setenv("FASTDL_DATA_MIRROR", f"{base}/missing/,{base}/good/")
    assert_same(fashion_mnist.load_data(timeout=10), arrays)
    err = capsys.readouterr().err
    assert "Downloading Fashion-MNIST" in err and "404" in err
    assert sorted(os.listdir(_cache(isolated, "fashion-mnist"))) == sorted(files)


def test_download_checksum_mismatch(isolated, server, monkeypatch):
    srv, H, base = server
    files = gz_bytes(make_arrays(3, 2, seed=7))
    H.files.update({"/m/" + k: v for k, v in files.items()})
    monkeypatch.setattr(mnist.SPEC, "sha256", {k: {"0" * 64} for k in files})
    with pytest.raises(ValueError, match="SHA-256 mismatch") as e:
        mnist.load_data(mirror=base + "/m/", timeout=10, verbose=False)
    assert isinstance(e.value, _fetch.IntegrityError)
    cache = _cache(isolated)
    assert not cache.exists() or os.listdir(cache) == []


def test_download_truncated_transfer(isolated, server, monkeypatch):
    """The server promises more bytes than it sends, then closes the connection."""
    srv, H, base = server
    files = gz_bytes(make_arrays(20, 2, seed=8))
    H.files.update({"/m/" + k: v for k, v in files.items()})
    H.short.add("/m/train-images-idx3-ubyte.gz")
    monkeypatch.setattr(mnist.SPEC, "sha256", _digests(files))
    with pytest.raises(ValueError, match="cut short"):
        mnist.load_data(mirror=base + "/m/", timeout=10, verbose=False)
    cache = _cache(isolated)
    assert not cache.exists() or os.listdir(cache) == []


def test_download_truncated_file(isolated, server, monkeypatch):
    """A mirror serving a cut-off .gz with a consistent length: caught by the gzip check."""
    srv, H, base = server
    files = gz_bytes(make_arrays(20, 2, seed=9))
    digests = _digests(files)
    files["train-images-idx3-ubyte.gz"] = files["train-images-idx3-ubyte.gz"][:-300]
    H.files.update({"/m/" + k: v for k, v in files.items()})
    monkeypatch.setattr(mnist.SPEC, "sha256", digests)
    with pytest.raises(ValueError, match="cut short|gzip"):
        mnist.load_data(mirror=base + "/m/", timeout=10, verbose=False)
    cache = _cache(isolated)
    assert not cache.exists() or os.listdir(cache) == []


def test_download_unreachable_is_file_not_found(isolated, server, monkeypatch):
    srv, H, base = server
    # a port nobody listens on: take one from the OS, then close it
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data(mirror=f"http://127.0.0.1:{port}/", timeout=5, verbose=False)
    msg = str(e.value)
    assert "Downloading failed" in msg and f"127.0.0.1:{port}" in msg and "fastdl's cache" in msg
    assert not _cache(isolated).exists()


def test_reachable(server):
    srv, H, base = server
    assert _fetch.reachable(base, timeout=5)
    assert not _fetch.reachable("http://", timeout=1)


# ---------------------------------------------------------------------------- the real files
def test_fashion_mnist_checksums_match_real_files():
    """Where Fashion-MNIST is on this machine, its content matches the digests fastdl checks."""
    where = fashion_mnist.locate()
    if where is None or not os.path.isdir(where):
        pytest.skip("Fashion-MNIST is not installed here")
    files, missing = _fetch._idx_files(where)
    for key, stem in _fetch.IDX_STEMS.items():
        with open(files[key], "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        assert hashlib.sha256(raw).hexdigest() in fashion_mnist.SPEC.sha256[stem + ".gz"], stem
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert len(fashion_mnist.CLASS_NAMES) == 10


# ---------------------------------------------------------------------------- digits
def test_digits_shapes_and_split():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1442, 8, 8) and x_test.shape == (355, 8, 8)
    assert y_train.shape == (1442,) and y_test.shape == (355,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert x_train.max() == 255 and x_train.min() == 0
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    # balanced: about a fifth of each class is test
    counts = np.bincount(y_test, minlength=10) / (np.bincount(y_test, minlength=10) + np.bincount(y_train, minlength=10))
    assert np.all(np.abs(counts - 0.2) < 0.02)


def test_digits_deterministic_and_disjoint():
    a = digits.load_data()
    b = digits.load_data()
    for u, v in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(u, v)
    images, labels = digits._read()
    mask = digits.test_mask(labels)
    assert mask.sum() == 355
    raw_train, raw_test = digits.load_data(scaled=False)
    np.testing.assert_array_equal(raw_test[0], images[mask])
    np.testing.assert_array_equal(raw_train[0], images[~mask])
    assert raw_train[0].max() == 16


def test_digits_scaling():
    (xs, _), _ = digits.load_data()
    (xr, _), _ = digits.load_data(scaled=False)
    np.testing.assert_array_equal(xs, np.round(xr.astype(np.float64) * 255 / 16).astype(np.uint8))


def test_digits_content_and_licence():
    images, labels = digits._read()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    # the first samples of scikit-learn's copy are the digits 0, 1, 2, ... 9 in turn
    assert labels[:10].tolist() == list(range(10))
    assert int(images.sum()) > 0 and images.max() == 16
    with open(digits.LICENSE_FILE) as f:
        text = f.read()
    assert "Alpaydin" in text and "CC BY 4.0" in text and "BSD" in text
    assert digits.locate() == digits.DATA_FILE


def test_public_names():
    assert datasets.load_idx is load_idx
    for m in ("mnist", "fashion_mnist", "digits"):
        assert callable(getattr(datasets, m).load_data)


# ---------------------------------------------------------------------------- best_available
def test_best_available_order(isolated):
    name, source, data = datasets.best_available(download=False)
    assert name == "digits" and source == "bundled with fastdl"
    arrays = make_arrays(3, 2, seed=11)
    write_idx_folder(_cache(isolated, "fashion-mnist"), arrays)
    name, source, data = datasets.best_available(download=False)
    assert name == "fashion_mnist" and source == str(_cache(isolated, "fashion-mnist"))
    assert_same(data, arrays)
    assert datasets.best_available(("digits", "fashion_mnist"))[0] == "digits"
    with pytest.raises(FileNotFoundError, match="MNIST: not on disk"):
        datasets.best_available("mnist", download=False)
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.best_available(("cifar10",))


def test_best_available_fetches_when_reachable(isolated, server, monkeypatch):
    srv, H, base = server
    arrays = make_arrays(4, 2, seed=12)
    files = gz_bytes(arrays)
    H.files.update({"/m/" + k: v for k, v in files.items()})
    monkeypatch.setattr(mnist.SPEC, "sha256", _digests(files))
    monkeypatch.setenv("FASTDL_DATA_MIRROR", base + "/m/")
    name, source, data = datasets.best_available(download="auto", verbose=False)
    assert name == "mnist" and source == str(_cache(isolated))
    assert_same(data, arrays)


def test_best_available_auto_skips_unreachable(isolated, monkeypatch):
    monkeypatch.setenv("FASTDL_DATA_MIRROR", "http://127.0.0.1:9/")
    assert datasets.best_available(download="auto", verbose=False)[0] == "digits"
    assert not _cache(isolated).exists()
