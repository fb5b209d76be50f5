"""The default grader: one rubric-agnostic model for any rubric.

MiniLM embedding + text features -> ridge heads trained on all ASAP prompts with scores
normalised to [0, 1] (train.py) -> mapped onto each rubric's own scale and step.

Confidence: the probability, under a normal error model, that the human score lies within
`max(step/2, range/10)` of the score given. Its spread combines the head's cross-validated
error and the disagreement of a 5-model bootstrap ensemble, so unusual essays get lower values.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from workers.grader import features as F

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOW_CONFIDENCE = 0.3
TRAIT_ALIASES = {
    "organisation": "organization", "structure": "organization", "grammar": "conventions", "mechanics": "conventions",
    "spelling": "conventions", "usage": "conventions", "fluency": "sentence_fluency", "sentences": "sentence_fluency",
    "vocabulary": "word_choice", "diction": "word_choice", "ideas": "content", "development": "content",
    "evidence": "content", "argument": "content", "focus": "prompt_adherence", "task": "prompt_adherence",
    "voice": "language", "style": "language",
}


def _norm_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def map_to_scale(x: float, scale: dict) -> float:
    """A normalised prediction in [0, 1] onto a scale's min/max/step (clipped, rounded to a step)."""
    lo, hi, step = float(scale["min"]), float(scale["max"]), float(scale.get("step") or 1.0)
    points = round((hi - lo) / step)
    k = int(round(min(max(x, 0.0), 1.0) * points))
    value = lo + k * step
    return float(round(value, 6))


def confidence(mean: float, sd: float, scale: dict) -> float:
    lo, hi, step = float(scale["min"]), float(scale["max"]), float(scale.get("step") or 1.0)
    rng = hi - lo
    given = map_to_scale(mean, scale)
    tol = max(step / 2.0, rng / 10.0)
    mu, sigma = lo + min(max(mean, 0.0), 1.0) * rng, max(sd * rng, 1e-6)
    z1, z2 = (given - tol - mu) / sigma, (given + tol - mu) / sigma
    p = 0.5 * (math.erf(z2 / math.sqrt(2)) - math.erf(z1 / math.sqrt(2)))
    return float(round(min(max(p, 0.0), 1.0), 3))


class DefaultGrader:
    def __init__(self, encoder, head: dict, meta: dict, digest: str):
        self.encoder = encoder
        self.W_hol = head["W_hol"].astype(np.float64)
        self.W_traits = head["W_traits"].astype(np.float64)
        self.feat_mean, self.feat_std = head["feat_mean"], head["feat_std"]
        self.resid = float(head["resid_std"][0])
        self.meta = meta
        self.trait_index = {n: i for i, n in enumerate(meta["trait_names"])}
        self.version = f"{meta['version']}+{digest[:8]}"
        self.vocab = encoder.tokenizer.get_vocab()

    @classmethod
    def load(cls, encoder=None, head_path: str | None = None) -> "DefaultGrader":
        from workers.grader.encoder import Encoder

        path = Path(head_path) if head_path else ARTIFACTS / "default_head.npz"
        raw = path.read_bytes()
        head = dict(np.load(path))
        meta = json.loads(path.with_suffix(".json").read_text())
        return cls(encoder or Encoder(max_length=meta.get("max_length", 512)), head, meta,
                   hashlib.sha256(raw).hexdigest())

    def warmup(self) -> None:
        out = self.grade(["A short warm-up essay about why reading every day helps students learn."],
                         [{"name": "warm-up", "scale": {"min": 1, "max": 6, "step": 1}}])
        if len(out) != 1:
            raise RuntimeError("grader warm-up failed")

    def _trait_column(self, name: str) -> int | None:
        n = _norm_name(name)
        n = TRAIT_ALIASES.get(n, n)
        return self.trait_index.get(n)

    def grade(self, texts: list[str], rubrics: list[dict]) -> list[dict]:
        if not texts:
            return []
        prompts = sorted({(r.get("prompt") or "").strip() for r in rubrics} - {""})
        emb_all = self.encoder.embed(list(texts) + prompts)  # one encoder call for the whole batch
        return self.score_embedded(texts, rubrics, emb_all[: len(texts)], dict(zip(prompts, emb_all[len(texts):])))

    def score_embedded(self, texts: list[str], rubrics: list[dict], emb: np.ndarray,
                       prompt_emb: dict[str, np.ndarray]) -> list[dict]:
        """The head and the rubric mapping, given the embeddings of the texts and of the prompts."""
        st = [F.stats(t) for t in texts]
        feats = (np.array([F.feature_vector(s) for s in st]) - self.feat_mean) / self.feat_std
        X = np.hstack([emb, feats, np.ones((len(texts), 1))])
        hol = X @ self.W_hol.T  # (N, K)
        mean, spread = hol.mean(1), hol.std(1)
        traits = X @ self.W_traits.T  # (N, T)
        out = []
        for i, (text, rubric, s) in enumerate(zip(texts, rubrics, st)):
            scale = rubric["scale"]
            sd = math.sqrt(self.resid ** 2 + float(spread[i]) ** 2)
            conf = confidence(float(mean[i]), sd, scale)
            trait_scores = {}
            for t in rubric.get("traits") or []:
                col = self._trait_column(t["name"])
                val = float(traits[i, col]) if col is not None else float(mean[i])
                trait_scores[t["name"]] = map_to_scale(val, t.get("scale") or scale)
            reasons = F.review_reasons(s, self._vocab_share(s.words))
            prompt = (rubric.get("prompt") or "").strip()
            if prompt and s.n_words >= 20:
                sim = float(emb[i] @ prompt_emb[prompt])
                if sim < self.meta["offtopic_threshold"]:
                    reasons.append(f"off-topic: the essay seems unrelated to the prompt (similarity {sim:.2f})")
            if conf < LOW_CONFIDENCE and s.n_words > 0:
                reasons.append(f"low confidence: {conf:.2f}")
            out.append({
                "score": map_to_scale(float(mean[i]), scale),
                "traits": trait_scores,
                "confidence": conf,
                "needs_review": bool(reasons),
                "review_reasons": reasons,
                "feedback": F.feedback(s, [t["name"] for t in rubric.get("traits") or []]),
                "model_version": self.version,
            })
        return out

    def _vocab_share(self, words: list[str]) -> float:
        if not words:
            return 0.0
        return sum(1 for w in words if w.lower() in self.vocab) / len(words)
