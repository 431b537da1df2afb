"""Run by tests/test_distribution.py, on 1 process or under mpiexec -n 2.

    python tests/mpi/dist_worker.py CASE OUTDIR

Each rank writes what it saw to OUTDIR/CASE.r<rank>.npz (or .txt) for the test to compare.
"""
import os
import sys

import numpy as np

import fastdl
from fastdl import callbacks, distribution, layers, models, optimizers

CASE, OUT = sys.argv[1], sys.argv[2]
RANKED = os.environ.get("DIST_PLAIN") != "1"   # 1: the one-process reference run
if RANKED:
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel())
    RANK = distribution.rank()
else:
    RANK = 0


def data(n, shape, classes=5, seed=0):
    g = np.random.default_rng(seed)
    return g.standard_normal((n,) + shape).astype(np.float32), g.integers(0, classes, n)


def mlp(units=16):
    return models.Sequential([layers.Input((12,)), layers.Dense(units, activation="relu"),
                              layers.Dense(5, activation="softmax")])


def convnet():
    return models.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                              layers.MaxPooling2D(2), layers.Flatten(),
                              layers.Dense(5, activation="softmax")])


class Sub(fastdl.Model):    # runs the tape path (the default train_step)
    def __init__(self):
        super().__init__()
        self.d1 = layers.Dense(16, activation="relu")
        self.d2 = layers.Dense(5, activation="softmax")

    def call(self, x, training=None):
        return self.d2(self.d1(x))


OPTS = {"sgd": lambda: optimizers.SGD(0.1, momentum=0.9), "adam": lambda: optimizers.Adam(0.01),
        "rmsprop": lambda: optimizers.RMSprop(0.01)}


def save(name, **arrays):
    np.savez(os.path.join(OUT, f"{name}.r{RANK}.npz"), **arrays)


def weights_dict(model):
    return {f"w{i}": w for i, w in enumerate(model.get_weights())}


if CASE == "equal":
    # the same result as one process on the whole batch: fused plans (MLP, convnet), the tape
    # path (a subclassed model); uneven last batches (37 = 4*8 + 5; 33 = 4*8 + 1 leaves
    # rank 1 without a share); predict/evaluate sharded and gathered
    calls = [0]
    real = distribution._comm.allreduce_

    def counting(a, op="sum"):
        calls[0] += 1
        return real(a, op)
    distribution._comm.allreduce_ = counting
    out = {}
    for mname, make, shape, n in (("mlp", mlp, (12,), 37), ("conv", convnet, (8, 8, 1), 37),
                                  ("sub", Sub, (12,), 33), ("mlp33", mlp, (12,), 33)):
        for oname in (OPTS if mname in ("mlp", "conv") else ("adam",)):
            fastdl.set_seed(3)
            x, y = data(n, shape)
            m = make()
            m.compile(optimizer=OPTS[oname](), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
            calls[0] = 0
            h = m.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
            key = f"{mname}_{oname}"
            out[key + "_calls"] = np.array(calls[0])
            out[key + "_loss"] = np.array(h.history["loss"])
            out[key + "_acc"] = np.array(h.history["accuracy"])
            for i, w in enumerate(m.get_weights()):
                out[f"{key}_w{i}"] = w
            out[key + "_pred"] = m.predict(x, batch_size=8, verbose=0)
            out[key + "_eval"] = np.array(m.evaluate(x, y, batch_size=8, verbose=0))
    # the generic loop with a PyDataset (batch i goes to rank i % size: a global batch is
    # `size` items), a functional model (its fused plan), validation data, and a train_step
    # of the user's own (gradients reduced at apply_gradients, metrics at the end of the step)
    size = distribution.size() if RANKED else 1
    x, y = data(36, (12,))

    class Items(fastdl.utils.PyDataset):
        def __len__(self):
            return -(-36 // (8 // size))

        def __getitem__(self, i):
            k = 8 // size
            return x[i * k:(i + 1) * k], y[i * k:(i + 1) * k]

    class OwnStep(models.Sequential):
        def train_step(self, batch):
            xb, yb = batch
            with fastdl.GradientTape() as tape:
                loss = self.compute_loss(x=xb, y=yb, y_pred=self(xb, training=True))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    def functional():
        i = layers.Input((12,))
        return models.Model(i, layers.Dense(5, activation="softmax")(
            layers.Dense(16, activation="relu")(i)))

    def binary():
        return models.Sequential([layers.Input((12,)), layers.Dense(8, activation="relu"),
                                  layers.Dense(1, activation="sigmoid")])

    sw = np.random.default_rng(5).random(36).astype(np.float32)
    for key, make, fit_args in (
            ("binary", binary, lambda: ((x, (y > 1).astype(np.float32)),
                                        dict(batch_size=8, sample_weight=sw))),
            ("dataset", mlp, lambda: ((Items(),), dict(shuffle=False))),
            ("functional", functional,
             lambda: ((x, y), dict(batch_size=8, validation_data=(x[:13], y[:13])))),
            ("ownstep", lambda: OwnStep(mlp().layers),
             lambda: ((x[:32], y[:32]), dict(batch_size=8)))):
        fastdl.set_seed(3)
        m = make()
        if key == "binary":   # sample weights; metrics whose state is metric variables
            m.compile(optimizer=OPTS["adam"](), loss="binary_crossentropy",
                      metrics=[fastdl.metrics.AUC(), fastdl.metrics.Precision()])
        else:
            m.compile(optimizer=OPTS["adam"](), loss="sparse_categorical_crossentropy")
        calls[0] = 0
        pos, kw = fit_args()
        h = m.fit(*pos, epochs=2, verbose=0, **kw)
        out[key + "_calls"] = np.array(calls[0])
        for k, v in h.history.items():
            out[f"{key}_{k}"] = np.array(v)
        for i, w in enumerate(m.get_weights()):
            out[f"{key}_w{i}"] = w
    save("equal", **out)

elif CASE == "moving":
    # a layer with a non-trainable statistic each rank updates from its own samples (as
    # BatchNormalization's moving mean): the ranks end each epoch with its mean
    class Moving(layers.Layer):
        def build(self, input_shape):
            self.mean = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                        trainable=False)

        def call(self, x, training=None):
            if training:
                self.mean[...] = 0.5 * self.mean + 0.5 * np.asarray(x).mean(axis=0)
            return x

    fastdl.set_seed(1)
    x, y = data(16, (12,))
    x = x + RANK   # different statistics per rank
    m = models.Sequential([layers.Input((12,)), Moving(), layers.Dense(5, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    save("moving", mean=m.layers[0].mean, x=x)
    try:
        m.fit((b for b in [(x, y)]), epochs=1, verbose=0)
        msg = "no error"
    except NotImplementedError as e:
        msg = str(e)
    with open(os.path.join(OUT, f"generator.r{RANK}.txt"), "w") as f:
        f.write(msg)

elif CASE == "interrupt":
    # Ctrl-C reaches rank 1 only (after its batch 2): both ranks stop after the same batch
    import signal
    fastdl.set_seed(1)
    x, y = data(80, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    seen = []

    class CtrlC(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
            if RANK == 1 and batch == 2:
                os.kill(os.getpid(), signal.SIGINT)
    h = m.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[CtrlC()])
    save("interrupt", seen=np.array(seen), epochs=np.array(len(h.history.get("loss", []))),
         **weights_dict(m))

elif CASE == "onbatch":
    # train_on_batch: each rank gives its own half of the batch
    fastdl.set_seed(2)
    x, y = data(16, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    size = distribution.size() if RANKED else 1
    lo, hi = RANK * 16 // size, (RANK + 1) * 16 // size
    losses_seen = [m.train_on_batch(x[lo:hi], y[lo:hi]) for _ in range(3)]
    save("onbatch", loss=np.array(losses_seen), **weights_dict(m))

elif CASE == "threads":
    save("threads", threads=np.array(fastdl.get_num_threads()),
         cores=np.array(fastdl.ops.available_cores()))

elif CASE == "early":
    fastdl.set_seed(1)
    x, y = data(40, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    es = callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=0)
    d = os.path.join(OUT, f"ck_r{RANK}")
    os.makedirs(d, exist_ok=True)
    ck = callbacks.ModelCheckpoint(os.path.join(d, "ck.weights.h5"), monitor="loss",
                                   save_weights_only=True)
    h = m.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[es, ck])
    save("early", loss=np.array(h.history["loss"]))

elif CASE == "crash":
    fastdl.set_seed(1)
    x, y = data(64, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    class Boom(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if RANK == 1 and batch == 2:
                raise RuntimeError("rank 1 fails on purpose")
    m.fit(x, y, batch_size=8, epochs=1000, verbose=0, callbacks=[Boom()])

elif CASE == "mismatch":
    fastdl.set_seed(1)
    x, y = data(16, (12,))
    m = mlp(16 if RANK == 0 else 15)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    try:
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        msg = "no error"
    except ValueError as e:
        msg = str(e)
    with open(os.path.join(OUT, f"mismatch.r{RANK}.txt"), "w") as f:
        f.write(msg)

elif CASE == "custom":
    # allreduce and DistributedOptimizer in a loop of one's own, each rank on its half
    fastdl.set_seed(2)
    x, y = data(16, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.predict(x[:1], verbose=0)
    opt = distribution.DistributedOptimizer(optimizers.SGD(0.1)) if RANKED else optimizers.SGD(0.1)
    if RANKED:
        distribution.broadcast_weights(m)
    size = distribution.size() if RANKED else 1
    lo, hi = RANK * 16 // size, (RANK + 1) * 16 // size
    from fastdl import losses
    lf = losses.SparseCategoricalCrossentropy()
    for _ in range(3):
        with fastdl.GradientTape() as tape:
            loss = lf(y[lo:hi], m(x[lo:hi], training=True))
        grads = tape.gradient(loss, m.trainable_weights)
        opt.apply_gradients(zip(grads, m.trainable_weights))
    s = distribution.allreduce(np.array([RANK + 1.0]), op="sum") if RANKED else np.array([3.0])
    mean = distribution.allreduce(np.array([RANK + 1.0])) if RANKED else np.array([1.5])
    save("custom", sum=s, mean=mean, **weights_dict(m))
elif CASE == "nccl":
    # CuPy arrays: distribution.allreduce goes through NCCL (one GPU per rank), and a model
    # on the GPU trains data-parallel like the CPU one
    import cupy
    a = cupy.arange(5, dtype=cupy.float32) + RANK
    s = cupy.asnumpy(distribution.allreduce(a, op="sum"))
    mean = cupy.asnumpy(distribution.allreduce(a))
    fastdl.set_seed(3)
    x, y = data(37, (12,))
    m = mlp()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.to("cuda")
    m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    m.to("cpu")
    save("nccl", sum=s, mean=mean, **weights_dict(m))
else:
    raise SystemExit(f"unknown case {CASE}")
