"""A dense autoencoder: 784-128-32-128-784, trained to reproduce its input (mean squared error).
The 32-number code in the middle is a compressed description of each image.

Runs offline on the best data at hand (MNIST, else Fashion-MNIST, else fastdl's bundled 8x8
digits, where the layers are 64-128-32-128-64). With --plot FILE and matplotlib installed it saves
test images (top row) above their reconstructions (bottom row).

    python examples/autoencoder.py [--epochs 5] [--plot autoencoder.png] [--smoke]
"""
import argparse
import sys

import numpy as np

import fastdl
from fastdl import datasets, layers, models

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--plot", metavar="FILE", help="originals against reconstructions (needs matplotlib)")
p.add_argument("--smoke", action="store_true", help="a few batches of a small subset, offline")
args = p.parse_args()
fastdl.set_seed(1)

name, source, ((x_train, _), (x_test, _)) = datasets.best_available(
    download=False if args.smoke else "auto")
print(f"data: {name} from {source}")
if args.smoke:
    x_train, x_test = x_train[:256], x_test[:64]
    args.epochs = 1
side = x_test.shape[1:]
pixels = side[0] * side[1]
x_train = x_train.reshape(len(x_train), pixels).astype("float32") / 255.0
x_test = x_test.reshape(len(x_test), pixels).astype("float32") / 255.0

model = models.Sequential([
    layers.Dense(128, activation="relu", input_shape=(pixels,)),
    layers.Dense(32, activation="relu"),          # the code
    layers.Dense(128, activation="relu"),
    layers.Dense(pixels, activation="sigmoid"),   # pixels in [0, 1]
])
model.summary()
model.compile(optimizer="adam", loss="mse")
model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs)
recon = np.asarray(model.predict(x_test, batch_size=args.batch_size))
mse = float(np.mean((recon - x_test) ** 2))
baseline = float(np.mean((x_test - x_train.mean(axis=0)) ** 2))
print(f"test reconstruction MSE: {mse:.4f} (predicting the mean image: {baseline:.4f})")

if args.plot:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
    else:
        n = min(10, len(x_test))
        fig, axes = plt.subplots(2, n, figsize=(n * 1.2, 2.6), squeeze=False)
        for i in range(n):
            for row, imgs in enumerate((x_test, recon)):
                axes[row, i].imshow(imgs[i].reshape(side), cmap="gray_r", vmin=0, vmax=1)
                axes[row, i].axis("off")
        axes[0, 0].set_title("original", fontsize=8, loc="left")
        axes[1, 0].set_title("reconstructed", fontsize=8, loc="left")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")
