"""Allreduce time against step time for data-parallel fit, and the allreduce bandwidth.

    mpiexec -n 2 python -m mpi4py tools/time_data_parallel.py [--steps 60]

Rank 0 prints, for the seed MLP (Dense 784-128-10, global batch 32) and the MNIST convnet
(global batch 128): the time per training step, the time per step spent in the one allreduce
(the flat gradient buffer plus the counts and metric sums; it includes waiting for the slower
rank), the same allreduce timed alone with the ranks in step, its size, and the bandwidth of
MPI_Allreduce on buffers of 1-16 MB (algorithm bandwidth: bytes reduced / time). Under plain
python (one rank) it times the step alone. Wall-clock numbers: run on a quiet machine.
"""
import argparse
import time

import numpy as np

import fastdl
from fastdl import distribution, layers, models
from fastdl.distribution import _comm

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--steps", type=int, default=60, help="timed steps per model")
args = p.parse_args()
rank, size = distribution.initialize()
distribution.set_distribution(distribution.DataParallel())

spent = [0.0, 0]
real = _comm.allreduce_


def timed(a, op="sum"):
    t = time.perf_counter()
    out = real(a, op)
    spent[0] += time.perf_counter() - t
    spent[1] += 1
    return out


_comm.allreduce_ = timed


def mlp():
    return models.Sequential([layers.Input((28, 28)), layers.Flatten(),
                              layers.Dense(128, activation="relu"), layers.Dropout(0.2),
                              layers.Dense(10, activation="softmax")])


def convnet():
    return models.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dropout(0.5), layers.Dense(10, activation="softmax")])


rows = []
for name, make, shape, batch in (("MLP 784-128-10", mlp, (28, 28), 32),
                                 ("convnet", convnet, (28, 28, 1), 128)):
    fastdl.set_seed(0)
    g = np.random.default_rng(0)
    n = batch * args.steps
    x = g.random((n,) + shape, dtype=np.float32)
    y = g.integers(0, 10, n)
    m = make()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x[:batch * 3], y[:batch * 3], batch_size=batch, epochs=1, verbose=0)   # warm-up
    distribution.barrier()
    spent[:] = [0.0, 0]
    t = time.perf_counter()
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    step = (time.perf_counter() - t) / args.steps
    params = sum(int(w.size) for w in m.trainable_weights)
    per = spent[0] / max(spent[1], 1)
    # the same allreduce alone, the ranks in step (no waiting for a slower rank)
    buf = np.zeros(params + 64, np.float32)
    distribution.barrier()
    t = time.perf_counter()
    for _ in range(50):
        real(buf)
    alone = (time.perf_counter() - t) / 50
    rows.append((name, batch, params, step, per, alone, spent[1] / args.steps))

bw = []
for mb in (1, 4, 16):
    a = np.ones(mb * 2**18, np.float32)
    for _ in range(3):
        real(a)
    distribution.barrier()
    k = 20
    t = time.perf_counter()
    for _ in range(k):
        real(a)
    bw.append((mb, (time.perf_counter() - t) / k))

if rank == 0:
    print(f"{size} rank(s), {fastdl.get_num_threads()} thread(s) each")
    print("| model | global batch | parameters | allreduce bytes | step ms | allreduce ms/step "
          "| allreduce share | allreduce alone ms | allreduces/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, batch, params, step, per, alone, calls in rows:
        print(f"| {name} | {batch} | {params:,} | {4 * params / 1e6:.2f} MB | {step * 1e3:.2f} | "
              f"{per * 1e3:.3f} | {per / step:.0%} | {alone * 1e3:.3f} | {calls:.0f} |")
    print("| allreduce size | time ms | algorithm bandwidth GB/s |")
    print("|---|---|---|")
    for mb, t in bw:
        print(f"| {mb} MB | {t * 1e3:.3f} | {mb * 2**20 / t / 1e9:.2f} |")
