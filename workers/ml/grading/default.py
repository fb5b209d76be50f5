"""The default grader: one rubric-agnostic model for any rubric.

    texts --(ONE Encoder.embed call per batch)--> MiniLM embeddings
          + 38 rater-style text features (features.rater_features) --> ridge heads (train.py)
          --> raw normalised prediction --> spread law for the rubric's scale: c + k(points) (raw - c)
          --> each rubric's own min/max/step (map_to_scale)

Heads were fitted on all 8 ASAP prompts pooled, every score normalised to [0, 1] with its
prompt's range: a 5-member bootstrap ensemble for the holistic score and one ridge per ASAP trait.
The embedding's topic directions (the span of the per-prompt mean embeddings) are projected out of
every head's weights, so a new prompt's topic does not move its scores. k(points) = exp(a log(points)
+ b), points = (max - min) / step clipped to [3, 60], k bounded to [0.5, 2], widens the predictions on coarse scales (fitted
in train.py; the ridge's shrinkage and a coarse scale's wider normalised spread). Each trait has its own
c and law, applied with the trait's scale.

Confidence (documented, not a calibrated probability of being "right" in the abstract): under a
normal error model N(mu, sd) around the ensemble mean, the probability that the human score lies
within `max(step/2, range/10)` of the score we give. sd = sqrt(e^2 + ensemble_spread^2), where e
is a per-essay error estimate (a ridge fitted in train.py on the out-of-fold absolute error of
the holistic recipe on each prompt left out of training, i.e. the error on an unseen prompt, times
sqrt(pi/2)) and ensemble_spread (times k) is the disagreement of the 5 bootstrap
members. It falls for essays like those the head got wrong in cross-validation, when the members
disagree, and when the prediction sits near a rounding boundary of a fine-stepped scale.

Low confidence (a `needs_review` reason): the essay's error sd in normalised units, sqrt(e^2 +
ensemble_spread^2) before the spread law, is above meta["low_confidence_sd"], the 98th percentile of that
sd over the training essays (train.py): about 2 % of essays like the training ones, the ones the head is
least sure of, on any scale. Not the confidence itself: on a 1-6 scale P(exact) sits near 0.5 for every
essay and under 0.3 wherever a prediction falls between two scores, which flagged most of a class.

Features: the head's meta names the feature set it was trained with ("feature_set", features.FEATURE_SETS;
the shipped head: rater-v1), and grading computes that set.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from workers.ml.grading import features as F
from workers.ml.grading.interface import RESULT_KEYS, GradeRequest, ModelScores
from workers.ml.scales import scale_points, spread_factor

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HEAD_FILE = "minilm_head.npz"
# rubric trait name (normalised) -> trained ASAP trait; exact names are matched before this table
TRAIT_SYNONYMS = {
    "organisation": "organization", "structure": "organization", "coherence": "organization",
    "grammar": "conventions", "mechanics": "conventions", "spelling": "conventions", "punctuation": "conventions",
    "usage": "conventions", "fluency": "sentence_fluency", "sentences": "sentence_fluency",
    "sentence_structure": "sentence_fluency", "vocabulary": "word_choice", "diction": "word_choice",
    "development": "content", "evidence": "content", "argument": "content", "support": "content",
    "ideas_and_content": "ideas_content", "focus": "prompt_adherence", "task": "prompt_adherence",
    "relevance": "prompt_adherence", "tone": "voice", "narrative": "narrativity", "storytelling": "narrativity",
}


def norm_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (name or "").strip().lower()).strip("_")


def map_to_scale(x: float, scale: dict) -> float:
    """A normalised prediction (0 = min, 1 = max) onto a scale: clipped, rounded to a whole step."""
    lo, hi = float(scale["min"]), float(scale["max"])
    step = float(scale.get("step") or 1.0)
    if not hi > lo or step <= 0:
        return lo
    x = min(max(float(x), 0.0), 1.0)
    k = round(x * (hi - lo) / step)
    k = min(k, math.floor((hi - lo) / step + 1e-9))  # a step that does not divide the range: stay <= max
    return float(round(lo + k * step, 6))


def confidence(mean: float, sd: float, scale: dict) -> float:
    lo, hi = float(scale["min"]), float(scale["max"])
    step = float(scale.get("step") or 1.0)
    rng = max(hi - lo, 1e-9)
    given = map_to_scale(mean, scale)
    tol = max(step / 2.0, rng / 10.0)
    mu, sigma = lo + min(max(mean, 0.0), 1.0) * rng, max(sd * rng, 1e-9)
    z1, z2 = (given - tol - mu) / sigma, (given + tol - mu) / sigma
    p = 0.5 * (math.erf(z2 / math.sqrt(2)) - math.erf(z1 / math.sqrt(2)))
    return float(round(min(max(p, 0.0), 1.0), 3))


def error_model_sd(X: np.ndarray, W_err: np.ndarray) -> np.ndarray:
    """Per-essay sd of the normalised error: the error model's expected |error| * sqrt(pi/2)."""
    return np.clip(X @ W_err, 0.02, None) * math.sqrt(math.pi / 2)


def essay_sd(err_sd: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The normalised error sd of each essay before the spread law: error model and ensemble spread."""
    return np.sqrt(np.asarray(err_sd) ** 2 + np.asarray(spread) ** 2)


class DefaultGrader:
    def __init__(self, encoder, head: dict, meta: dict, digest: str):
        self.encoder = encoder
        self.W_hol = np.asarray(head["W_hol"], dtype=np.float64)        # (K, D+1) bootstrap members
        self.W_traits = np.asarray(head["W_traits"], dtype=np.float64)  # (T, D+1)
        self.feat_mean = np.asarray(head["feat_mean"], dtype=np.float64)
        self.feat_std = np.asarray(head["feat_std"], dtype=np.float64)
        # standardised features are clipped to the training essays' range (v3 heads): a text far outside
        # it (no punctuation: one 300-word "sentence") must not extrapolate a linear head
        self.feat_lo = np.asarray(head["feat_lo"], dtype=np.float64) if "feat_lo" in head else None
        self.feat_hi = np.asarray(head["feat_hi"], dtype=np.float64) if "feat_hi" in head else None
        self.W_err = np.asarray(head["W_err"], dtype=np.float64)
        self.hol_c = float(np.asarray(head["hol_c"]).ravel()[0])
        self.hol_law = np.asarray(head["hol_law"], dtype=np.float64)
        self.trait_c = np.asarray(head["trait_c"], dtype=np.float64)
        self.trait_law = np.asarray(head["trait_law"], dtype=np.float64)
        self.feature_set = meta.get("feature_set")
        if self.feature_set not in F.FEATURE_SETS:
            raise ValueError(f"head trained with feature set {self.feature_set!r}; known: {', '.join(F.FEATURE_SETS)}")
        self.meta = meta
        self.serve_paragraphs = meta.get("serve_paragraphs")  # v3: every essay graded as one paragraph
        self.low_confidence_sd = float(meta["low_confidence_sd"])
        self.trait_names = list(meta["trait_names"])
        self.trait_index = {n: i for i, n in enumerate(self.trait_names)}
        self.version = f"{meta['version']}+{digest[:8]}"
        self.vocab = set(encoder.tokenizer.get_vocab())

    @classmethod
    def load(cls, encoder=None, head_path: str | None = None) -> DefaultGrader:
        from workers.ml.variants import check_fitted_on, heads_dir, variant_of

        path = Path(head_path) if head_path else heads_dir(variant_of(encoder)) / HEAD_FILE
        raw = path.read_bytes()
        with np.load(path) as z:
            head = {k: z[k] for k in z.files}
        meta = json.loads(path.with_suffix(".json").read_text())
        if encoder is None:
            from workers.ml.encoder import Encoder

            encoder = Encoder(max_length=meta.get("max_length", 512))
        check_fitted_on(meta, encoder, f"default head {path}")
        if encoder.dim + len(meta["feature_names"]) + 1 != head["W_hol"].shape[1]:
            raise ValueError(f"head {path} expects {head['W_hol'].shape[1] - 1 - len(meta['feature_names'])}-d "
                             f"embeddings, encoder {encoder.name} gives {encoder.dim}")
        return cls(encoder, head, meta, hashlib.sha256(raw).hexdigest())

    def warmup(self) -> None:
        """One tiny batch through the whole path; raises (e.g. out of memory) instead of limping on."""
        out = self.grade(["Reading every day helps students learn new words and ideas. " * 3],
                         [{"name": "warm-up", "scale": {"min": 1, "max": 6, "step": 1}}])
        if len(out) != 1 or not set(RESULT_KEYS) <= set(out[0]) or not math.isfinite(out[0]["score"]):
            raise RuntimeError(f"grader warm-up failed: {out!r}")

    def trait_column(self, name: str) -> int | None:
        """The trained trait a rubric trait name maps to (None: use the holistic prediction)."""
        n = norm_name(name)
        for cand in (n, TRAIT_SYNONYMS.get(n)):
            if cand in self.trait_index:
                return self.trait_index[cand]
        for tok in n.split("_"):  # "Voice and tone" -> voice, "Grammar & usage" -> conventions
            cand = tok if tok in self.trait_index else TRAIT_SYNONYMS.get(tok)
            if cand in self.trait_index:
                return self.trait_index[cand]
        return None

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        """The head on a batch. emb: the texts' plain embeddings when the caller has them; else one
        encoder call embeds the texts together with the batch's distinct prompts."""
        texts = [r.text for r in requests]
        prompts = sorted({r.prompt for r in requests} - {None})
        prompt_emb: dict[str, np.ndarray] = {}
        if emb is None and texts:
            emb_all = self.encoder.embed(list(texts) + prompts)  # one encoder call for the whole batch
            emb, prompt_emb = emb_all[: len(texts)], dict(zip(prompts, emb_all[len(texts):]))
        if not texts:
            return ModelScores([], [], [], [], self.version, np.zeros((0, self.encoder.dim)))
        return self.score_embedded(requests, emb, prompt_emb)

    def inputs(self, texts: list[str], emb: np.ndarray, st=None) -> np.ndarray:
        """[embedding, standardised features, 1]: what every head multiplies."""
        st = st if st is not None else [F.stats(t) for t in texts]
        raw = F.with_paragraphs(F.feature_matrix(self.feature_set, texts, st), self.serve_paragraphs)
        feats = (raw - self.feat_mean) / self.feat_std
        if self.feat_lo is not None:
            feats = np.clip(feats, self.feat_lo, self.feat_hi)
        return np.hstack([np.asarray(emb, dtype=np.float64).reshape(len(texts), -1), feats, np.ones((len(texts), 1))])

    @staticmethod
    def spread_factor(law, scale: dict) -> float:
        """k of the spread law for a scale."""
        return spread_factor(law, scale_points(scale))

    def predict_normalised(self, texts: list[str], emb: np.ndarray, st=None, X: np.ndarray | None = None):
        """(holistic ensemble predictions (N, K), trait predictions (N, T)), raw (before the spread law)."""
        X = X if X is not None else self.inputs(texts, emb, st)
        return X @ self.W_hol.T, X @ self.W_traits.T

    def error_sd(self, texts: list[str], emb: np.ndarray, st=None, X: np.ndarray | None = None) -> np.ndarray:
        """Per-essay sd of the normalised error (error_model_sd)."""
        X = X if X is not None else self.inputs(texts, emb, st)
        return error_model_sd(X, self.W_err)

    def unsure(self, err_sd: np.ndarray, raw_spread: np.ndarray) -> np.ndarray:
        """Per essay: is its normalised error sd above the head's low-confidence cut?"""
        return essay_sd(err_sd, raw_spread) > self.low_confidence_sd

    def normalised(self, requests: Sequence[GradeRequest], emb: np.ndarray):
        """The head's predictions before rounding, per request: (holistic mean on the normalised scale after
        its rubric's spread law, its error sd, {trait: normalised value}, unsure). calibration.py reads these."""
        texts = [r.text for r in requests]
        st = [F.stats(t) for t in texts]
        X = self.inputs(texts, emb, st)
        hol, traits = self.predict_normalised(texts, emb, st, X)
        raw_mean, raw_spread = hol.mean(1), hol.std(1)
        err_sd = self.error_sd(texts, emb, st, X)
        unsure = self.unsure(err_sd, raw_spread)
        means, sds, trait_rows = np.zeros(len(texts)), np.zeros(len(texts)), []
        for i, req in enumerate(requests):
            scale = req.rubric["scale"]
            k = self.spread_factor(self.hol_law, scale)
            means[i] = self.hol_c + k * (float(raw_mean[i]) - self.hol_c)
            sds[i] = math.sqrt(float(err_sd[i]) ** 2 + (k * float(raw_spread[i])) ** 2)
            vals = {}
            for t in req.rubric.get("traits") or []:
                tscale = t.get("scale") or scale
                col = self.trait_column(t["name"])
                if col is not None:
                    kt = self.spread_factor(self.trait_law[col], tscale)
                    vals[t["name"]] = float(self.trait_c[col] + kt * (traits[i, col] - self.trait_c[col]))
                else:  # the holistic prediction, with the law for this trait's scale
                    vals[t["name"]] = self.hol_c + self.spread_factor(self.hol_law, tscale) * (float(raw_mean[i]) - self.hol_c)
            trait_rows.append(vals)
        return means, sds, trait_rows, unsure

    def score_embedded(self, requests: Sequence[GradeRequest], emb: np.ndarray,
                       prompt_emb: dict[str, np.ndarray] | None = None) -> ModelScores:
        """The head on given embeddings of the texts (and of the prompts)."""
        means, sds, trait_vals, unsure = self.normalised(requests, emb)
        scores, trait_rows, confs = [], [], []
        for i, req in enumerate(requests):
            scale = req.rubric["scale"]
            tscales = {t["name"]: t.get("scale") or scale for t in req.rubric.get("traits") or []}
            scores.append(map_to_scale(means[i], scale))
            trait_rows.append({n: map_to_scale(v, tscales[n]) for n, v in trait_vals[i].items()})
            confs.append(confidence(float(means[i]), float(sds[i]), scale))
        return ModelScores(scores, trait_rows, confs, [bool(u) for u in unsure], self.version, np.asarray(emb), None,
                           dict(prompt_emb or {}))
