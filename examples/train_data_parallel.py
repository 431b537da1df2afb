"""The MNIST convnet (examples/mnist_convnet.py) trained data-parallel over MPI.

Every rank holds the whole model; each global batch of --batch-size samples is split between
the ranks, their gradients averaged by one allreduce per step. Under plain python it trains as
one process. On one machine:

    pip install 'fastdl[mpi]' mpich
    mpiexec -n 2 python -m mpi4py examples/train_data_parallel.py [--epochs 3] [--smoke]

On a cluster: mpiexec -hosts a,b -n 2 python -m mpi4py examples/train_data_parallel.py
(or srun -N 2 -n 2 python -m mpi4py ...). `python -m mpi4py` ends every rank when one fails.
"""
import argparse
import time

import fastdl
from fastdl import callbacks, datasets, distribution, layers, models

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--batch-size", type=int, default=128, help="the global batch (all ranks together)")
p.add_argument("--checkpoint", default=None, help="save the weights here each epoch (rank 0 writes)")
p.add_argument("--smoke", action="store_true", help="a few batches of a small subset, offline")
args = p.parse_args()

rank, size = distribution.initialize()       # (0, 1) under plain python
distribution.set_distribution(distribution.DataParallel())
fastdl.set_seed(1)                           # rank 0's weights and shuffles are everyone's

name, source, ((x_train, y_train), (x_test, y_test)) = datasets.best_available(
    download=False if args.smoke else "auto")
if args.smoke:
    (x_train, y_train), (x_test, y_test) = (x_train[:256], y_train[:256]), (x_test[:128], y_test[:128])
    args.epochs = 1
if rank == 0:
    print(f"data: {name} from {source}; {size} rank(s), {fastdl.get_num_threads()} thread(s) each")

x_train = (x_train.astype("float32") / 255.0)[..., None]
x_test = (x_test.astype("float32") / 255.0)[..., None]
padding = "valid" if x_train.shape[1] >= 28 else "same"
model = models.Sequential([
    layers.Input(shape=x_train.shape[1:]),
    layers.Conv2D(32, kernel_size=(3, 3), activation="relu", padding=padding),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(64, kernel_size=(3, 3), activation="relu", padding=padding),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),                     # each rank draws its own masks
    layers.Dense(10, activation="softmax"),
])
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
cbs = [callbacks.ModelCheckpoint(args.checkpoint, save_weights_only=True)] if args.checkpoint else []
t0 = time.perf_counter()
model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, callbacks=cbs,
          verbose=2)                         # rank 0 prints, the others stay quiet
elapsed = time.perf_counter() - t0
loss, acc = model.evaluate(x_test, y_test, verbose=0)   # each rank its share, sums added up
if rank == 0:
    print(f"trained in {elapsed:.1f}s on {size} rank(s)")
    print(f"test loss: {loss:.4f}")
    print(f"test accuracy: {acc:.4f}")
