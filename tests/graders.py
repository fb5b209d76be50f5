"""Grading through the one interface (workers/ml/grading/service.py) in tests: the default grader
on rubrics, the shipped ASAP graders on prompt ids, with the shared review flags and feedback."""
from __future__ import annotations

from functools import lru_cache

from workers.ml.grading.service import GradingService


@lru_cache(maxsize=None)
def service_for(grader) -> GradingService:
    return GradingService.over(grader.encoder, {"default": grader, "asap-": grader})


def grade(grader, texts, rubrics) -> list[dict]:
    """The default grader (or any grader keyed 'default') on texts with their rubrics."""
    return service_for(grader).grade_with("default", list(texts), list(rubrics))


def grade_asap(grader, texts, prompt_ids, emb=None, always_score: bool = False) -> list[dict]:
    """The shipped per-prompt graders on texts with their prompt ids ('1'..'8'), each on its own rubric
    (always_score: with the rubric setting that gives a score even where a flag makes it meaningless)."""
    svc = service_for(grader)
    pids = [str(p) for p in prompt_ids]
    if len(pids) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pids)} prompt ids")
    out: list = [None] * len(texts)
    for p in sorted(set(pids)):
        idx = [i for i, q in enumerate(pids) if q == p]
        sub = None if emb is None else emb[idx]
        rubric = {**grader.rubric(p), "always_score": True} if always_score else grader.rubric(p)
        for i, r in zip(idx, svc.grade_with(f"asap-{p}", [texts[i] for i in idx], [rubric] * len(idx), sub)):
            out[i] = r
    return out
