"""A small generative adversarial network trained with the low-level loop.

The generator turns 32 random numbers into an image; the discriminator says "real" or "fake"
(it outputs a logit). Each step:

  1. discriminator: forward on a batch of real and generated images, gradient of the binary
     cross-entropy with respect to its logits, model.backward(dy), optimizer.apply_gradients;
  2. generator: forward, the discriminator's gradient with respect to the fake images
     (the value model.backward returns) pushed back through the generator, apply_gradients.

Runs offline on the best data at hand (MNIST, else Fashion-MNIST, else fastdl's bundled 8x8
digits). --plot FILE saves a grid of generated images (needs matplotlib).

    python examples/gan.py [--steps 2000] [--plot gan.png] [--smoke]
"""
import argparse
import sys

import numpy as np

import fastdl
from fastdl import datasets, layers, models, ops, optimizers

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--latent", type=int, default=32)
p.add_argument("--plot", metavar="FILE", help="a grid of generated images (needs matplotlib)")
p.add_argument("--smoke", action="store_true", help="a few steps on a small subset, offline")
args = p.parse_args()
if args.smoke:
    args.steps = 5
fastdl.set_seed(1)
rng = np.random.default_rng(1)

name, source, ((x_train, _), _) = datasets.best_available(download=False if args.smoke else "auto")
print(f"data: {name} from {source}")
if args.smoke:
    x_train = x_train[:512]
side = x_train.shape[1:]
pixels = side[0] * side[1]
real_images = x_train.reshape(len(x_train), pixels).astype(np.float32) / 255.0

generator = models.Sequential([
    layers.Dense(128, activation="relu", input_shape=(args.latent,)),
    layers.Dense(256, activation="relu"),
    layers.Dense(pixels, activation="sigmoid"),
])
discriminator = models.Sequential([
    layers.Dense(256, activation="relu", input_shape=(pixels,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(1),                      # a logit: > 0 means "real"
])
g_opt = optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
d_opt = optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy of sigmoid(logits) against targets, and its gradient."""
    p = ops.sigmoid(logits)
    loss = float(np.mean(np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))
    return loss, (p - targets) / len(logits)


B = args.batch_size
for step in range(1, args.steps + 1):
    # 1. the discriminator, on real images (target 1) and generated ones (target 0)
    real = real_images[rng.integers(0, len(real_images), B)]
    z = rng.standard_normal((B, args.latent)).astype(np.float32)
    fake = np.asarray(generator(z, training=True))
    both = np.concatenate([real, fake])
    targets = np.concatenate([np.ones((B, 1), np.float32), np.zeros((B, 1), np.float32)])
    d_loss, dlogits = bce_with_logits(np.asarray(discriminator(both, training=True)), targets)
    discriminator.backward(dlogits)
    d_opt.apply_gradients(zip(discriminator.gradients, discriminator.trainable_weights))

    # 2. the generator: make the discriminator say "real" (target 1) for fresh fakes
    z = rng.standard_normal((B, args.latent)).astype(np.float32)
    fake = generator(z, training=True)
    g_loss, dlogits = bce_with_logits(np.asarray(discriminator(fake, training=True)),
                                      np.ones((B, 1), np.float32))
    dfake = discriminator.backward(dlogits)   # fills discriminator.gradients too: not applied
    generator.backward(dfake)
    g_opt.apply_gradients(zip(generator.gradients, generator.trainable_weights))

    if step % max(args.steps // 10, 1) == 0 or step == args.steps:
        print(f"step {step:5d}  discriminator loss {d_loss:.3f}  generator loss {g_loss:.3f}")

if not (np.isfinite(d_loss) and np.isfinite(g_loss)):
    raise SystemExit("training diverged")

if args.plot:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
    else:
        z = rng.standard_normal((32, args.latent)).astype(np.float32)
        images = np.asarray(generator(z, training=False)).reshape((-1,) + side)
        fig, axes = plt.subplots(4, 8, figsize=(8, 4.2))
        for img, ax in zip(images, axes.ravel()):
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
        fig.suptitle(f"GAN samples after {args.steps} steps ({name})", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")
