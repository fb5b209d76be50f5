"""CalibratedGrader: the default grader taught by a teacher's scored examples (model id 'default@cal_…').

    g = CalibratedGrader(default, asap, recipe, "cal_…", rubric, examples)
    g.score([GradeRequest(text, rubric, "default@cal_…"), ...]) -> ModelScores

The examples ({"text", "score", "traits"} on the rubric's scales) are read once, when the grader is built:
one encoder pass gives every hidden state (the kernel's Z, and the plain embedding the default head and
the review flags read as its last block), the default head gives p, the eight ASAP graders give zm, and a
Calibration (calibration.py) is fitted for the holistic score and for each trait the teacher scored on at
least one example. A trait nobody scored keeps the default grader's value. Grading a batch is then the
same pass over its texts and one kernel product per target: an essay's score depends only on its text,
the rubric and the examples.

Confidence: the probability that the teacher's score lies within the tolerance of the score given
(exact on scales of up to 12 steps) under the calibration's predictive mean and sd (calibration.py:
scale_agreement); its ECE per number of examples is in docs/grading.md. The default head's own
low-confidence verdict (an essay unlike its training essays) still flags the result.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from workers.ml.grading.calibration import Calibration, Recipe, normalise, scale_agreement
from workers.ml.grading.interface import GradeRequest, ModelScores


class CalibratedGrader:
    all_layers = True  # reads every hidden state of the shared encoder (GradingService._shared_pass)

    def __init__(self, default, asap, recipe: Recipe, calibration_id: str, rubric: dict, examples: list[dict]):
        from workers.ml.encoder import AllLayers

        self.default, self.asap, self.recipe = default, asap, recipe
        self.encoder = default.encoder
        self.embedder = AllLayers(self.encoder)
        self.calibration_id = calibration_id
        self.rubric = rubric
        scale = rubric["scale"]
        examples = [e for e in examples if (e.get("text") or "").strip()]
        self.k = sum(1 for e in examples if e.get("score") is not None)
        self.version = f"{default.version}+{recipe.version}:{calibration_id}(k={self.k})"
        texts = [e["text"] for e in examples]
        p, traits, zm, Z, _plain, _unsure = self._inputs(texts, [rubric] * len(texts))
        self.fits: dict[str | None, Calibration] = {}
        have = np.array([e.get("score") is not None for e in examples], dtype=bool)
        y = np.array([normalise(e["score"], scale) if e.get("score") is not None else np.nan for e in examples])
        self.fits[None] = self._fit(p[have], zm[have], Z[have], y[have])
        for t in rubric.get("traits") or []:
            name, tscale = t["name"], t.get("scale") or scale
            rows = [i for i, e in enumerate(examples) if (e.get("traits") or {}).get(name) is not None]
            if not rows:
                continue
            tp = np.array([traits[i][name] for i in rows])
            ty = np.array([normalise(examples[i]["traits"][name], tscale) for i in rows])
            self.fits[name] = self._fit(tp, zm[rows], Z[rows], ty)

    def _fit(self, p, zm, Z, y) -> Calibration:
        k = len(y)
        return Calibration.fit(self.recipe, self.recipe.base(p, zm, k), Z, y)

    def _inputs(self, texts: list[str], rubrics: list[dict], emb_all: np.ndarray | None = None):
        """(p, trait values, zm, Z, plain embedding, the default head's unsure verdict) of the texts."""
        if emb_all is None:
            emb_all = self.embedder.embed(texts) if texts else np.zeros((0, self.embedder.dim))
        emb_all = np.asarray(emb_all)
        plain = emb_all[:, -self.encoder.dim:]
        reqs = [GradeRequest(t, r) for t, r in zip(texts, rubrics)]
        if not texts:
            return np.zeros(0), [], np.zeros(0), np.zeros((0, emb_all.shape[1])), plain, np.zeros(0, dtype=bool)
        p, _sd, traits, unsure = self.default.normalised(reqs, plain)
        zm = self.asap.mean_prediction(texts, emb_all)
        Z = emb_all / math.sqrt(self.encoder.n_states)
        return p, traits, zm, Z, plain, unsure

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        """emb: every hidden state of the texts (self.embedder.embed) when the caller has it."""
        texts = [r.text for r in requests]
        rubrics = [r.rubric for r in requests]
        p, traits, zm, Z, plain, unsure = self._inputs(texts, rubrics, emb)
        if not texts:
            return ModelScores([], [], [], [], self.version, plain)
        scores, confs, trait_rows = [], [], [{} for _ in texts]
        hol = self.fits[None]
        mean, sd = hol.predict(self.recipe.base(p, zm, hol.k), Z)
        for i, req in enumerate(requests):
            given, conf = scale_agreement(mean[i:i + 1], sd[i:i + 1], req.rubric["scale"])
            scores.append(float(given[0]))
            confs.append(float(conf[0]))
        for t in self.rubric.get("traits") or []:
            name = t["name"]
            tp = np.array([row.get(name, np.nan) for row in traits])
            fit = self.fits.get(name)
            tmean = tp if fit is None else fit.predict(self.recipe.base(tp, zm, fit.k), Z)[0]
            for i, req in enumerate(requests):
                tscale = next((x.get("scale") for x in req.rubric.get("traits") or [] if x["name"] == name), None)
                given, _ = scale_agreement(tmean[i:i + 1], np.ones(1), tscale or req.rubric["scale"])
                trait_rows[i][name] = float(given[0])
        prompts = sorted({r.prompt for r in requests} - {None})
        prompt_emb = dict(zip(prompts, self.encoder.embed(prompts))) if prompts else {}
        return ModelScores(scores, trait_rows, confs, [bool(u) for u in unsure], self.version, plain,
                           prompt_emb=prompt_emb, details=[{"calibrated_mean": float(m), "calibrated_sd": float(s)}
                                                           for m, s in zip(mean, sd)])
