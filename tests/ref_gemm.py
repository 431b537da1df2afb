"""NumPy references for the GEMM tests (computed in float64)."""
import numpy as np


def gemm_ref(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
             activation="linear"):
    """act(alpha * op(a) @ op(b) + beta * c + bias) in float64; beta = 0 ignores c."""
    A = np.asarray(a, np.float64)
    B = np.asarray(b, np.float64)
    if trans_a:
        A = A.T
    if trans_b:
        B = B.T
    m, n = A.shape[0], B.shape[1]
    r = np.zeros((m, n)) if alpha == 0 else alpha * (A @ B)
    if c is not None and beta != 0:
        r = r + beta * np.asarray(c, np.float64)
    if bias is not None:
        r = r + np.asarray(bias, np.float64)
    if activation == "relu":
        r = np.maximum(r, 0)
    return r


def gemm_tol(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, bias=None,
             dtype=np.float32):
    """Element-wise error bound: a few ulps times sqrt(k) times the magnitudes summed."""
    A = np.abs(np.asarray(a, np.float64))
    B = np.abs(np.asarray(b, np.float64))
    if trans_a:
        A = A.T
    if trans_b:
        B = B.T
    k = A.shape[1]
    mag = abs(alpha) * (A @ B) if k else np.zeros((A.shape[0], B.shape[1]))
    if c is not None and beta != 0:
        mag = mag + abs(beta) * np.abs(np.asarray(c, np.float64))
    if bias is not None:
        mag = mag + np.abs(np.asarray(bias, np.float64))
    eps = np.finfo(dtype).eps
    return 4 * eps * (np.sqrt(k) + 2) * (mag + 1e-30)
