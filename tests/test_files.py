"""Files: saves are atomic (temporary name, then rename), so a process killed mid-save leaves
the previous file intact; loaders validate what they read (truncated or foreign files are a
ValueError, never a crash or a half-loaded model)."""
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from fastdl import callbacks, datasets, layers, models


def _model(units=16):
    m = models.Sequential([layers.Dense(units, activation="relu", input_shape=(8,)),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _xy(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 8), dtype=np.float32), rng.integers(0, 3, n)


def test_save_load_round_trip_and_no_temp_left(tmp_path):
    m = _model()
    m.fit(*_xy(), epochs=1, verbose=0)
    p = tmp_path / "m.keras"
    m.save(p)
    m.save_weights(tmp_path / "w.weights.h5")
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "w.weights.h5"]   # no temporary files
    m2 = models.load_model(p)
    for u, v in zip(m.get_weights(), m2.get_weights()):
        assert np.array_equal(u, v)
    m3 = _model()
    m3.load_weights(tmp_path / "w.weights.h5")
    for u, v in zip(m.get_weights(), m3.get_weights()):
        assert np.array_equal(u, v)


def test_model_checkpoint_writes_complete_files(tmp_path):
    x, y = _xy()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}.keras"), monitor="loss")
    cbw = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="loss",
                                    save_best_only=True, save_weights_only=True)
    m = _model()
    m.fit(x, y, epochs=3, verbose=0, callbacks=[cb, cbw])
    names = sorted(os.listdir(tmp_path))
    assert names == ["best.weights.h5", "ck-01.keras", "ck-02.keras", "ck-03.keras"], names
    last = models.load_model(tmp_path / "ck-03.keras")
    for u, v in zip(m.get_weights(), last.get_weights()):
        assert np.array_equal(u, v)


# ----------------------------------------------------------------- killed mid-save
CHILD = r"""
import sys, numpy as np
from fastdl import layers, models
path, mode = sys.argv[1], sys.argv[2]
m = models.Sequential([layers.Dense(1024, input_shape=(2048,)), layers.Dense(2048),
                       layers.Dense(10)])          # about 4.2 M weights: ~17 MB a file
m.compile(optimizer="adam", loss="mse")
v = 0
while True:
    v += 1
    m.set_weights([np.full(w.shape, v, w.dtype) for w in m.get_weights()])
    if mode == "model":
        m.save(path)
    else:
        m.save_weights(path)
    print(v, flush=True)
"""


def _check_consistent(path, mode, last_done):
    """The file must be one complete version: every weight array filled with the same v, v the
    last completed save or the one in progress."""
    if mode == "model":
        m = models.load_model(path)
    else:
        m = models.Sequential([layers.Dense(1024, input_shape=(2048,)), layers.Dense(2048),
                               layers.Dense(10)])
        m.load_weights(path)
    vals = {float(w.flat[0]) for w in m.get_weights()}
    assert len(vals) == 1, f"mixed versions in one file: {vals}"
    for w in m.get_weights():
        assert np.all(w == w.flat[0])
    v = vals.pop()
    assert last_done <= v <= last_done + 1, (v, last_done)


def _temps(folder):
    return sum(f.endswith(".tmp") for f in os.listdir(folder))


@pytest.mark.parametrize("mode", ["model", "weights"])
def test_kill_mid_save_leaves_a_complete_file(tmp_path, mode):
    path = str(tmp_path / ("m.keras" if mode == "model" else "m.weights.h5"))
    rng = np.random.default_rng(7)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path, mode], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    try:
        kills = 0
        # at least 5 kills, and go on (up to 15) until 2 of them hit a save in progress (they
        # leave the save's temporary file behind), so the test does test a torn write
        while kills < 5 or (_temps(tmp_path) < 2 and kills < 15):
            line = proc.stdout.readline()        # a save completed
            assert line, "the child died on its own"
            done = int(line)
            # kill at a random point of a following save (a save takes tens of ms or more)
            time.sleep(float(rng.uniform(0.0, 0.15)))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            rest = proc.stdout.read().split()
            if rest:
                done = int(rest[-1])
            _check_consistent(path, mode, done)
            kills += 1
            # next round continues from the file left behind
            proc = subprocess.Popen([sys.executable, "-c", CHILD, path, mode],
                                    stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert _temps(tmp_path) >= 1, "no kill landed inside a save"
    # leftovers of killed saves are hidden temporary files, never the real name
    for f in os.listdir(tmp_path):
        assert f == os.path.basename(path) or (f.startswith(".") and f.endswith(".tmp")), f


# ----------------------------------------------------------------- loaders validate
@pytest.fixture
def saved(tmp_path):
    m = _model()
    p = tmp_path / "good.keras"
    m.save(p)
    w = tmp_path / "good.weights.h5"
    m.save_weights(w)
    return p, w


def _truncations(data):
    return sorted({0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1})


def test_truncated_model_files_are_value_errors(saved, tmp_path):
    for src in saved:
        data = src.read_bytes()
        for n in _truncations(data):
            bad = tmp_path / "bad.keras"
            bad.write_bytes(data[:n])
            with pytest.raises(ValueError):
                models.load_model(bad)
            with pytest.raises(ValueError):
                _model().load_weights(bad)


def test_corrupted_bytes_are_value_errors(saved, tmp_path):
    data = bytearray(saved[0].read_bytes())
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = bytearray(data)
        for i in rng.integers(0, len(d), 8):
            d[i] ^= 0xFF
        bad = tmp_path / "flip.keras"
        bad.write_bytes(bytes(d))
        try:
            m = models.load_model(bad)
        except ValueError:
            continue
        # a flip that zip's CRC and the header checks cannot see (e.g. in padding) loads fine
        assert len(m.get_weights()) == 4


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_foreign_files_are_value_errors(saved, tmp_path):
    m = _model()
    cases = {
        "text.keras": b"hello, this is not a model\n",
        "random.keras": np.random.default_rng(0).bytes(5000),
        "empty.keras": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    _write_npz(tmp_path / "plain.npz", a=np.ones(3))                       # no fastdl header
    _write_npz(tmp_path / "badheader.npz", __fastdl__=np.frombuffer(b"{not json", np.uint8))
    _write_npz(tmp_path / "otherformat.npz",
               __fastdl__=np.frombuffer(b'{"format": "something-else"}', np.uint8))
    _write_npz(tmp_path / "pickle.npz", __fastdl__=np.array([{"format": "x"}], dtype=object))
    with zipfile.ZipFile(tmp_path / "zip.keras", "w") as z:
        z.writestr("config.json", "{}")                                      # a Keras-3-like zip
    names = list(cases) + ["plain.npz", "badheader.npz", "otherformat.npz", "pickle.npz",
                           "zip.keras"]
    for name in names:
        with pytest.raises(ValueError):
            models.load_model(tmp_path / name)
        with pytest.raises(ValueError):
            m.load_weights(tmp_path / name)
    # a weights file is not a model, and weights of another model do not fit
    with pytest.raises(ValueError):
        models.load_model(saved[1])
    with pytest.raises(ValueError):
        _model(units=17).load_weights(saved[1])
    with pytest.raises(ValueError):
        models.load_model(tmp_path)           # a folder


def test_inconsistent_model_file_is_a_value_error(saved, tmp_path):
    """A well-formed file whose header promises weights it does not hold (fastdl's own
    format: a name other than .keras; Keras' format has its checks in test_keras_format.py)."""
    import json
    own = tmp_path / "own.model"
    _model().save(own)
    with np.load(own) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["__fastdl__"]).decode())
    header["num_weights"] += 3
    arrays["__fastdl__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    _write_npz(tmp_path / "liar.npz", **arrays)
    with pytest.raises(ValueError):
        models.load_model(tmp_path / "liar.npz")
    with pytest.raises(ValueError):
        _model().load_weights(tmp_path / "liar.npz")
    # weights of the wrong shape under the right names
    arrays["__fastdl__"] = np.frombuffer(json.dumps(dict(header, num_weights=4)).encode(), np.uint8)
    arrays["w0"] = np.ones((3, 3), np.float32)
    _write_npz(tmp_path / "shape.npz", **arrays)
    with pytest.raises(ValueError):
        models.load_model(tmp_path / "shape.npz")


# ----------------------------------------------------------------- dataset files
def test_idx_loader_validates(tmp_path):
    a = (np.arange(6 * 5 * 4) % 251).astype(np.uint8).reshape(6, 5, 4)
    p = tmp_path / "a-idx3-ubyte"
    datasets.save_idx(p, a)
    assert np.array_equal(datasets.load_idx(p), a)
    data = p.read_bytes()
    for n in _truncations(data):
        (tmp_path / "t").write_bytes(data[:n])
        with pytest.raises(ValueError):
            datasets.load_idx(tmp_path / "t")
    (tmp_path / "long").write_bytes(data + b"\0")
    with pytest.raises(ValueError):
        datasets.load_idx(tmp_path / "long")
    # a header that claims a huge array is refused before allocating
    (tmp_path / "huge").write_bytes(bytes([0, 0, 0x0D, 3]) + (0xFFFFFFFF).to_bytes(4, "big") * 3)
    with pytest.raises(ValueError):
        datasets.load_idx(tmp_path / "huge")
