"""The Keras 3 model core on Fashion-MNIST: fit through the tape against the fused step plan.

Rows, side by side in one run, alternating within each round (median of --train-repeats):
  * the seed MLP (Flatten, Dense128 relu, Dropout 0.2, Dense10 softmax), batch 32, one epoch:
    as a Sequential of built-in layers (the fused step plan), as the same functional model
    (the graph's step plan), and as a Sequential whose Dense layers are a user's Layer
    subclass written with ``ops.matmul`` and ``+`` (trained through the tape, op by op);
  * the convnet (batch 64) and LSTM(128) over rows (batch 32), Sequential and functional.
With $FASTDL_BENCH_BASELINE set to the ``python`` folder of another fastdl checkout (built in
place), the Sequential rows also run that fastdl in a subprocess, in the same rounds: the
"before" of a change. (--quick: the first 10,000 training images.)
"""
import json
import os
import subprocess
import sys

from . import _common
from .train import scaled_fashion_mnist

BASELINE_ENV = "FASTDL_BENCH_BASELINE"

SCRIPT = r'''
import json, sys, time
import numpy as np
import fastdl
from fastdl import layers as L, models, ops

kind, variant, epochs, bs, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
fastdl.set_num_threads(threads)
(xtr, ytr), _ = fastdl.datasets.fashion_mnist.load_data(verbose=False)
x = (xtr[:n] / np.float32(255)).astype(np.float32)
y = ytr[:n]
if kind == "convnet":
    x = x[..., None]


class MyDense(L.Layer):
    def __init__(self, units, activation=None, **kw):
        super().__init__(**kw)
        self.units, self.act = units, activation

    def build(self, s):
        self.w = self.add_weight(shape=(s[-1], self.units), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        y = ops.matmul(inputs, self.w) + self.b
        if self.act == "relu":
            return ops.relu(y)
        if self.act == "softmax":
            return ops.softmax(y)
        return y


def stack(kind, dense):
    if kind == "mlp":
        return [L.Flatten(), dense(128, activation="relu"), L.Dropout(0.2),
                dense(10, activation="softmax")]
    if kind == "convnet":
        return [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
                L.MaxPooling2D(), L.Flatten(), L.Dense(128, activation="relu"),
                L.Dense(10, activation="softmax")]
    return [L.LSTM(128), L.Dense(10, activation="softmax")]


fastdl.set_seed(0)
shape = x.shape[1:]
if variant == "functional":
    i = fastdl.Input(shape)
    h = i
    for l in stack(kind, L.Dense):
        h = l(h)
    m = fastdl.Model(i, h)
else:
    m = models.Sequential([L.Input(shape=shape)] + stack(kind, MyDense if variant == "custom" else L.Dense))
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
t, c = time.perf_counter(), time.process_time()
h = m.fit(x, y, epochs=epochs, batch_size=bs, verbose=0)
print(json.dumps({"fit_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                  "acc": float(h.history["accuracy"][-1])}))
'''


def _run(python_dir, kind, variant, epochs, bs, n, threads):
    env = dict(os.environ)
    if python_dir:
        env["PYTHONPATH"] = python_dir + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", SCRIPT, kind, variant, str(epochs), str(bs), str(n),
                        str(threads)], env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(r.stdout.strip().splitlines()[-1]), None


def run(opts):
    import fastdl
    quick = getattr(opts, "quick", False)
    threads = max(getattr(opts, "thread_list", None) or [fastdl.ops.available_cores()])
    try:
        n = len(scaled_fashion_mnist()["x_train"])
    except Exception as e:
        t = _common.Table("Keras 3 model core (Fashion-MNIST)", ["note"])
        t.notes.append(f"skipped: Fashion-MNIST is not available ({e})")
        return [t]
    if quick:
        n = 10000
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
    mine = here if os.path.exists(os.path.join(here, "fastdl", "__init__.py")) else None
    base = os.environ.get(BASELINE_ENV)
    plan = [("mlp", 32, ["sequential", "functional", "custom"]),
            ("convnet", 64, ["sequential", "functional"]),
            ("lstm", 32, ["sequential", "functional"])]
    kinds = getattr(opts, "train_models", None)
    if kinds:
        plan = [p for p in plan if p[0] in kinds]
    repeats = getattr(opts, "train_repeats", None) or (1 if quick else 3)
    cols = ["model", "path", "fit s", "fit s range", "train acc", "/ Sequential", "cpu s",
            "cpu / Sequential", "/ baseline"]
    table = _common.Table(f"Keras 3 model core: one epoch on Fashion-MNIST ({n} images), "
                          f"{threads} thread(s)", cols)
    for kind, bs, variants in plan:
        runs = {v: [] for v in variants}
        if base:
            runs["baseline"] = []
        why = {}
        for _ in range(repeats):
            for v in runs:
                if v == "baseline":
                    res, err = _run(base, kind, "sequential", 1, bs, n, threads)
                else:
                    res, err = _run(mine, kind, v, 1, bs, n, threads)
                if res is None:
                    why[v] = err
                else:
                    runs[v].append(res)
        med = {v: sorted(r, key=lambda a: a["fit_s"])[len(r) // 2] for v, r in runs.items() if r}
        seq = med.get("sequential", {}).get("fit_s")
        seq_cpu = med.get("sequential", {}).get("cpu_s")
        for v, r in runs.items():
            if v not in med:
                table.add(model=kind, path=v, **{"fit s": None})
                table.notes.append(f"{kind} {v}: {why.get(v)}")
                continue
            times = [a["fit_s"] for a in r]
            table.add(model=kind, path=v, **{
                "fit s": med[v]["fit_s"], "fit s range": f"{min(times):.2f}-{max(times):.2f}",
                "train acc": med[v]["acc"],
                "/ Sequential": _common.ratio(med[v]["fit_s"], seq),
                "cpu s": med[v].get("cpu_s"),
                "cpu / Sequential": _common.ratio(med[v].get("cpu_s"), seq_cpu),
                "/ baseline": _common.ratio(med[v]["fit_s"], med.get("baseline", {}).get("fit_s"))
                if v == "sequential" else None})
    table.notes.append("sequential: the fused step plan; functional: the same model built with "
                       "keras.Input (the graph's step plan); custom: Dense written as a Layer "
                       "subclass with ops.matmul and +, trained through the tape (target: at most "
                       "1.5x the built-in's fit time); cpu s: the process's CPU time of the fit "
                       "(time.process_time, all threads), steadier than wall time on a loaded "
                       "machine")
    if base:
        table.notes.append("baseline: the same Sequential models on the fastdl found in "
                           f"${BASELINE_ENV}, in the same rounds")
    return [table]

