"""Agreement statistics between human and machine scores (as RSMTool reports them): the one place
they are computed (evaluation, training, the fine-tuning metrics, scripts and bench all call these).

    qwk(a, b, lo=None, hi=None)   quadratic weighted kappa of integer ratings on [lo, hi]
    smd(machine, human)           standardised mean difference
    agreement(human, machine, lo, hi, demographics=None)   QWK, exact/adjacent agreement, SMD, n
                                  (+ per-subgroup SMD); scale_agreement: the same on a Scale's points
    ece(conf, hit, bins=10)       expected calibration error

Two call conventions of qwk, one implementation:
  * on score ranges (ASAP): qwk(human, machine, lo, hi), e.g. qwk(y, pred, 2, 12);
  * on point indices 0..n-1 (a Scale's index(), the fine-tuning code): qwk(ia, ib, 0, n - 1),
    or qwk_points(ia, ib, n), the same thing.

Edge cases of qwk (one convention for every caller):
  * ratings are rounded to the nearest integer (np.rint) and clipped to [lo, hi];
  * lo / hi left as None are taken from the data (the min / max of both ratings together);
  * empty input: nan (undefined; no current caller passes one: every caller checks its counts first);
  * a single class (hi == lo) or both raters constant on the same class: 1.0 (perfect agreement,
    nothing to disagree on); one rater constant while the other varies: 0.0 (observed = expected);
  * otherwise 1 - sum(W * O) / sum(W * E), W_ij = (i - j)^2 / (n - 1)^2, E the outer product of
    the marginals / N (the same number as sklearn's cohen_kappa_score(weights="quadratic")).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

SUBGROUP_SMD_FLAG = 0.10  # RSMTool's threshold for a subgroup's |SMD|
MIN_SUBGROUP_N = 5  # subgroups smaller than this are reported but never flagged


def qwk(a, b, lo: int | None = None, hi: int | None = None) -> float:
    """Quadratic weighted kappa of two integer ratings on [lo, hi] (inferred from the data if None)."""
    a = np.rint(np.asarray(a, dtype=float)).astype(int)
    b = np.rint(np.asarray(b, dtype=float)).astype(int)
    if len(a) != len(b):
        raise ValueError("the two ratings differ in length")
    if len(a) == 0:
        return float("nan")
    lo = int(np.min(np.concatenate([a, b]))) if lo is None else int(lo)
    hi = int(np.max(np.concatenate([a, b]))) if hi is None else int(hi)
    a, b = np.clip(a, lo, hi), np.clip(b, lo, hi)
    n = hi - lo + 1
    if n <= 1:
        return 1.0
    obs = np.zeros((n, n))  # observed counts
    np.add.at(obs, (a - lo, b - lo), 1)
    i = np.arange(n)
    W = (i[:, None] - i[None, :]) ** 2 / (n - 1) ** 2
    E = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()  # expected counts under independence
    den = (W * E).sum()
    # den == 0 only when both raters put everything in one and the same class (then obs == E)
    return float(1.0 - (W * obs).sum() / den) if den else 1.0


def qwk_points(a, b, n: int | None = None) -> float:
    """qwk of point indices 0..n-1 (a Scale's index(); n inferred as max + 1 if None)."""
    return qwk(a, b, 0, None if n is None else int(n) - 1)


def smd(machine, human) -> float:
    """(mean(machine) - mean(human)) / sqrt((var(machine) + var(human)) / 2), variances with ddof=1;
    0.0 where that pooled SD is 0 (fewer than two scores, or both constant)."""
    m, h = np.asarray(machine, float), np.asarray(human, float)
    if len(m) == 0:
        return 0.0
    pooled = math.sqrt((m.var(ddof=1 if len(m) > 1 else 0) + h.var(ddof=1 if len(h) > 1 else 0)) / 2)
    return float((m.mean() - h.mean()) / pooled) if pooled > 0 else 0.0


def subgroup_smd(human, machine, demographics: list[dict]) -> tuple[dict, list[str]]:
    """Per value of each demographic column: (mean machine - mean human within the group) / the pooled SD
    of all the scores, flagged when |SMD| > SUBGROUP_SMD_FLAG and the group has >= MIN_SUBGROUP_N scores.
    Returns ({column: {value: {"n", "smd", "flagged"}}}, ["column=value" flagged])."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
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
            flag = bool(len(idx) >= MIN_SUBGROUP_N and abs(d) > SUBGROUP_SMD_FLAG)
            sub[col][val] = {"n": int(len(idx)), "smd": round(d, 4), "flagged": flag}
            if flag:
                flagged.append(f"{col}={val}")
    return sub, flagged


def _agreement(h: np.ndarray, m: np.ndarray, ih, im, lo, hi, demographics) -> dict:
    """h, m: the scores (SMD); ih, im: the ratings QWK and exact/adjacent agreement are counted on."""
    out = {"qwk": round(qwk(ih, im, lo, hi), 4),
           "exact_agreement": round(float((ih == im).mean()) if len(h) else 0.0, 4),
           "adjacent_agreement": round(float((np.abs(ih - im) <= 1).mean()) if len(h) else 0.0, 4),
           "smd": round(smd(m, h), 4)}
    if demographics and any(demographics):
        out["subgroups"], out["flagged_subgroups"] = subgroup_smd(h, m, demographics)
    return out


def agreement(human, machine, lo: int | None = None, hi: int | None = None, demographics: list[dict] | None = None) -> dict:
    """QWK on [lo, hi], exact and adjacent (within 1 point) agreement, SMD, n; with demographics
    (one dict per score) also "subgroups" and "flagged_subgroups" (subgroup_smd)."""
    h, m = np.asarray(human, dtype=float), np.asarray(machine, dtype=float)
    return {**_agreement(h, m, h, m, lo, hi, demographics), "n": len(h)}


def scale_agreement(human, machine, scale, demographics: list[dict] | None = None) -> dict:
    """agreement on a Scale (workers.ml.scales): QWK and exact/adjacent agreement on its point indices
    (adjacent = within one step, e.g. 0.5 on a half-point scale), SMD on the scores themselves.
    What the fine-tuning code stores as a model version's metrics (no "n": it stores n_validation)."""
    h, m = np.asarray(human, dtype=float), np.asarray(machine, dtype=float)
    return _agreement(h, m, scale.index(h), scale.index(m), 0, scale.n - 1, demographics)


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


def scale_report(human, machine, conf, scale, tolerance: int = 0, demographics: list[dict] | None = None) -> dict:
    """A fine-tuned version's validation figures on one scale (holistic or a trait): scale_agreement,
    n, the mean confidence, and `ece`, how far the confidence is from what happened (a hit: the score
    within `tolerance` points of the human's)."""
    h, m = np.asarray(human, dtype=float), np.asarray(machine, dtype=float)
    out = scale_agreement(h, m, scale, demographics)
    hit = (np.abs(scale.index(h) - scale.index(m)) <= tolerance).astype(int)
    c = np.asarray(conf, dtype=float)
    out.update(ece=round(ece(c, hit), 4), mean_confidence=round(float(c.mean()) if len(c) else 0.0, 4), n=int(len(h)))
    return out
