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
"fit eff" is the fit's arithmetic efficiency: the model's forward and backward FLOPs
over the epochs (GEMM, convolution and recurrent products only; fit_flops) over the fit
seconds, as a fraction of the measured FMA peak fastdl.ops.fma_peak_gflops(threads).

A second table times inference of the seed MLP: predict on one sample (latency, the
mean of a few hundred calls per round) and on the 10,000 test images (throughput,
predict's default batch_size 32), fastdl against PyTorch's eval (torch.no_grad,
model.eval(): one sample; the whole array in one forward and in batches of 32) and
Keras' predict, the frameworks alternating within each round; the best round and
the median.

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


# ------------------------------------------------------------------ FLOPs per fit
# Multiply-adds per training sample of one step: every layer's forward product plus the
# backward products fit needs: the weight gradient, and the input gradient except for
# the first layer (nothing below it to train). Only GEMM, convolution and recurrent
# products count (no activations, pooling, loss or optimizer): FLOPs = 2 * MACs.
def _dense_macs(n_in, n_out, first=False):
    return n_in * n_out * (2 if first else 3)


def _conv_macs(out_pixels, c_in, c_out, kernel_area, first=False):
    """Conv2D: each output pixel is a (kernel_area * c_in) . c_out product; a transposed
    convolution counts its input pixels (each scatters one such product)."""
    return out_pixels * c_in * c_out * kernel_area * (2 if first else 3)


def _recurrent_macs(steps, n_in, units, gates, first=True):
    """SimpleRNN (gates=1) or LSTM (4) over `steps`: per step the input and recurrent
    products; backward, both weight gradients, dh of the previous state (none before
    the first step) and dx unless the layer is first."""
    fwd = steps * gates * units * (n_in + units)
    wgrad = fwd
    dstate = (steps - 1) * gates * units * units
    dx = 0 if first else steps * gates * units * n_in
    return fwd + wgrad + dstate + dx


def _mlp_macs():
    return _dense_macs(784, 128, first=True) + _dense_macs(128, 10)


def _convnet_macs():
    return (_conv_macs(26 * 26, 1, 32, 9, first=True) + _conv_macs(11 * 11, 32, 64, 9) +
            _dense_macs(1600, 128) + _dense_macs(128, 10))


def _rnn_macs(gates):
    return lambda: _recurrent_macs(28, 28, 128, gates) + _dense_macs(128, 10)


def _dae_macs():
    return (_conv_macs(28 * 28, 1, 32, 9, first=True) + _conv_macs(14 * 14, 32, 32, 9) +
            _conv_macs(7 * 7, 32, 32, 9) + _conv_macs(14 * 14, 32, 32, 9) +   # transposed
            _conv_macs(28 * 28, 32, 1, 9))


MACS_PER_SAMPLE = {"mlp": _mlp_macs, "convnet": _convnet_macs, "simple_rnn": _rnn_macs(1),
                   "lstm": _rnn_macs(4), "dae": _dae_macs}


def fit_flops(kind, samples, epochs):
    """FLOPs of a fit of the `kind` model over `samples` training samples for `epochs`."""
    return 2.0 * MACS_PER_SAMPLE[kind]() * samples * epochs


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


def _efficiency(kind, samples, epochs, fit_s, peak_gflops):
    """The fit's FLOP rate as a fraction of the FMA peak, as a percentage string."""
    return f"{fit_flops(kind, samples, epochs) / fit_s / (peak_gflops * 1e9):.1%}"


# ------------------------------------------------------------------ inference of the MLP
KERAS_INFER_SCRIPT = r"""
import json, sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from keras import layers as L
x = np.load(sys.argv[1])["x_test"]
rounds, calls = int(sys.argv[2]), int(sys.argv[3])
m = keras.Sequential([L.Input((28, 28)), L.Flatten(), L.Dense(128, activation="relu"),
                      L.Dropout(0.2), L.Dense(10, activation="softmax")])
x1 = x[:1]
m.predict(x1, verbose=0), m.predict(x, verbose=0)
one, many = [], []
for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(calls):
        m.predict(x1, verbose=0)
    one.append((time.perf_counter() - t) / calls)
    t = time.perf_counter()
    m.predict(x, verbose=0)
    many.append(time.perf_counter() - t)
print("RESULT " + json.dumps({"one": one, "many": many, "version": keras.__version__}))
"""


def _inference_fns(x_test, threads):
    """{framework: (predict one sample, predict all of x_test)} for the seed MLP (the
    weights are random: the time does not depend on them)."""
    import fastdl
    fastdl.set_seed(0)
    m = _fastdl_model("mlp")
    x1 = x_test[:1]
    fns = {"fastdl": (lambda: m.predict(x1, verbose=0), lambda: m.predict(x_test, verbose=0))}
    torch = _common.torch_or_none()
    if torch is not None:
        torch.set_num_threads(threads)
        nn = torch.nn
        tm = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2),
                           nn.Linear(128, 10), nn.Softmax(-1)).eval()

        def eval_(x):
            with torch.no_grad():
                return tm(torch.from_numpy(x)).numpy()

        def batches(x, bs=32):
            with torch.no_grad():
                return np.concatenate([tm(torch.from_numpy(x[i:i + bs])).numpy()
                                       for i in range(0, len(x), bs)])
        fns["PyTorch"] = (lambda: eval_(x1), lambda: eval_(x_test))
        fns["PyTorch, batches of 32"] = (None, lambda: batches(x_test))
    return fns


def _inference_table(data, threads, rounds, calls=200):
    x = np.ascontiguousarray(data["x_test"], dtype=np.float32)
    fns = _inference_fns(x, threads)
    one = {fw: [] for fw in fns}
    many = {fw: [] for fw in fns}
    for fw, (f1, fn) in fns.items():   # warm up
        if f1:
            f1()
        fn()
    for _ in range(rounds):            # the frameworks alternate within each round
        for fw, (f1, fn) in fns.items():
            if f1:
                t = time.perf_counter()
                for _ in range(calls):
                    f1()
                one[fw].append((time.perf_counter() - t) / calls)
            t = time.perf_counter()
            fn()
            many[fw].append(time.perf_counter() - t)
    versions = {}
    exe, why = _keras_python()
    if exe is not None:
        tmp = tempfile.mkdtemp(prefix="fastdl-bench-infer-")
        try:
            path = os.path.join(tmp, "x.npz")
            np.savez(path, x_test=x)
            script = os.path.join(tmp, "keras_infer.py")
            with open(script, "w") as f:
                f.write(KERAS_INFER_SCRIPT)
            p = subprocess.run([exe, script, path, str(rounds), str(max(1, calls // 20))],
                               capture_output=True, text=True, timeout=1800)
            res = [json.loads(l[7:]) for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if res:
                one["Keras"], many["Keras"] = res[0]["one"], res[0]["many"]
                versions["Keras"] = res[0]["version"]
            else:
                why = "failed: " + ((p.stderr or p.stdout).strip().splitlines() or ["?"])[-1][:200]
        finally:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    cols = ["measure", "framework", "best", "median", "fastdl / this (best)",
            "fastdl / this (median)", "target"]
    t = _common.Table(f"Inference of the seed MLP, {threads} thread(s)", cols)
    n = len(x)
    for measure, series, unit, scale, target in (
            ("predict(1 sample) us", one, "us", 1e6, ("PyTorch", 0.2)),
            (f"predict({n:,}) samples/s", many, "/s", None, ("PyTorch", 0.5))):
        mine = series["fastdl"]
        for fw, v in series.items():
            if not v:
                continue
            if scale:   # latency: seconds per call
                row = {"best": min(v) * scale, "median": float(np.median(v)) * scale}
            else:       # throughput from the seconds of one predict over x
                row = {"best": n / min(v), "median": n / float(np.median(v))}
            row.update(measure=measure, framework=fw)
            if fw != "fastdl":   # time ratios: below 1, fastdl is faster
                r_min = min(mine) / min(v)
                r_med = float(np.median(mine)) / float(np.median(v))
                row["fastdl / this (best)"] = r_min
                row["fastdl / this (median)"] = r_med
                if fw == target[0]:
                    row["target"] = (f"<= {target[1]} "
                                     f"({'met' if r_med <= target[1] else 'missed'})")
            t.rows.append(row)
    if why and "Keras" not in versions:
        t.notes.append(f"Keras: {why}")
    t.notes.append(f"{rounds} round(s); predict(1): the mean of {calls} calls per round "
                   f"(Keras, whose predict takes milliseconds: {max(1, calls // 20)}); "
                   f"predict({n:,}): one call per round, batch_size 32 (PyTorch: the whole "
                   f"array in one forward, and batches of 32). Ratios are of times (fastdl's "
                   f"over the other's): a throughput of 2x is a ratio of 0.5.")
    return t


# ------------------------------------------------------------------ suite
TARGETS = {  # fastdl time / other time must stay at or below these
    "mlp": {"Keras": 0.25, "PyTorch": 0.12},
    "convnet": {"Keras": 0.3, "PyTorch": 0.3},
    "simple_rnn": {"PyTorch": 0.5},
    "lstm": {"PyTorch": 0.5},
    "dae": {"Keras": 0.5},
}
MIN_ACC = {"mlp": 0.86, "convnet": 0.85}
MIN_EFF = {"mlp": 0.45, "convnet": 0.70, "lstm": 0.70, "simple_rnn": 0.70}  # fastdl's fit eff


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
    cols = ["model", "framework", "epochs", "batch", "fit s", "fit s range", "fit eff",
            "test acc", "fastdl / this", "target", "version"]
    # The FMA peak is measured before every round and the best is the machine's: one
    # measurement in a slow spell of a shared machine came out at less than half.
    peaks = [fastdl.ops.fma_peak_gflops(threads)]
    table = _common.Table(f"End-to-end training on Fashion-MNIST, {threads} thread(s)", cols)
    tmp = tempfile.mkdtemp(prefix="fastdl-bench-train-")
    done = []   # (kind, epochs, batch, training samples, runs, why) of every model
    try:
        for kind, epochs, bs in plan:
            d = data[kind]
            runs = {"fastdl": [], "Keras": [], "PyTorch": []}
            why = {}
            # Rounds alternate the frameworks, so a slow spell of a shared machine
            # lands on all of them; each reports the median of its rounds.
            for r in range(repeats):
                peaks.append(fastdl.ops.fma_peak_gflops(threads))
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
            done.append((kind, epochs, bs, len(d["x_train"]), runs, why))
    finally:
        fastdl.set_num_threads(old)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    peak = max(peaks)
    for kind, epochs, bs, samples, runs, why in done:
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
                            "fit s range": f"{min(times):.2f}-{max(times):.2f} ({len(times)})",
                            "fit eff": _efficiency(kind, samples, epochs, res["fit_s"],
                                                   peak)})
                if fw != "fastdl" and mine is not None:
                    row["fastdl / this"] = mine["fit_s"] / res["fit_s"]
                    tgt = TARGETS.get(kind, {}).get(fw)
                    if tgt is not None:
                        ok = mine["fit_s"] / res["fit_s"] <= tgt
                        row["target"] = f"<= {tgt} ({'met' if ok else 'missed'})"
                elif fw == "fastdl":
                    goals = []
                    if kind in MIN_ACC:
                        ok = res["acc"] >= MIN_ACC[kind]
                        goals.append(f"acc >= {MIN_ACC[kind]} ({'met' if ok else 'missed'})")
                    eff = fit_flops(kind, samples, epochs) / res["fit_s"] / (
                        peak * 1e9) if peak else None
                    if kind in MIN_EFF and eff is not None:
                        ok = eff >= MIN_EFF[kind]
                        goals.append(f"eff >= {MIN_EFF[kind]:.0%} ({'met' if ok else 'missed'})")
                    if goals:
                        row["target"] = "; ".join(goals)
            table.rows.append(row)
    table.notes.append(f"fit s: the median of {repeats} round(s) per framework, the frameworks "
                       "alternating within each round; test acc is from that median run.")
    table.notes.append("Pixels / 255 everywhere (as the TensorFlow tutorial the seed program comes from; "
                       "on raw 0..255 pixels every framework stalls near 0.75). mlp: all 60,000 "
                       "training images; convnet/RNN rows: "
                       + ("first 10,000 training images (--quick)" if quick else "all 60,000 training images")
                       + "; accuracy on the 10,000 test images (dae, the keras-io denoising "
                       "autoencoder: its binary cross-entropy on the noisy test images instead).")
    table.notes.append(f"fit eff: forward + backward GEMM/convolution/recurrent FLOPs (fit_flops) "
                       f"/ fit s / the measured FMA peak, {peak:.0f} GFLOP/s on {threads} "
                       f"thread(s) (the best of {len(peaks)} measurements, one before each "
                       f"round: {min(peaks):.0f}-{peak:.0f}).")
    tables = [table]
    if not kinds or "mlp" in kinds:
        tables.append(_inference_table(data["mlp"], threads, 5 if quick else 15))
    return tables
