"""Agreement statistics between human and machine scores (as RSMTool reports them)."""
from __future__ import annotations


import numpy as np

from workers.ml.evaluation.evaluate import qwk


def agreement(y_true, y_pred, lo: int, hi: int) -> dict:
    a = np.asarray(y_true, dtype=float)
    b = np.asarray(y_pred, dtype=float)
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 else 0.0
    return {
        "qwk": round(qwk(a, b, lo, hi), 4),
        "exact_agreement": round(float((a == b).mean()), 4),
        "adjacent_agreement": round(float((np.abs(a - b) <= 1).mean()), 4),
        "smd": round(float((b.mean() - a.mean()) / sd), 4) if sd else 0.0,
        "n": len(a),
    }


def ece(conf, hit, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width confidence bins of share * |mean conf - hit rate|."""
    conf, hit = np.asarray(conf, dtype=float), np.asarray(hit, dtype=float)
    if len(conf) == 0:
        return float("nan")
    b = np.minimum((conf * bins).astype(int), bins - 1)
    tot = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            tot += m.mean() * abs(conf[m].mean() - hit[m].mean())
    return float(tot)
