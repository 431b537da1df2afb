"""The interop table: for each Keras fixture model (tests/fixtures/keras/), the largest
absolute difference to Keras' own outputs when

  1. fastdl loads Keras' file and predicts;
  2. fastdl writes the model (model.save) and Keras 3 loads that file and predicts;
  3. fastdl exports it to ONNX and ONNX Runtime runs it;

plus one model trained in fastdl (Adam, compiled) written by fastdl and loaded by Keras
(against fastdl's predictions), and ONNX Runtime's predict time against fastdl's for the
convnet. Runs where Keras 3 (TensorFlow's CPU build) and fastdl import side by side, with
onnx and onnxruntime for the third column:

    tfvenv/bin/pip install onnx onnxruntime
    PYTHONPATH=python tfvenv/bin/python tools/check_keras_roundtrip.py [--batch 256]

Timings are CPU seconds (time.process_time, all threads) and wall seconds per predict of
--batch images, medians of --repeat; on a shared machine they are provisional.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "keras")


def data(name):
    with np.load(os.path.join(FIXTURES, name + ".npz")) as d:
        xs = [d[k] for k in sorted(d.files) if k.startswith("x")]
        ys = [d[k] for k in sorted(d.files) if k.startswith("y")]
    return xs, ys


def as_list(y):
    return [np.asarray(v) for v in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]


def maxdiff(a, b):
    return max(float(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)).max())
               for u, v in zip(a, b))


def onnx_session(path):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def onnx_run(sess, xs):
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})


def fmt(v):
    return v if isinstance(v, str) else f"{v:.2e}"


def row_for(name, tmp):
    import keras
    from fastdl import models
    xs, ys = data(name)
    feed = xs if len(xs) > 1 else xs[0]
    try:
        m = models.load_model(os.path.join(FIXTURES, name + ".keras"))
    except (ValueError, NotImplementedError) as e:
        return [name, f"not loaded: {str(e)[:60]}", "-", "-"]
    loaded = maxdiff(as_list(m.predict(feed, verbose=0)), ys)
    path = os.path.join(tmp, name + ".keras")
    m.save(path)
    try:
        km = keras.models.load_model(path)
        written = maxdiff(as_list(km.predict(feed, verbose=0)), ys)
    except Exception as e:  # noqa: BLE001 (a table cell: what Keras said)
        written = f"Keras: {type(e).__name__}: {str(e)[:60]}"
    try:
        op = os.path.join(tmp, name + ".onnx")
        m.export(op, format="onnx")
        exported = maxdiff(onnx_run(onnx_session(op), xs), ys)
    except ImportError as e:
        exported = f"({e})"
    except ValueError as e:
        exported = f"not exported: {str(e)[:60]}"
    return [name, loaded, written, exported]


def trained_model_row(tmp):
    """A model made and trained in fastdl, written by fastdl, loaded by Keras (compiled)."""
    import keras
    import fastdl
    from fastdl import layers, models
    fastdl.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10, 10, 2)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    a = fastdl.Input((10, 10, 2), name="img")
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(a)
    h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    out = layers.Dense(3, activation="softmax")(layers.Dropout(0.2)(h))
    m = models.Model(a, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = os.path.join(tmp, "trained.keras")
    m.save(path)
    km = keras.models.load_model(path)
    d = maxdiff([km.predict(x, verbose=0)], [m.predict(x, verbose=0)])
    it = int(km.optimizer.iterations.numpy())
    return ["trained in fastdl (functional convnet, Adam)", "-",
            f"{d:.2e} (Keras optimizer iterations {it}, fastdl {m.optimizer.iterations})", "-"]


def every_layer_models():
    """{name: (model, inputs)}: every layer kind fastdl writes in Keras' format."""
    import fastdl
    from fastdl import layers as L, models
    rng = np.random.default_rng(0)

    def seq(shape, *ls):
        m = models.Sequential([L.Input(shape)] + list(ls))
        m.set_weights([rng.normal(0, 0.4, w.shape).astype("f4") for w in m.get_weights()])
        return m, [rng.normal(size=(3,) + shape).astype("f4")]
    out = {
        "activations": seq((6,), L.Dense(6, activation="elu"), L.Activation("softplus"), L.ReLU(),
                           L.LeakyReLU(negative_slope=0.2), L.ELU(alpha=0.7), L.PReLU(),
                           L.Softmax()),
        "pooling1d": seq((11, 3), L.MaxPooling1D(2), L.AveragePooling1D(2, padding="same"),
                         L.UpSampling1D(2), L.GlobalMaxPooling1D()),
        "global_avg1d": seq((6, 3), L.GlobalAveragePooling1D()),
        "image_reshaping": seq((9, 8, 2), L.ZeroPadding2D(((1, 2), (0, 1))),
                               L.Cropping2D(((1, 0), (2, 1))), L.UpSampling2D(2),
                               L.Conv2D(3, 3, strides=2, padding="same", use_bias=False),
                               L.GlobalMaxPooling2D(keepdims=True), L.Flatten()),
        "global_avg2d_keepdims": seq((5, 4, 2), L.GlobalAveragePooling2D(keepdims=True)),
        "noise_and_reshaping": seq((4,), L.Dense(4), L.GaussianNoise(0.2), L.GaussianDropout(0.3),
                                   L.ActivityRegularization(l1=0.01), L.Dropout(0.2),
                                   L.RepeatVector(3), L.SpatialDropout1D(0.2), L.Permute((2, 1)),
                                   L.Reshape((-1,))),
        "spatial_dropout2d": seq((4, 4, 2), L.SpatialDropout2D(0.3), L.Flatten()),
        "rnn_options": seq((5, 3), L.LSTM(3, return_sequences=True, use_bias=False,
                                          unit_forget_bias=False),
                           L.GRU(2, return_sequences=True), L.SimpleRNN(2, activation="relu")),
        "regularizers": seq((4,), L.Dense(3, kernel_regularizer="l2",
                                          bias_regularizer=fastdl.regularizers.L1(0.01))),
    }
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    merged = [getattr(L, n)()([a, b]) for n in
              ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]]
    out["merges"] = (models.Model([a, b], L.Concatenate(axis=-1)(merged)),
                     [rng.normal(size=(3, 4)).astype("f4") for _ in range(2)])
    return out


def every_layer_rows(tmp):
    import keras
    rows = []
    for name, (m, xs) in every_layer_models().items():
        path = os.path.join(tmp, "every_" + name + ".keras")
        feed = xs if len(xs) > 1 else xs[0]
        try:
            m.save(path)
            km = keras.models.load_model(path)
            rows.append([name, maxdiff([km.predict(feed, verbose=0)], [m.predict(feed, verbose=0)])])
        except Exception as e:  # noqa: BLE001 (a table cell: what went wrong)
            rows.append([name, f"{type(e).__name__}: {str(e)[:80]}"])
    return rows


def timing(tmp, batch, repeat):
    from fastdl import models
    m = models.load_model(os.path.join(FIXTURES, "convnet.keras"))
    x = np.random.default_rng(0).normal(size=(batch, 12, 12, 3)).astype(np.float32)
    op = os.path.join(tmp, "convnet_t.onnx")
    m.export(op, format="onnx")
    sess = onnx_session(op)

    def measure(fn):
        fn()
        cpu, wall = [], []
        for _ in range(repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        return statistics.median(cpu), statistics.median(wall)
    res = {}
    for _ in range(2):     # alternate, keep the better round of each
        for k, fn in (("fastdl predict", lambda: m.predict(x, batch_size=batch, verbose=0)),
                      ("ONNX Runtime", lambda: onnx_run(sess, [x]))):
            c, w = measure(fn)
            old = res.get(k)
            res[k] = (c, w) if old is None else (min(old[0], c), min(old[1], w))
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    import keras
    names = sorted(f[:-6] for f in os.listdir(FIXTURES) if f.endswith(".keras"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row_for(n, tmp) for n in names]
        rows.append(trained_model_row(tmp))
        print(f"Keras {keras.__version__}; max |difference| to Keras' outputs\n")
        print("| model | fastdl loads Keras' file | Keras loads fastdl's file | ONNX Runtime |")
        print("|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(fmt(v) for v in r) + " |")
        print("\nEvery layer kind, written by fastdl, loaded by Keras: max |difference| to "
              "fastdl's predictions\n")
        print("| model | Keras loads fastdl's file |")
        print("|---|---|")
        for r in every_layer_rows(tmp):
            print("| " + " | ".join(fmt(v) for v in r) + " |")
        try:
            t = timing(tmp, args.batch, args.repeat)
        except ImportError as e:
            print(f"\n(no timing: {e})")
            return
        print(f"\nconvnet predict, batch {args.batch} (median of {args.repeat}; provisional)\n")
        print("| runtime | CPU ms | wall ms |")
        print("|---|---|---|")
        for k, (c, w) in t.items():
            print(f"| {k} | {c * 1e3:.2f} | {w * 1e3:.2f} |")


if __name__ == "__main__":
    main()
