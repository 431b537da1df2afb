"""python -m fastdl.demo: train the seed MLP on the best handwriting data at hand and test it.

The model is the Keras beginner's MLP (Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax,
Adam, sparse categorical cross-entropy). The data is MNIST when it is on disk (or can be fetched
quickly), else Fashion-MNIST, else the 8x8 digits bundled with fastdl, so the demo always runs,
also offline. It says which data it used, shows the training progress and prints the test accuracy.

    python -m fastdl.demo                          # auto: MNIST, Fashion-MNIST or digits
    python -m fastdl.demo --dataset fashion_mnist --epochs 3 --plot demo.png
"""
import argparse
import sys
import time

import numpy as np

DEFAULT_EPOCHS = {"mnist": 5, "fashion_mnist": 5, "digits": 40}
PLOT_MISSING = ("--plot needs matplotlib, which is not installed: pip install matplotlib "
                "(or pip install 'fastdl[plot]'); training goes on without the plot")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastdl.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="auto", choices=["auto", "mnist", "fashion_mnist", "digits"],
                   help="data to train on (default auto: MNIST, else Fashion-MNIST, else digits)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {DEFAULT_EPOCHS['mnist']} on MNIST and Fashion-MNIST, "
                        f"{DEFAULT_EPOCHS['digits']} on the small digits set)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--plot", metavar="FILE", help="save training curves and predicted test images (matplotlib)")
    p.add_argument("--no-download", action="store_true",
                   help="never download; use only data already on disk (or the bundled digits)")
    p.add_argument("--seed", type=int, default=1, help="seed for initialisation, shuffling and dropout")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--smoke", action="store_true", help="a quick check: a few batches of a small subset")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    return args


def load(args):
    """(name, source, data) for the chosen data set; a clear message and SystemExit if it fails."""
    from . import datasets

    download = False if (args.no_download or args.smoke) else "auto"
    if args.dataset == "auto":
        return datasets.best_available(("mnist", "fashion_mnist", "digits"), download=download)
    mod = getattr(datasets, args.dataset)
    try:
        if args.dataset == "digits":
            return "digits", "bundled with fastdl", mod.load_data()
        where = mod.locate()
        if where is not None:
            return args.dataset, where, mod.load_data(download=False)
        return args.dataset, "downloaded", mod.load_data(download=not (args.no_download or args.smoke),
                                                         timeout=20)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)


def plot(path, history, x_test, y_test, predicted, class_names, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(PLOT_MISSING, file=sys.stderr)
        return False
    h = history.history
    epochs = np.arange(1, len(h.get("loss", [])) + 1)
    fig = plt.figure(figsize=(11, 5.5))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(epochs, h.get("loss", []), "o-", label="loss")
    if "accuracy" in h:
        ax.plot(epochs, h["accuracy"], "s-", label="accuracy")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("training")
    ax.grid(alpha=0.3)
    ax.legend()
    rows, cols = 4, 6
    n = min(rows * cols, len(x_test))
    for i in range(n):
        a = fig.add_subplot(rows, 2 * cols, (i // cols) * 2 * cols + cols + i % cols + 1)
        a.imshow(x_test[i], cmap="gray_r")
        ok = predicted[i] == y_test[i]
        label = class_names[predicted[i]] if ok else f"{class_names[predicted[i]]}\n(is {class_names[y_test[i]]})"
        a.set_title(label, fontsize=6, color="green" if ok else "red")
        a.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    from ._fileio import save_figure
    save_figure(fig, path, dpi=100)
    return True


def main(argv=None):
    args = parse_args(argv)
    import fastdl
    try:
        from fastdl import layers, models
    except ImportError as e:
        print(f"error: this build of fastdl has no model API yet ({e})", file=sys.stderr)
        return 1
    from fastdl import datasets

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(PLOT_MISSING, file=sys.stderr)
            args.plot = None
    if args.threads:
        fastdl.set_num_threads(args.threads)
    fastdl.set_seed(args.seed)

    name, source, ((x_train, y_train), (x_test, y_test)) = load(args)
    if args.smoke:
        x_train, y_train = x_train[:1024], y_train[:1024]
        x_test, y_test = x_test[:512], y_test[:512]
    epochs = args.epochs or (1 if args.smoke else DEFAULT_EPOCHS[name])
    side = x_train.shape[1:]
    print(f"Data: {datasets.TITLES[name]} from {source}: {len(x_train)} training and {len(x_test)} test "
          f"images, {side[0]}x{side[1]}")
    print(f"fastdl {fastdl.__version__}: {fastdl.get_num_threads()} thread(s), "
          f"{fastdl.ops.get_capability()} kernels; {epochs} epoch(s), batch size {args.batch_size}")
    sys.stdout.flush()

    x_train = x_train.astype(np.float32) / 255.0
    x_test_f = x_test.astype(np.float32) / 255.0

    # The seed program, unchanged apart from the input shape.
    model = models.Sequential()
    model.add(layers.Flatten(input_shape=side))
    model.add(layers.Dense(128, activation='relu'))
    model.add(layers.Dropout(0.2))
    model.add(layers.Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])

    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=args.batch_size)
    train_s = time.perf_counter() - t0
    result = model.evaluate(x_test_f, y_test, verbose=2)
    test_loss, test_acc = result[0], result[1]
    print(f"Test accuracy on {datasets.TITLES[name]}: {test_acc:.4f} (loss {test_loss:.4f}); "
          f"training took {train_s:.1f} s")

    if args.plot:
        probs = model.predict(x_test_f[:24], batch_size=args.batch_size)
        predicted = np.asarray(probs).argmax(axis=1)
        names = (datasets.fashion_mnist.CLASS_NAMES if name == "fashion_mnist" else [str(i) for i in range(10)])
        title = (f"fastdl demo: {datasets.TITLES[name]}, {epochs} epoch(s), "
                 f"test accuracy {test_acc:.4f}")
        if plot(args.plot, history, x_test[:24], y_test[:24], predicted, names, title):
            print(f"Saved the plot to {args.plot}")
    return 0


def _main_interruptible(argv=None):
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(_main_interruptible(sys.argv[1:]))
