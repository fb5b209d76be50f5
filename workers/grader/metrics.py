"""Agreement statistics between human and machine scores (as RSMTool reports them)."""
from __future__ import annotations

import numpy as np


def qwk(y_true, y_pred, lo: int | None = None, hi: int | None = None) -> float:
    """Quadratic weighted kappa on integer scores in [lo, hi]."""
    a = np.asarray(y_true, dtype=int)
    b = np.asarray(y_pred, dtype=int)
    lo = int(min(a.min(), b.min())) if lo is None else int(lo)
    hi = int(max(a.max(), b.max())) if hi is None else int(hi)
    n = hi - lo + 1
    if n <= 1 or len(a) == 0:
        return 1.0
    O = np.zeros((n, n))
    for x, y in zip(a - lo, b - lo):
        O[x, y] += 1
    W = np.array([[(i - j) ** 2 for j in range(n)] for i in range(n)]) / (n - 1) ** 2
    E = np.outer(O.sum(1), O.sum(0)) / O.sum()
    den = (W * E).sum()
    return float(1.0 - (W * O).sum() / den) if den else 1.0


def agreement(y_true, y_pred, lo: int, hi: int) -> dict:
    a = np.asarray(y_true, dtype=float)
    b = np.asarray(y_pred, dtype=float)
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 else 0.0
    return {
        "qwk": round(qwk(a, b, lo, hi), 4),
        "exact_agreement": round(float((a == b).mean()), 4),
        "adjacent_agreement": round(float((np.abs(a - b) <= 1).mean()), 4),
        "smd": round(float((b.mean() - a.mean()) / sd), 4) if sd else 0.0,
        "n": int(len(a)),
    }
