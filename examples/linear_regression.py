"""Linear regression by gradient descent, written with fastdl.ops alone (no model API).

The data is synthetic: y = X w_true + b_true + noise. Each step computes the predictions with
ops.linear (one GEMM plus the bias), the mean-squared-error gradient with ops.gemm
(dw = 2/N X^T r, db = 2/N 1^T r) and takes a step; the fit must recover w_true and b_true.

    python examples/linear_regression.py [--samples 10000] [--features 20] [--steps 300] [--smoke]
"""
import argparse

import numpy as np

from fastdl import ops

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--samples", type=int, default=10000)
p.add_argument("--features", type=int, default=20)
p.add_argument("--steps", type=int, default=300)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--smoke", action="store_true", help="a small problem, quickly")
args = p.parse_args()
if args.smoke:
    args.samples, args.features, args.steps = 500, 5, 200

rng = np.random.default_rng(0)
n, d = args.samples, args.features
X = rng.standard_normal((n, d)).astype(np.float32)
w_true = rng.uniform(-2, 2, (d, 1)).astype(np.float32)
b_true = np.float32(0.5)
y = (X @ w_true + b_true + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)

w = np.zeros((d, 1), np.float32)       # the parameters, Keras shapes: kernel (in, units), bias (units,)
b = np.zeros((1,), np.float32)
ones = np.ones((1, n), np.float32)
for step in range(args.steps + 1):
    pred = ops.linear(X, w, b)                                  # X w + b          (n, 1)
    r = pred - y                                                # residuals
    loss = float(ops.gemm(r, r, trans_a=True)[0, 0]) / n        # mean squared error
    dw = ops.gemm(X, r, alpha=2.0 / n, trans_a=True)            # 2/n X^T r        (d, 1)
    db = ops.gemm(ones, r, alpha=2.0 / n).reshape(1)            # 2/n sum(r)       (1,)
    w -= args.lr * dw
    b -= args.lr * db
    if step % max(args.steps // 5, 1) == 0:
        print(f"step {step:4d}  mse {loss:.5f}")

err_w = float(np.max(np.abs(w - w_true)))
err_b = float(abs(b[0] - b_true))
print(f"largest weight error {err_w:.4f}, bias error {err_b:.4f} (noise level 0.1)")
if err_w > 0.05 or err_b > 0.05:
    raise SystemExit("gradient descent did not recover the weights")
print("recovered the true weights")
