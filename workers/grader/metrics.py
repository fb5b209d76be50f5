"""Agreement statistics between human and machine scores (as RSMTool reports them)."""
from __future__ import annotations

import numpy as np

from workers.grader.evaluate import qwk


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
