"""Fine-tune method `stack`: the shipped ASAP graders' recipe (asap_stack.train_prompt) for any rubric.

    run = fit(examples, rubric, embeddings, train_idx, seed=13, log=..., should_stop=...)
    metrics = evaluate(run, examples, rubric, embeddings, val_idx)
    save(run, rubric, out_dir, meta)            # served by workers/ml/grading/stacked.py

Any scale works because the recipe runs on point indices: a 1-5 scale by half points is the integer
scale 0..8, 0-60 is 0..60, and each trait has its own. Per scale (holistic and every trait with at
least asap_stack.MIN_TRAIT_EXAMPLES scores; one with fewer follows the holistic score):

  stage 1  ridges on hashed n-grams and on [every hidden state of MiniLM, rater-v1 features]
  stage 2  gradient boosting + a ridge (holistic; traits: the ridge on the holistic stage-1 outputs
           plus their own embedding ridge), blended
  bag      the holistic score averages 3 fits on 3 splits into folds
  rounding each prediction stretched to the training scores' mean and sd, then plain rounding
  confidence  P(human within tolerance of the given score): a logistic model on out-of-fold
           predictions (holistic, and per trait for the validation report); the low-confidence cut
           is the 2nd percentile of the out-of-fold confidence

Every choice inside (ridge penalties, the stage-2 blend, the stretch, the confidence model) is made by
K-fold cross-validation on the job's training split alone; the validation split is only predicted,
reported and gated on (app/lifecycle/training.py).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.ml import stats
from workers.ml.grading import asap as A
from workers.ml.grading.stacked import plain, predict, scaled, trait_confidence_inputs
from workers.ml.scales import rubric_scales
from workers.ml.training import asap_stack as S

FORMAT = 1
VERSION = "stack-v1"
FOLDS = 5
LOW_CONFIDENCE_QUANTILE = 0.02


@dataclass
class StackRun:
    model: dict  # asap_stack's per-scale model on point indices (its "traits" keyed by trait name)
    cv: dict  # the cross-validation figures on the training split
    low_confidence: float
    trait_confidence: dict  # trait -> logistic model of P(exact hit | distance, position)
    centroid: np.ndarray  # unit mean of the training essays' plain (last-layer) embeddings
    ood_threshold: float  # 1st percentile of their cosine to the centroid
    seconds: float

    def bundle(self) -> dict:
        """What stack.joblib holds and the grader reads."""
        return {"model": self.model, "trait_confidence": self.trait_confidence}


def index_rows(examples: list[dict], rubric: dict) -> tuple[list[dict], dict]:
    """Scores as point indices, and the recipe's integer scales {"score": [0, n-1], "traits": {t: [0, n-1]}}."""
    main, traits = rubric_scales(rubric)
    rows = []
    for e in examples:
        given = e.get("traits") or {}
        rows.append({"score": int(main.index(e["score"])),
                     "traits": {t: int(sc.index(given[t])) for t, sc in traits if given.get(t) is not None}})
    return rows, {"score": [0, main.n - 1], "traits": {t: [0, sc.n - 1] for t, sc in traits}}


def fit(examples: list[dict], rubric: dict, emb: np.ndarray, train_idx: np.ndarray, n_states: int, dim: int,
        seed: int = 13, log=None, should_stop=None, report=None) -> StackRun:
    """The stacked recipe on the training split (emb: every hidden state, unscaled, for every example)."""
    from threadpoolctl import threadpool_limits

    t0 = time.time()
    log = log or (lambda *_: None)
    tr = np.asarray(train_idx, dtype=int)
    rows, rub = index_rows([examples[i] for i in tr], rubric)
    texts = [examples[i]["text"] for i in tr]
    if report:
        report({"stage": "training", "step": "features"})
    feats = A.feature_matrix(texts)
    Xng = A.ngram_matrix(texts)
    if report:
        report({"stage": "training", "step": "stacking", "traits": len(rub["traits"])})
    # gradient boosting's OpenMP threads crawl on a busy 2-core machine (asap_stack.main): one thread
    with threadpool_limits(limits=1, user_api="openmp"):
        Ztr = scaled(emb[tr], A.embedding_scale(S.EMB_WEIGHT, n_states))
        model, info, oof = S.train_prompt("0", rows, Ztr, feats, Xng, rub, FOLDS, log, seed=seed, should_stop=should_stop)
    lo, hi = model["range"]
    cut = float(np.floor(np.quantile(np.round(oof["conf"], 3), LOW_CONFIDENCE_QUANTILE) * 1000) / 1000)
    tconf, tcv = {}, {}
    for t, (sel, pred, yt) in oof["traits"].items():
        tlo, thi = rub["traits"][t]
        given = A.apply_thresholds(pred, None, tlo, thi)
        hit = (np.abs(given - yt) <= A.tolerance(tlo, thi)).astype(int)
        cx = trait_confidence_inputs(pred, tlo, thi)
        tconf[t] = S.fit_confidence(cx, hit)
        c = A._logistic(tconf[t], cx)
        tcv[t] = {"cv_qwk": info["traits"][t]["cv_qwk"], "oof_ece": round(stats.ece(c, hit), 4), "n": int(len(sel))}
    skipped = sorted(set(rub["traits"]) - set(model["traits"]))
    p = plain(emb[tr], dim).astype(np.float64)
    centroid = p.mean(0)
    centroid /= np.linalg.norm(centroid) + 1e-12
    cv = {"folds": FOLDS, "holistic": {"cv_qwk": info["cv_qwk"], "oof_ece": info["oof_ece"],
                                       "oof_agreement": info["oof_agreement"], "blend": info["blend"],
                                       "alpha_ngram": info["alpha_ngram"], "alpha_emb": info["alpha_emb"],
                                       "members_cv_qwk": info["members_cv_qwk"]},
          "traits": tcv, "traits_following_holistic": skipped, "range_points": [lo, hi]}
    return StackRun(model, cv, cut, tconf, centroid, float(np.quantile(p @ centroid, 0.01)), time.time() - t0)


def evaluate(run: StackRun, examples: list[dict], rubric: dict, emb: np.ndarray, val_idx: np.ndarray,
             n_states: int) -> dict:
    """The validation report: holistic and per trait QWK, SMD, agreement and confidence calibration."""
    main, traits = rubric_scales(rubric)
    va = np.asarray(val_idx, dtype=int)
    texts = [examples[i]["text"] for i in va]
    p = predict(run.bundle(), texts, emb[va], rubric, A.embedding_scale(S.EMB_WEIGHT, n_states))
    human = np.array([float(examples[i]["score"]) for i in va])
    demos = [examples[i].get("demographics") or {} for i in va]
    m = stats.scale_report(human, p["score"], p["confidence"], main, A.tolerance(0, main.n - 1),
                           demos if any(demos) else None)
    m.pop("n")
    per_trait = {}
    for t, sc in traits:
        known = np.array([(examples[i].get("traits") or {}).get(t) is not None for i in va])
        if known.sum() >= 2:
            h = np.array([float(examples[i]["traits"][t]) for i in va[known]])
            per_trait[t] = stats.scale_report(h, p["traits"][t][known], p["trait_confidence"][t][known], sc,
                                              A.tolerance(0, sc.n - 1))
    if per_trait:
        m["trait_qwk"] = {t: v["qwk"] for t, v in per_trait.items()}
        m["traits"] = per_trait
        m["mean_trait_qwk"] = round(float(np.mean([v["qwk"] for v in per_trait.values()])), 4)
    m["val_rmse_points"] = round(float(np.sqrt(np.mean((p["pred"] - main.index(human)) ** 2))), 4)
    m["cv"] = run.cv
    return m


def save(run: StackRun, rubric: dict, out_dir: Path, meta: dict, encoder) -> Path:
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    main, traits = rubric_scales(rubric)
    joblib.dump(run.bundle(), out_dir / "stack.joblib", compress=3)
    conf = {"format": FORMAT, "method": "stack", "version": VERSION, "rubric": rubric,
            "scales": {"score": main.as_dict(), **{n: s.as_dict() for n, s in traits}},
            "encoder": encoder.name, "encoder_variant": getattr(encoder, "variant", "full"),
            "max_length": encoder.max_length, "precision": encoder.precision,
            "embedding": {"states": "all", "n_states": int(encoder.n_states), "dim": int(encoder.dim),
                          "weight": S.EMB_WEIGHT},
            "feature_set": A.FEATURE_SET, "low_confidence": run.low_confidence, "centroid": run.centroid.tolist(),
            "ood_threshold": run.ood_threshold, "train_seconds_stacking": round(run.seconds, 1), **meta}
    (out_dir / "config.json").write_text(json.dumps(conf, indent=1, default=float))
    return out_dir
