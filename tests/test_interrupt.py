"""Ctrl-C: fit, evaluate, predict and the benchmark runner stop promptly on SIGINT.

Each case runs in a child interpreter that prints READY once the long call is under way; the
test then sends SIGINT and waits for the child. fit must return its History with the weights
kept (finite, changed by training); evaluate and predict raise KeyboardInterrupt; the benchmark
runner exits with status 130 and a summary. The limit (STOP_S seconds from SIGINT to exit) is
generous because CI machines are shared; a kernel that ignored Ctrl-C would take minutes.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

STOP_S = 20

SETUP = r"""
import sys, numpy as np, fastdl
from fastdl import callbacks, layers, models
fastdl.set_seed(0)
rng = np.random.default_rng(0)
x = rng.random((20000, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, 20000)
model = models.Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(256, activation="relu"),
                           layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
w0 = [w.copy() for w in model.get_weights()]

class Ready(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.n = 0
    def _tick(self):
        self.n += 1
        if self.n == 3:
            print("READY", flush=True)
    def on_train_batch_end(self, batch, logs=None):
        self._tick()
    def on_test_batch_end(self, batch, logs=None):
        self._tick()
    def on_predict_batch_end(self, batch, logs=None):
        self._tick()
"""

CASES = {
    "fit": SETUP + r"""
h = model.fit(x, y, epochs=1000, batch_size=32, verbose=0, callbacks=[Ready()])
ws = model.get_weights()
assert all(np.isfinite(w).all() for w in ws)
assert any(not np.array_equal(a, b) for a, b in zip(ws, w0)), "weights not kept"
assert isinstance(h.history, dict)
print("RETURNED", len(h.history.get("loss", [])), flush=True)
model.predict(x[:10])                 # the model is still usable
print("USABLE", flush=True)
""",
    "evaluate": SETUP + r"""
print("READY", flush=True)
try:
    for _ in range(100):   # 20000 steps each: far longer than the test
        model.evaluate(x, y, batch_size=1, verbose=0)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
""",
    "predict": SETUP + r"""
print("READY", flush=True)
try:
    for _ in range(100):
        model.predict(x, batch_size=1, verbose=0)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
""",
}


def _run_and_interrupt(args, ready="READY", delay=0.3, env=None, cwd=None):
    # The child gets the default SIGINT disposition, as under a terminal: a test run started
    # in the background (nohup, `cmd &`) inherits SIG_IGN, and Python then installs no
    # KeyboardInterrupt handler at all.
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, **(env or {})), cwd=cwd,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        out = []
        deadline = time.monotonic() + 300
        while ready is not None:
            line = p.stdout.readline()
            assert line, f"child ended before {ready!r}: {p.stderr.read()[-3000:]}"
            out.append(line)
            if line.strip().startswith(ready):
                break
            assert time.monotonic() < deadline
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            rest, err = p.communicate(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            p.kill()
            rest, err = p.communicate()
            pytest.fail(f"did not stop within {STOP_S} s of SIGINT")
        return p.returncode, "".join(out) + rest, err, time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("case", ["fit", "evaluate", "predict"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_ctrl_c_stops_model_calls(case, threads):
    code = CASES[case]
    rc, out, err, _ = _run_and_interrupt([sys.executable, "-c", code], delay=0.5,
                                         env={"FASTDL_NUM_THREADS": threads})
    assert rc == 0, f"exit {rc}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}"
    if case == "fit":
        assert "RETURNED" in out and "USABLE" in out, out
    else:
        assert "INTERRUPTED" in out, out


def test_ctrl_c_stops_benchmark_runner():
    # The benchmarks live in the checkout's top-level bench/ package: run from the repository root.
    args = [sys.executable, "-u", "-m", "bench", "gemm", "--threads", "1"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # no READY line from the runner: interrupt once it has printed its header
    rc, out, err, _ = _run_and_interrupt(args, ready="", delay=3.0, cwd=root)
    # 130 is the runner's own status; once in a while (seen only with the whole test suite
    # running) the interpreter ends by SIGINT after the runner's summary: still a prompt stop
    assert rc in (130, -signal.SIGINT), f"exit {rc}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}"
    assert "interrupted" in err
