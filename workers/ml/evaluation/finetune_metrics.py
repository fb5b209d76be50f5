"""Agreement metrics between human and machine scores, RSMTool style.

QWK on integer point indices; exact and adjacent (within one step) agreement; the standardised
mean difference SMD = (mean(machine) - mean(human)) / sqrt((var(machine) + var(human)) / 2); and
per subgroup of each demographic column, (mean machine - mean human within the group) divided by
the pooled SD of the whole validation set, flagged when |SMD| > 0.10 (RSMTool's threshold).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

SUBGROUP_SMD_FLAG = 0.10
MIN_SUBGROUP_N = 5


def qwk(a, b, n: int | None = None) -> float:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return 0.0
    n = n or int(max(a.max(), b.max())) + 1
    O = np.zeros((n, n), dtype=np.float64)
    np.add.at(O, (a, b), 1.0)
    w = (np.subtract.outer(np.arange(n), np.arange(n)) ** 2) / max((n - 1) ** 2, 1)
    E = np.outer(O.sum(1), O.sum(0)) / O.sum()
    den = (w * E).sum()
    if den == 0:
        return 1.0 if (w * O).sum() == 0 else 0.0
    return float(1.0 - (w * O).sum() / den)


def smd(machine, human) -> float:
    m, h = np.asarray(machine, float), np.asarray(human, float)
    if len(m) == 0:
        return 0.0
    pooled = math.sqrt((m.var(ddof=1 if len(m) > 1 else 0) + h.var(ddof=1 if len(h) > 1 else 0)) / 2)
    return float((m.mean() - h.mean()) / pooled) if pooled > 0 else 0.0


def agreement(human_scores, machine_scores, scale, demographics: list[dict] | None = None) -> dict:
    """Metrics on the held-out split. Scores are on the rubric's scale (already snapped)."""
    h = np.asarray(human_scores, float)
    m = np.asarray(machine_scores, float)
    hi, mi = scale.index(h), scale.index(m)
    out = {"qwk": round(qwk(hi, mi, scale.n), 4),
           "exact_agreement": round(float((hi == mi).mean()) if len(h) else 0.0, 4),
           "adjacent_agreement": round(float((np.abs(hi - mi) <= 1).mean()) if len(h) else 0.0, 4),
           "smd": round(smd(m, h), 4)}
    if demographics and any(demographics):
        pooled = math.sqrt((m.var(ddof=1) + h.var(ddof=1)) / 2) if len(h) > 1 else 0.0
        groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, d in enumerate(demographics):
            for col, val in (d or {}).items():
                if val not in (None, ""):
                    groups[col][str(val)].append(i)
        sub: dict[str, dict] = {}
        flagged = []
        for col, vals in sorted(groups.items()):
            sub[col] = {}
            for val, idx in sorted(vals.items()):
                idx = np.asarray(idx)
                d = float((m[idx].mean() - h[idx].mean()) / pooled) if pooled > 0 else 0.0
                enough = len(idx) >= MIN_SUBGROUP_N
                flag = bool(enough and abs(d) > SUBGROUP_SMD_FLAG)
                sub[col][val] = {"n": int(len(idx)), "smd": round(d, 4), "flagged": flag}
                if flag:
                    flagged.append(f"{col}={val}")
        out["subgroups"] = sub
        out["flagged_subgroups"] = flagged
    return out
