"""End to end training on Fashion-MNIST: fastdl against Keras/TensorFlow and PyTorch (CPU).

Rows, side by side in one run, with the same architecture, batch size, optimizer
(Adam, lr 1e-3, eps 1e-7) and data:
  * the seed MLP (Flatten, Dense128 relu, Dropout 0.2, Dense10 softmax), batch 32,
    5 epochs (1 with --quick);
  * the Keras MNIST convnet (Conv32-Pool-Conv64-Pool-Flatten-Dense128-Dense10), batch 64;
  * SimpleRNN(128) and LSTM(128) over image rows (28 steps of 28), batch 32;
  * the keras-io convolutional denoising autoencoder (Conv2D/MaxPooling2D encoder,
    Conv2DTranspose stride-2 decoder, sigmoid output, binary cross-entropy), batch 128;
    the last four for one epoch (--quick: on the first 10,000 training images).
Pixels are scaled to [0, 1] for every row and framework.
"fit s" is the wall time of fit only (no data loading, no evaluation): the median of
--train-repeats rounds (3; 1 with --quick), the frameworks alternating within each
round so that a slow spell of a shared machine lands on all of them. Ratios are
fastdl's median over the other framework's (below 1: fastdl is faster).

Keras runs in a subprocess with the interpreter named by $FASTDL_BENCH_KERAS_PYTHON (a
separate virtual environment with tensorflow-cpu, so TensorFlow never changes the NumPy
this process uses), or this interpreter when it can import tensorflow; otherwise its rows
say "not installed". PyTorch runs in process when it is importable: an idiomatic loop
with tensor slicing and a shuffled permutation per epoch (no DataLoader).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import _common

ADAM = dict(lr=1e-3, eps=1e-7)


# ------------------------------------------------------------------ models per framework
def _fastdl_model(kind):
    from fastdl import layers, models
    L = layers
    if kind == "mlp":
        m = models.Sequential()
        m.add(L.Flatten(input_shape=(28, 28)))
        m.add(L.Dense(128, activation="relu"))
        m.add(L.Dropout(0.2))
        m.add(L.Dense(10, activation="softmax"))
    elif kind == "convnet":
        m = models.Sequential([L.Input(shape=(28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                               L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
                               L.MaxPooling2D(), L.Flatten(), L.Dense(128, activation="relu"),
                               L.Dense(10, activation="softmax")])
    elif kind == "dae":
        m = models.Sequential(_dae_layers(L))
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m
    else:
        cell = L.SimpleRNN if kind == "simple_rnn" else L.LSTM
        m = models.Sequential([L.Input(shape=(28, 28)), cell(128),
                               L.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _dae_layers(L):
    """The keras-io convolutional denoising autoencoder (the same code builds the Keras row)."""
    return [L.Input(shape=(28, 28, 1)),
            L.Conv2D(32, (3, 3), activation="relu", padding="same"),
            L.MaxPooling2D((2, 2), padding="same"),
            L.Conv2D(32, (3, 3), activation="relu", padding="same"),
            L.MaxPooling2D((2, 2), padding="same"),
            L.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same"),
            L.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same"),
            L.Conv2D(1, (3, 3), activation="sigmoid", padding="same")]


KERAS_SCRIPT = r'''
import json, sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from keras import layers as L
d = np.load(sys.argv[1])
kind, epochs, bs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(0)
if kind == "mlp":
    m = keras.Sequential([L.Input((28, 28)), L.Flatten(), L.Dense(128, activation="relu"),
                          L.Dropout(0.2), L.Dense(10, activation="softmax")])
elif kind == "convnet":
    m = keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
                          L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                          L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])
elif kind == "dae":
    m = keras.Sequential(DAE_LAYERS(L))
else:
    cell = L.SimpleRNN if kind == "simple_rnn" else L.LSTM
    m = keras.Sequential([L.Input((28, 28)), cell(128), L.Dense(10, activation="softmax")])
if kind == "dae":
    m.compile(optimizer="adam", loss="binary_crossentropy")
else:
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
t = time.perf_counter()
m.fit(d["x_train"], d["y_train"], epochs=epochs, batch_size=bs, verbose=0)
fit_s = time.perf_counter() - t
res = m.evaluate(d["x_test"], d["y_test"], verbose=0)
acc = res if kind == "dae" else res[1]
print("RESULT " + json.dumps({"fit_s": fit_s, "acc": float(acc), "version": keras.__version__}))
'''


def _keras_python():
    exe = os.environ.get("FASTDL_BENCH_KERAS_PYTHON")
    if exe:
        return exe, None
    try:
        import importlib.util
        if importlib.util.find_spec("tensorflow") is not None:
            return sys.executable, None
    except Exception:
        pass
    return None, "not installed (set FASTDL_BENCH_KERAS_PYTHON to a Python with tensorflow-cpu)"


def _run_keras(kind, data, epochs, bs, tmp):
    exe, why = _keras_python()
    if exe is None:
        return None, why
    path = os.path.join(tmp, f"{kind}.npz")
    np.savez(path, **data)
    script = os.path.join(tmp, "keras_bench.py")
    import inspect
    with open(script, "w") as f:   # the Keras script gets the autoencoder's code as is
        f.write(KERAS_SCRIPT.replace("DAE_LAYERS(L)", "_dae_layers(L)", 1).replace(
            "d = np.load", inspect.getsource(_dae_layers) + "\nd = np.load", 1))
    try:
        p = subprocess.run([exe, script, path, kind, str(epochs), str(bs)], capture_output=True,
                           text=True, timeout=3600)
    except Exception as e:
        return None, f"failed to run: {e}"
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]), None
    tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
    return None, f"failed: {tail[0][:200]}"


def _run_torch(kind, data, epochs, bs, threads, device="cpu"):
    """PyTorch's fit time and test accuracy. device="cuda": the model on the GPU, the data
    on the host and each batch copied to the GPU (as fastdl's fit does after model.to("cuda"))."""
    torch = _common.torch_or_none()
    if torch is None:
        return None, "not installed"
    if device != "cpu" and not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device"
    nn = torch.nn
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(128, 10))
    elif kind == "convnet":
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128),
                              nn.ReLU(), nn.Linear(128, 10))
    elif kind == "dae":
        up = dict(stride=2, padding=1, output_padding=1)
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.ConvTranspose2d(32, 32, 3, **up), nn.ReLU(),
                              nn.ConvTranspose2d(32, 32, 3, **up), nn.ReLU(),
                              nn.Conv2d(32, 1, 3, padding=1), nn.Sigmoid())
    else:
        class RNNNet(nn.Module):
            def __init__(self):
                super().__init__()
                cls = nn.RNN if kind == "simple_rnn" else nn.LSTM
                self.rnn = cls(28, 128, batch_first=True)
                self.fc = nn.Linear(128, 10)

            def forward(self, x):
                hs, _ = self.rnn(x)
                return self.fc(hs[:, -1])
        model = RNNNet()
    model = model.to(device)

    def prep(x):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if kind in ("convnet", "dae"):
            t = t.permute(0, 3, 1, 2).contiguous()  # torch convolutions are channels-first
        return t
    x, xt = prep(data["x_train"]), prep(data["x_test"])
    if kind == "dae":
        y, yt = prep(data["y_train"]), prep(data["y_test"])
    else:
        y = torch.from_numpy(data["y_train"].astype(np.int64))
        yt = torch.from_numpy(data["y_test"].astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), **ADAM)
    lossf = nn.BCELoss() if kind == "dae" else nn.CrossEntropyLoss()
    n = len(x)
    on_gpu = device != "cpu"
    if on_gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if on_gpu:
                xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
    if on_gpu:
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = 0
        for i in range(0, len(xt), 1000):   # in slices: the whole test set at once is large on a GPU
            out = model(xt[i:i + 1000].to(device)).cpu()
            if kind == "dae":   # the test loss, summed here, averaged below
                correct += float(lossf(out, yt[i:i + 1000])) * len(out)
            else:
                correct += int((out.argmax(1) == yt[i:i + 1000]).sum())
        acc = correct / len(xt)
    return {"fit_s": fit_s, "acc": acc, "version": torch.__version__}, None


def _run_fastdl(kind, data, epochs, bs, device="cpu"):
    """fastdl's fit time and test accuracy; device="cuda" moves the model there first."""
    import fastdl
    fastdl.set_seed(0)
    m = _fastdl_model(kind)
    if device != "cpu":
        m.to(device)
    t0 = time.perf_counter()
    hist = m.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=bs, verbose=0)
    if device != "cpu":
        import cupy
        cupy.cuda.Device().synchronize()
    fit_s = time.perf_counter() - t0
    if len(hist.history.get("loss", [])) < epochs:
        # fit answers Ctrl-C by returning early: that is no fit time to report
        raise KeyboardInterrupt
    res = m.evaluate(data["x_test"], data["y_test"], verbose=0)
    acc = res if kind == "dae" else res[1]   # the autoencoder: its test loss
    return {"fit_s": fit_s, "acc": float(acc), "version": fastdl.__version__}, None


# ------------------------------------------------------------------ suite
TARGETS = {  # fastdl time / other time must stay at or below these
    "mlp": {"Keras": 0.25, "PyTorch": 0.33},
    "convnet": {"Keras": 0.5, "PyTorch": 0.5},
    "simple_rnn": {"PyTorch": 0.5},
    "lstm": {"PyTorch": 0.7},
    "dae": {"Keras": 0.5},
}
MIN_ACC = {"mlp": 0.86, "convnet": 0.85}


def _median_run(runs):
    """The run with the median fit time (the upper middle one for an even count)."""
    if not runs:
        return None
    return sorted(runs, key=lambda r: r["fit_s"])[len(runs) // 2]


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ENV = "FASHION_MNIST_DIR"


def find_fashion_mnist():
    """(where, None) or (None, why): Fashion-MNIST on disk, never downloaded. Looked for in
    $FASHION_MNIST_DIR, then the checkout's data/fashion-mnist, data/fashion_mnist and data/
    (folders of the four IDX files, gzip-compressed or not), then where fastdl.datasets
    looks by itself ($FASTDL_DATA, its cache, Keras' cache, the system's data sets)."""
    from fastdl.datasets import fashion_mnist
    places = [os.environ.get(DATA_ENV)] + [os.path.join(REPO, "data", d)
                                           for d in ("fashion-mnist", "fashion_mnist", "")]
    for p in [p for p in places if p] + [None]:
        where = fashion_mnist.locate(p)
        if where is not None:
            return where, None
    return None, (f"Fashion-MNIST's IDX files were not found (looked in ${DATA_ENV}, "
                  f"data/fashion-mnist/, data/ and fastdl.datasets' own places)")


def scaled_fashion_mnist(where=None):
    """Fashion-MNIST as float32 pixels / 255: dict of x_train, y_train, x_test, y_test."""
    from fastdl import datasets
    (xtr, ytr), (xte, yte) = datasets.fashion_mnist.load_data(where, download=where is None,
                                                              verbose=False)
    return dict(x_train=(xtr / np.float32(255)).astype(np.float32), y_train=ytr,
                x_test=(xte / np.float32(255)).astype(np.float32), y_test=yte)


def _datasets(quick):
    full = scaled_fashion_mnist()
    out = {"mlp": full}
    sub = 10000 if quick else len(full["x_train"])
    scaled = {k: (v[:sub] if k.endswith("train") else v) for k, v in full.items()}
    out["convnet"] = {k: (v[..., None] if k.startswith("x") else v) for k, v in scaled.items()}
    out["simple_rnn"] = scaled
    out["lstm"] = scaled
    # the denoising autoencoder: noisy images in (Gaussian noise, factor 0.4, clipped as in the
    # keras-io example), the clean ones as targets
    rng = np.random.default_rng(0)

    def noisy(a):
        return np.clip(a + 0.4 * rng.standard_normal(a.shape, dtype=np.float32), 0, 1)
    clean = {k: scaled[k][..., None] for k in ("x_train", "x_test")}
    out["dae"] = dict(x_train=noisy(clean["x_train"]), y_train=clean["x_train"],
                      x_test=noisy(clean["x_test"]), y_test=clean["x_test"])
    return out


def run(opts):
    import fastdl
    quick = getattr(opts, "quick", False)
    threads = max(getattr(opts, "thread_list", None) or [fastdl.ops.available_cores()])
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        data = _datasets(quick)
    except Exception as e:
        t = _common.Table("End-to-end training (Fashion-MNIST)", ["note"])
        t.notes.append(f"skipped: Fashion-MNIST is not available ({e})")
        return [t]
    plan = [("mlp", 1 if quick else 5, 32), ("convnet", 1, 64), ("simple_rnn", 1, 32),
            ("lstm", 1, 32), ("dae", 1, 128)]
    kinds = getattr(opts, "train_models", None)
    if kinds:
        plan = [p for p in plan if p[0] in kinds]
    repeats = getattr(opts, "train_repeats", None) or (1 if quick else 3)
    cols = ["model", "framework", "epochs", "batch", "fit s", "fit s range", "test acc",
            "fastdl / this", "target", "version"]
    table = _common.Table(f"End-to-end training on Fashion-MNIST, {threads} thread(s)", cols)
    tmp = tempfile.mkdtemp(prefix="fastdl-bench-train-")
    try:
        for kind, epochs, bs in plan:
            d = data[kind]
            runs = {"fastdl": [], "Keras": [], "PyTorch": []}
            why = {}
            # Rounds alternate the frameworks, so a slow spell of a shared machine
            # lands on all of them; each reports the median of its rounds.
            for r in range(repeats):
                for fw, fn in (("fastdl", lambda: _run_fastdl(kind, d, epochs, bs)),
                               ("Keras", lambda: _run_keras(kind, d, epochs, bs, tmp)),
                               ("PyTorch", lambda: _run_torch(kind, d, epochs, bs, threads))):
                    if fw in why:
                        continue  # not installed or failed: not retried
                    try:
                        res, w = fn()
                    except Exception as e:  # keep the other rows
                        res, w = None, f"failed: {type(e).__name__}: {e}"
                    if res is None:
                        why[fw] = w
                    else:
                        runs[fw].append(res)
                    print(f"  {kind:>10} {fw:>8} round {r + 1}/{repeats}: "
                          + (f"fit {res['fit_s']:.2f}s acc {res['acc']:.4f}" if res else w),
                          file=sys.stderr)
            results = {fw: (_median_run(rs), why.get(fw)) for fw, rs in runs.items()}
            mine = results["fastdl"][0]
            for fw, (res, w) in results.items():
                row = {"model": kind, "framework": fw, "epochs": epochs, "batch": bs}
                if res is None:
                    row["version"] = w
                else:
                    times = [x["fit_s"] for x in runs[fw]]
                    row.update({"fit s": res["fit_s"], "test acc": res["acc"],
                                "version": res["version"],
                                "fit s range": f"{min(times):.2f}-{max(times):.2f} ({len(times)})"})
                    if fw != "fastdl" and mine is not None:
                        row["fastdl / this"] = mine["fit_s"] / res["fit_s"]
                        tgt = TARGETS.get(kind, {}).get(fw)
                        if tgt is not None:
                            ok = mine["fit_s"] / res["fit_s"] <= tgt
                            row["target"] = f"<= {tgt} ({'met' if ok else 'missed'})"
                    elif fw == "fastdl" and kind in MIN_ACC:
                        ok = res["acc"] >= MIN_ACC[kind]
                        row["target"] = f"acc >= {MIN_ACC[kind]} ({'met' if ok else 'missed'})"
                table.rows.append(row)
    finally:
        fastdl.set_num_threads(old)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    table.notes.append(f"fit s: the median of {repeats} round(s) per framework, the frameworks "
                       "alternating within each round; test acc is from that median run.")
    table.notes.append("Pixels / 255 everywhere (as the TensorFlow tutorial the seed program comes from; "
                       "on raw 0..255 pixels every framework stalls near 0.75). mlp: all 60,000 "
                       "training images; convnet/RNN rows: "
                       + ("first 10,000 training images (--quick)" if quick else "all 60,000 training images")
                       + "; accuracy on the 10,000 test images (dae, the keras-io denoising "
                       "autoencoder: its binary cross-entropy on the noisy test images instead).")
    return [table]
