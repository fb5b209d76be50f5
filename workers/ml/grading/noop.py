"""The benchmark-only grader `noop` (EDUQ_BENCH_MODE=1 on the API and the workers): a valid result on
the rubric's scale without any model, so `make bench-platform` measures the platform alone (HTTP,
Postgres, the broker, claims and writes). It gives the contract's results itself: no review flags, no
feedback, nothing computed per essay. Never registered unless bench mode is on."""
from __future__ import annotations

from typing import Sequence

from workers.ml.grading.interface import GradeRequest, GradeResult, ModelScores
from workers.ml.scales import rubric_scales

VERSION = "noop"


def middle(scale) -> float:
    """The scale's middle point (on its grid)."""
    return float(scale.lo + (scale.n - 1) // 2 * scale.step)


class NoopGrader:
    version = VERSION

    def score(self, requests: Sequence[GradeRequest], emb=None) -> ModelScores:
        rows = [self._one(r) for r in requests]
        return ModelScores([r["score"] for r in rows], [r["traits"] for r in rows], [1.0] * len(rows),
                           [False] * len(rows), VERSION)

    def results(self, requests: Sequence[GradeRequest]) -> list[GradeResult]:
        """The finished results (GradingService hands these back as they are: no shared step)."""
        return [self._one(r) for r in requests]

    @staticmethod
    def _one(req: GradeRequest) -> GradeResult:
        main, traits = rubric_scales(req.rubric)
        return {"score": middle(main), "traits": {t: middle(sc) for t, sc in traits}, "confidence": 1.0,
                "needs_review": False, "review_reasons": [], "feedback": [], "model_version": VERSION}
