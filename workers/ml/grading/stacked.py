"""A fine-tuned version of method `stack` (trained by workers/ml/training/stack.py), served like any grader.

    g = StackedGrader("mdl_...", artifacts_dir, encoder=shared_encoder)
    g.score([GradeRequest(text, rubric, "mdl_..."), ...]) -> ModelScores

The shipped ASAP graders' recipe (asap.predict_prompt) on the rubric's point indices: one pass of the
process's shared encoder gives every hidden state (what the model reads) and the last layer (what the
review flags read). Scores come back on the version's own rubric scales; a trait that had too few
scored examples to get a model of its own follows the holistic score's position on its scale.
The model's own doubts: confidence under its low-confidence cut (the 2nd percentile of its
out-of-fold confidence), and an essay far from its training essays.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from workers.ml.grading import asap as A
from workers.ml.grading.interface import FAR_FROM_TRAINING, GradeRequest, ModelScores
from workers.ml.scales import rubric_scales


def scaled(emb: np.ndarray, factor: float) -> np.ndarray:
    """The every-hidden-state embedding as the models read it (asap.embedding_scale)."""
    return np.asarray(emb, dtype=np.float32) * np.float32(factor)


def plain(emb: np.ndarray, dim: int) -> np.ndarray:
    """The last layer's (L2-normalised) embedding inside the every-hidden-state one."""
    return np.asarray(emb)[:, -dim:]


def trait_confidence_inputs(pred: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """What a trait's confidence model sees: distance to the nearest rounding boundary, position."""
    d = A.threshold_distance(pred, None, lo, hi)
    pos = np.clip((np.asarray(pred, dtype=float) - lo) / max(hi - lo, 1), 0, 1)
    return np.column_stack([np.minimum(d, 1.0), pos, pos ** 2])


def predict(bundle: dict, texts: list[str], emb: np.ndarray, rubric: dict, emb_scale: float) -> dict:
    """Scores on the rubric's own scales: {"score", "pred" (continuous, in points), "confidence",
    "traits": {t: scores}, "trait_confidence": {t: ...}}, every trait of the rubric included."""
    model, tconf_models = bundle["model"], bundle.get("trait_confidence") or {}
    main, traits = rubric_scales(rubric)
    r = A.predict_prompt(model, texts, scaled(emb, emb_scale))
    out_traits, tconf = {}, {}
    frac = r["pred"] / max(main.n - 1, 1)
    for t, sc in traits:
        if t in r["traits"]:
            idx = r["traits"][t]
            tconf[t] = A._logistic(tconf_models.get(t), trait_confidence_inputs(r["trait_pred"][t], 0, sc.n - 1))
        else:  # too few scored examples of this trait to fit it: it follows the holistic score
            idx = np.clip(np.rint(frac * (sc.n - 1)), 0, sc.n - 1).astype(int)
            tconf[t] = np.full(len(texts), 0.5)
        out_traits[t] = sc.lo + idx * sc.step
    return {"score": main.lo + r["score"] * main.step, "pred": r["pred"], "confidence": r["confidence"],
            "traits": out_traits, "trait_confidence": tconf}


class StackedGrader:
    def __init__(self, model_id: str, path: str | Path, encoder=None):
        import joblib

        from workers.ml.encoder import AllLayers, Encoder

        path = Path(path)
        self.model_id = self.version = model_id
        self.conf = json.loads((path / "config.json").read_text())
        self.rubric = self.conf["rubric"]
        spec = self.conf["embedding"]
        max_length = int(self.conf.get("max_length", 512))
        from workers.ml.variants import variant_of

        fitted = self.conf.get("encoder_variant", "full")  # served only on the variant it was fitted on
        if encoder is None or encoder.max_length != max_length or variant_of(encoder) != fitted:
            encoder = Encoder(max_length=max_length, variant=fitted)
        if encoder.n_states != spec["n_states"] or encoder.dim != spec["dim"]:
            raise ValueError(f"model {model_id} reads {spec['n_states']} hidden states of {spec['dim']} dimensions; "
                             f"the encoder has {encoder.n_states} of {encoder.dim}")
        self.encoder = encoder
        self.all_layers = True  # reads every hidden state: GradingService shares one pass with the ASAP graders
        self.embedder = AllLayers(encoder)
        self.emb_scale = A.embedding_scale(spec["weight"], spec["n_states"])
        self.bundle = joblib.load(path / "stack.joblib")  # the store verified every file's checksum first
        self.centroid = np.asarray(self.conf["centroid"], dtype=np.float64)
        self.low_confidence = float(self.conf["low_confidence"])

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        """emb: self.embedder.embed(texts) when the caller has it; else one encoder pass for the batch."""
        texts = [r.text for r in requests]
        if not texts:
            return ModelScores([], [], [], [], self.version)
        emb = self.embedder.embed(texts) if emb is None else np.asarray(emb)
        if emb.shape[1] != self.embedder.dim:
            raise ValueError(f"emb has {emb.shape[1]} columns; model {self.model_id} reads {self.embedder.dim}")
        p = predict(self.bundle, texts, emb, self.rubric, self.emb_scale)
        flat = plain(emb, self.encoder.dim)
        far = flat @ self.centroid < float(self.conf["ood_threshold"])
        confs = [round(float(np.clip(c, 0.0, 1.0)), 3) for c in p["confidence"]]
        traits = [{t: float(v[i]) for t, v in p["traits"].items()} for i in range(len(texts))]
        return ModelScores([float(s) for s in p["score"]], traits, confs, [c < self.low_confidence for c in confs],
                           self.version, flat, None, {}, [[FAR_FROM_TRAINING] if f else [] for f in far])
