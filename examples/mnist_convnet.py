"""The Keras "simple MNIST convnet" example on fastdl: two Conv2D + MaxPooling2D blocks,
dropout and a softmax classifier, trained with categorical cross-entropy on one-hot labels.

Runs offline on the best data at hand (MNIST, else Fashion-MNIST, else fastdl's bundled 8x8
digits, for which the convolutions use padding="same" so the small images survive two poolings).

    python examples/mnist_convnet.py [--epochs 3] [--batch-size 128] [--smoke]
"""
import argparse

import numpy as np

import fastdl
from fastdl import datasets, layers, models

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--smoke", action="store_true", help="a few batches of a small subset, offline")
args = p.parse_args()
fastdl.set_seed(1)

name, source, ((x_train, y_train), (x_test, y_test)) = datasets.best_available(
    download=False if args.smoke else "auto")
print(f"data: {name} from {source}")
if args.smoke:
    (x_train, y_train), (x_test, y_test) = (x_train[:256], y_train[:256]), (x_test[:128], y_test[:128])
    args.epochs = 1

num_classes = 10
# images as (N, H, W, 1) in [0, 1]; labels one-hot
x_train = (x_train.astype("float32") / 255.0)[..., None]
x_test = (x_test.astype("float32") / 255.0)[..., None]
y_train_1hot = np.eye(num_classes, dtype="float32")[y_train]
y_test_1hot = np.eye(num_classes, dtype="float32")[y_test]
padding = "valid" if x_train.shape[1] >= 28 else "same"

model = models.Sequential([
    layers.Input(shape=x_train.shape[1:]),
    layers.Conv2D(32, kernel_size=(3, 3), activation="relu", padding=padding),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(64, kernel_size=(3, 3), activation="relu", padding=padding),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),
    layers.Dense(num_classes, activation="softmax"),
])
model.summary()
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train_1hot, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.1)
score = model.evaluate(x_test, y_test_1hot, verbose=0)
print(f"test loss: {score[0]:.4f}")
print(f"test accuracy: {score[1]:.4f}")
