"""The cost of training options: fit without weights (the fused step plan), with
sample_weight, with class_weight (both through the tape), on an MLP over random data.

    python -m bench.train_options [--epochs N] [--threads N] [--cpu-time]

Run it against two checkouts (PYTHONPATH=<checkout>/python) to compare the unweighted
path before and after a change. ``--cpu-time`` reports process CPU time (steadier than
wall time on a shared machine; it counts every thread's time).
"""
import argparse
import statistics
import time

import numpy as np


def _fit_seconds(mode, epochs, clock, n=4096, batch=64):
    import fastdl as keras
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 64)).astype("float32")
    y = rng.integers(0, 10, n)
    keras.set_seed(0)
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    kw = {}
    if mode == "sample_weight":
        kw["sample_weight"] = rng.uniform(0.5, 1.5, n).astype("float32")
    elif mode == "class_weight":
        kw["class_weight"] = {c: 1.0 + c / 10 for c in range(10)}
    m.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0,
          **({"sample_weight": kw["sample_weight"][:batch * 2]} if "sample_weight" in kw else
             {k: v for k, v in kw.items()}))    # warm up
    times = []
    for _ in range(epochs):
        t0 = clock()
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, **kw)
        times.append(clock() - t0)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cpu-time", action="store_true")
    p.add_argument("--modes", default="plain,sample_weight,class_weight")
    opts = p.parse_args(argv)
    import fastdl as keras
    if opts.threads:
        keras.set_num_threads(opts.threads)
    clock = time.process_time if opts.cpu_time else time.perf_counter
    unit = "CPU s" if opts.cpu_time else "s"
    print(f"| fit of 4096 samples, batch 64, MLP 64-128-10 | {unit} per epoch (median) |")
    print("|---|---|")
    for mode in opts.modes.split(","):
        try:
            s = _fit_seconds(mode, opts.epochs, clock)
        except NotImplementedError as e:
            print(f"| {mode} | not supported ({e}) |")
            continue
        print(f"| {mode} | {s:.4f} |")


if __name__ == "__main__":
    main()
