"""The seed program: a multilayer perceptron on MNIST, written as for Keras.

Runs offline on the best data at hand (MNIST, else Fashion-MNIST, else fastdl's bundled 8x8
digits). Only the imports differ from the Keras original.

    python examples/mnist_mlp.py [--epochs 5] [--smoke]
"""
import argparse

import fastdl
from fastdl import layers, models, optimizers, losses, callbacks, datasets  # noqa: F401

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--smoke", action="store_true", help="a few batches of a small subset, offline")
args = p.parse_args()

name, source, ((x_train, y_train), (x_test, y_test)) = datasets.best_available(
    download=False if args.smoke else "auto")
print(f"data: {name} from {source}")
if args.smoke:
    (x_train, y_train), (x_test, y_test) = (x_train[:512], y_train[:512]), (x_test[:256], y_test[:256])
    args.epochs = 1
x_train, x_test = x_train / 255.0, x_test / 255.0

model = models.Sequential()
model.add(layers.Flatten(input_shape=x_train.shape[1:]))
model.add(layers.Dense(128, activation='relu'))
model.add(layers.Dropout(0.2))
model.add(layers.Dense(10, activation='softmax'))
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
history = model.fit(x_train, y_train, epochs=args.epochs)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print(f"test accuracy: {test_acc:.4f}")
