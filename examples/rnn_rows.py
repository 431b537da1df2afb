"""A recurrent network that reads an image one row at a time: each 28x28 image is a sequence of
28 steps of 28 pixels, and the last hidden state of an LSTM (or GRU, or SimpleRNN) classifies it.

Runs offline on the best data at hand (MNIST, else Fashion-MNIST, else fastdl's bundled 8x8
digits: 8 steps of 8 pixels).

    python examples/rnn_rows.py [--cell lstm|gru|simple] [--units 128] [--epochs 2] [--smoke]
"""
import argparse

import fastdl
from fastdl import datasets, layers, models

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simple"])
p.add_argument("--units", type=int, default=128)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--smoke", action="store_true", help="a few batches of a small subset, offline")
args = p.parse_args()
fastdl.set_seed(1)

name, source, ((x_train, y_train), (x_test, y_test)) = datasets.best_available(
    download=False if args.smoke else "auto")
print(f"data: {name} from {source}")
if args.smoke:
    (x_train, y_train), (x_test, y_test) = (x_train[:256], y_train[:256]), (x_test[:128], y_test[:128])
    args.epochs = 1
    args.units = min(args.units, 32)
x_train = x_train.astype("float32") / 255.0     # (N, rows, cols): rows are the time steps
x_test = x_test.astype("float32") / 255.0
steps, features = x_train.shape[1:]

Cell = {"lstm": layers.LSTM, "gru": layers.GRU, "simple": layers.SimpleRNN}[args.cell]
model = models.Sequential()
model.add(Cell(args.units, input_shape=(steps, features)))
model.add(layers.Dense(10, activation="softmax"))
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print(f"{args.cell} over image rows: test accuracy {test_acc:.4f}")
