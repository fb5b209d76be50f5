"""Which essays a teacher should score first, so that calibration learns the most from few scores.

    suggest(scores, confidences, texts, n, scale, exclude) -> [Suggestion(index, why)]

Read from what a graded class already holds (the default grader's scores and confidences, the texts);
no model runs. The class's gradable essays are sorted by predicted score and cut into n groups of
(nearly) equal size, so the choices span the predicted range: the calibration learns the rubric's level
and spread from essays across it, not five middling ones. Inside each group the essay chosen is near the
group's middle (so the scored essays stay a fair sample of the class: the calibration reads their mean
and spread), favouring one the grader is unsure of and one unlike the essays chosen so far (cosine of
hashed word 1-2-gram vectors); a near-duplicate of a chosen essay (cosine >= NEAR_DUPLICATE) is never chosen. Withheld essays
(no score: empty, off-topic, ...) and essays the teacher already scored are left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

NEAR_DUPLICATE = 0.8
# inside a group: how far from the group's middle (0 at it, 1 at its ends), how unsure the grader is
# (1 - confidence) and how unlike the essays chosen so far (1 - max cosine); chosen by the learning curve
# on train.jsonl (docs/grading.md): the group's middle first keeps the scored essays a fair sample of the class
CENTRE_WEIGHT = 1.0
UNSURE_WEIGHT = 0.2
DIVERSE_WEIGHT = 0.3


@dataclass(frozen=True)
class Suggestion:
    index: int
    why: str


def text_vectors(texts: Sequence[str]):
    """L2-normalised log-tf hashed word 1-2-grams (sparse; no vocabulary is kept)."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    hv = HashingVectorizer(n_features=2 ** 18, ngram_range=(1, 2), alternate_sign=False, norm=None,
                           lowercase=True, token_pattern=r"(?u)\b\w+\b")
    X = hv.transform(list(texts)).tocsr().astype(np.float32)
    X.data = np.log1p(X.data)
    return normalize(X)


def _place(rank: float) -> str:
    if rank < 0.2:
        return "among the lowest of the class"
    if rank < 0.4:
        return "in the lower middle of the class"
    if rank <= 0.6:
        return "in the middle of the class"
    if rank <= 0.8:
        return "in the upper middle of the class"
    return "among the highest of the class"


def suggest(scores: Sequence[float | None], confidences: Sequence[float | None], texts: Sequence[str], n: int,
            exclude: Sequence[int] = (), vectors=None) -> list[Suggestion]:
    """Up to n essays (indices into the inputs) to score first, each with the reason it was chosen."""
    skip = set(int(i) for i in exclude)
    cand = [i for i, s in enumerate(scores) if s is not None and i not in skip]
    if n <= 0 or not cand:
        return []
    V = vectors if vectors is not None else text_vectors(texts)
    conf = {i: float(confidences[i]) if confidences[i] is not None else 0.5 for i in cand}
    order = sorted(cand, key=lambda i: (float(scores[i]), conf[i], i))
    groups = [g for g in np.array_split(np.array(order), min(n, len(order))) if len(g)]
    rank = {i: r / max(len(order) - 1, 1) for r, i in enumerate(order)}
    unsure_below = float(np.quantile([conf[i] for i in cand], 1 / 3))  # "unsure": the least sure third
    chosen: list[int] = []
    out: list[Suggestion] = []
    sim_to_chosen = np.zeros(len(scores))  # max cosine to any chosen essay
    # the extremes first (they pin the spread), then inwards
    g_order = sorted(range(len(groups)), key=lambda g: -abs(g - (len(groups) - 1) / 2))
    for g in g_order:
        best, best_val = None, -np.inf
        mid = (len(groups[g]) - 1) / 2
        for j, i in enumerate(groups[g]):
            i = int(i)
            if chosen and sim_to_chosen[i] >= NEAR_DUPLICATE:
                continue
            val = (UNSURE_WEIGHT * (1.0 - conf[i]) + DIVERSE_WEIGHT * (1.0 - sim_to_chosen[i])
                   - CENTRE_WEIGHT * abs(j - mid) / max(mid, 1))
            if val > best_val:
                best, best_val = i, val
        if best is None:
            continue
        parts = [f"predicted {float(scores[best]):g}, {_place(rank[best])}"]
        if conf[best] <= unsure_below:
            parts.append(f"the grader is among the least sure of it (confidence {conf[best]:.2f})")
        if chosen:
            parts.append(f"unlike the essays suggested before it (closest word overlap {sim_to_chosen[best]:.2f})")
        out.append(Suggestion(best, "; ".join(parts) + "."))
        chosen.append(best)
        sims = np.asarray((V @ V[best].T).todense()).ravel() if hasattr(V, "todense") else V @ V[best]
        sim_to_chosen = np.maximum(sim_to_chosen, sims)
    order_back = {i: r for r, i in enumerate(order)}
    return sorted(out, key=lambda s: order_back[s.index])
