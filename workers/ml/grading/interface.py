"""The grader interface: one signature for every grader, and the contract's grading result.

    grader.score(requests) -> ModelScores      the model's part: scores, traits, confidence, doubt
    GradingService.grade(requests) -> [GradeResult | GradeFailure]   (service.py)

A grader only scores. What every result carries besides (review flags, the low-confidence reason,
feedback, the empty-essay rule) is added by `GradingService` in one place, for every grader alike,
and one essay that makes a grader raise fails alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence, TypedDict, runtime_checkable

import numpy as np

RESULT_KEYS = ("score", "traits", "confidence", "needs_review", "review_reasons", "feedback", "model_version")
FAR_FROM_TRAINING = "far from the essays the model was trained on"  # a fine-tuned version's own review reason
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")  # a word, as the text features count them


def is_empty(text: str | None) -> bool:
    """No word at all: such an essay gets no score, confidence 0 and the 'empty' flag (the scale's
    minimum where its rubric asks for a score anyway)."""
    return _WORD.search(text or "") is None


@dataclass(frozen=True)
class GradeRequest:
    """One essay to grade: its text, the job's rubric (the contract's shape: name, prompt, scale,
    traits) and the model id the job asked for ('default', 'asap-N', a fine-tuned version id)."""

    text: str
    rubric: dict
    model: str = "default"

    @property
    def prompt(self) -> str | None:
        return (self.rubric.get("prompt") or "").strip() or None

    @property
    def trait_names(self) -> list[str]:
        return [t["name"] for t in self.rubric.get("traits") or []]


class GradeResult(TypedDict):
    """The contract's grading result for one essay (shared/api-v1.md)."""

    score: float | None  # None: a score would be meaningless (review.WITHHOLD_TAGS); the reason comes first
    traits: dict[str, float | None]
    confidence: float
    needs_review: bool
    review_reasons: list[str]
    feedback: list[dict]
    model_version: str


@dataclass(frozen=True)
class GradeFailure:
    """An essay its grader could not score; the other essays of its batch are unaffected.
    final: no retry can help (the model id is unknown, its version was deleted)."""

    error: str
    final: bool = False


@dataclass
class ModelScores:
    """What a grader's model gives for a batch of requests, in their order, before the shared step.

    unsure: the model's own verdict that it is unsure of an essay (it becomes the low-confidence
    review reason). embeddings: the plain sentence embedding of each text, when the grader computed
    it (the review flags read it; the service embeds the texts itself otherwise). prompt_ids: the
    ASAP prompt each essay answers, for graders that know it (the per-prompt off-topic classifier).
    """

    scores: list[float]
    traits: list[dict[str, float]]
    confidence: list[float]
    unsure: list[bool]
    version: str
    embeddings: np.ndarray | None = None
    prompt_ids: list[str | None] | None = None
    prompt_emb: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: list[list[str]] | None = None  # the model's own extra review reasons
    details: list[dict] | None = None  # model-specific numbers evaluation reads (e.g. raw_confidence)


@runtime_checkable
class Grader(Protocol):
    """Every grader: the default one, the shipped ASAP ones, a fine-tuned version."""

    version: str

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        """Score a batch. emb: the texts' embeddings when the caller already has them (else the
        grader embeds them with the process's shared encoder, in one call for the batch)."""
        ...
