"""The shipped per-prompt ASAP graders ("asap"): holistic score, trait scores, calibrated confidence.

    g = AsapGrader.load(encoder=shared_encoder)
    g.score([GradeRequest(text, rubric, "asap-3"), ...]) -> ModelScores   (interface.py; the review
    flags and feedback are added by GradingService, service.py, as for every grader)

One model per ASAP prompt ("1".."8"), trained on train.jsonl only by `python -m workers.ml.training.asap_stack`
(everything chosen by 5-fold cross-validation on train.jsonl; dev.jsonl only reports). Per prompt:

  stage 1  ridge on hashed n-grams (word 1-2-grams + char_wb 2-5-grams, log tf, l2; no vocabulary kept)
           ridge on the MiniLM embedding + standardised rater-style features; the embedding is every
           hidden state (the embedding layer's output and all 6 layers), each mean-pooled and
           L2-normalised, concatenated, times meta["embedding"]["weight"] / sqrt(7) (Encoder.embed with
           layers=True, one forward pass; weight 4: the embedding block then outweighs the 38
           standardised features; both chosen by cross-validation on train.jsonl, docs/grading.md)
  stage 2  gradient boosting (HistGradientBoostingRegressor) and a ridge on [rater-style features,
           embedding PCA, the two stage-1 predictions (out-of-fold in training)], blended
  bag      the holistic score averages 3 such stage-1 + stage-2 fits, each made on its own split of
           train.jsonl into folds (model["bag"] holds the 2 extra members' weights and heads)
  rounding each stage-2 prediction stretched to the human scores' spread (the mean and sd of the
           out-of-fold predictions mapped onto the training scores', `stretch`; the bag averages the
           stretched predictions), then plain rounding
           (asap-stack-v1/v2 used per-prompt thresholds fitted for QWK; nested CV preferred the stretch)
  traits   the same stage 2 per trait (stage-1 holistic predictions + a per-trait embedding ridge),
           linear only, stretched and rounded the same way

Rater-style features (features.rater_features: feature set "rater-v1", the default grader's too):
length (log words, chars, sentences, paragraphs), vocabulary (unique words, type-token, long words,
rare words by pyspellchecker word frequency), spelling errors (pyspellchecker; @PERSON1-style
anonymisation tokens skipped), sentence structure (mean/std/max sentence length, commas, clause
words), readability (textstat), paragraphing and punctuation.

Confidence = P(the human score lies within `tolerance(prompt)` of the score given), a logistic
regression per prompt fitted on out-of-fold train predictions over (distance of the continuous
prediction to the nearest rounding threshold, disagreement of the two stage-2 models, position on the
scale). Tolerance: exact agreement for prompts whose range is <= 12 points (1-6); for wider ranges
(prompt 7: 0-30, prompt 8: 0-60) within max(1, round(range / 10)) points, i.e. 3 and 6.

Artifacts (workers/ml/grading/artifacts/asap/): meta.json (ranges, trait names, thresholds, version, CV
figures), one joblib file per prompt, manifest.json with the sha256 of every file; every file's
checksum is verified before anything is unpickled.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from workers.ml.grading import features as F
from workers.ml.grading.interface import GradeRequest, ModelScores

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "asap"
N_WORD_HASH = 2 ** 17
N_CHAR_HASH = 2 ** 17

_ANON = re.compile(r"@[A-Z]+[0-9]*")  # anonymisation tokens (@PERSON1), dropped before the n-grams


def tolerance(lo: int, hi: int) -> int:
    """Points within which a score counts as agreeing: exact for ranges <= 12, else max(1, round(range/10))."""
    rng = int(hi) - int(lo)
    return 0 if rng <= 12 else max(1, int(round(rng / 10)))


# --- rater-style features (features.py, one implementation, by feature-set name) -------------------------

FEATURE_SET = F.RATER_FEATURE_SET  # what asap-stack models read; a meta.json without "feature_set" means this
FEATURE_NAMES = F.RATER_FEATURE_NAMES


def feature_matrix(texts: list[str], feature_set: str = FEATURE_SET) -> np.ndarray:
    return F.feature_matrix(feature_set, texts)


# --- hashed n-grams (no vocabulary is ever stored) ------------------------------------------------------

@lru_cache(maxsize=1)
def _hashers():
    from sklearn.feature_extraction.text import HashingVectorizer

    word = HashingVectorizer(n_features=N_WORD_HASH, ngram_range=(1, 2), alternate_sign=False, norm=None,
                             lowercase=True, token_pattern=r"(?u)\b\w+\b")
    char = HashingVectorizer(n_features=N_CHAR_HASH, analyzer="char_wb", ngram_range=(2, 5),
                             alternate_sign=False, norm=None, lowercase=True)
    return word, char


def ngram_matrix(texts: list[str]):
    """log(1+tf) word 1-2-grams and char_wb 2-5-grams, each block l2-normalised, side by side (sparse)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    clean = [_ANON.sub(" ", t or "") for t in texts]
    blocks = []
    for h in _hashers():
        X = h.transform(clean).tocsr().astype(np.float32)
        X.data = np.log1p(X.data)
        blocks.append(normalize(X))
    return sp.hstack(blocks).tocsr()


# --- the per-prompt model --------------------------------------------------------------------------------

def apply_thresholds(pred: np.ndarray, thresholds, lo: int, hi: int) -> np.ndarray:
    """Continuous predictions -> integers in [lo, hi]: lo + number of thresholds passed (or plain rounding)."""
    pred = np.asarray(pred, dtype=float)
    if thresholds is None:
        return np.clip(np.rint(pred), lo, hi).astype(int)
    return (lo + np.searchsorted(np.asarray(thresholds, dtype=float), pred, side="right")).astype(int)


def threshold_distance(pred: np.ndarray, thresholds, lo: int, hi: int) -> np.ndarray:
    t = np.asarray(thresholds if thresholds is not None else np.arange(lo, hi) + 0.5, dtype=float)
    return np.min(np.abs(np.asarray(pred, dtype=float)[:, None] - t[None, :]), axis=1)


def stretch(head: dict, pred: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """A stage-2 prediction clipped to [lo - 0.49, hi + 0.49], then (heads from asap-stack-v3 on) put on the
    human scores' spread: ym + (pred - m) * k, k = sd(human) / sd(out-of-fold prediction), clipped again.
    Ridge and boosting shrink towards the mean; plain rounding of the stretched prediction beat rounding
    thresholds fitted for QWK in nested cross-validation (docs/grading.md)."""
    pred = np.clip(np.asarray(pred, dtype=float), lo - 0.49, hi + 0.49)
    st = head.get("stretch")
    if st is None:
        return pred
    m, k, ym = st
    return np.clip(ym + (pred - m) * k, lo - 0.49, hi + 0.49)


def head_predict(head: dict, X2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blend, gbm, linear) continuous predictions of one stage-2 head."""
    from threadpoolctl import threadpool_limits

    lin = ((X2 - head["x_mean"]) / head["x_std"]) @ head["lin_w"] + head["lin_b"]
    if head["gbm"] is None:
        return lin, lin, lin
    with threadpool_limits(limits=1, user_api="openmp"):  # tiny batches: threads cost more than they give
        g = head["gbm"].predict(X2)
    w = head["blend"]
    return w * g + (1 - w) * lin, g, lin


def embedding_scale(weight: float, n_states: int) -> float:
    """What the every-hidden-state embedding is multiplied by before the models read it."""
    return float(weight) / math.sqrt(n_states)


def stage1_inputs(model: dict, feats: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """Z, the standardised [emb, feats] the embedding ridges read (the same for every bag member)."""
    return np.hstack([np.asarray(emb, dtype=np.float64), (feats - model["f_mean"]) / model["f_std"]])


def stage1(member: dict, Xng, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram ridge prediction, embedding ridge prediction) of one member's stage-1 weights."""
    ng = np.asarray(Xng @ member["ng_w"].astype(np.float32)).ravel().astype(np.float64) + member["ng_b"]
    return ng, Z @ member["emb_w"] + member["emb_b"]


def stage2_base(model: dict, feats: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """The stage-2 inputs every bag member shares: the features and the embedding's principal components."""
    pcs = (np.asarray(emb, dtype=np.float64) - model["pca_mean"]) @ model["pca_components"].T
    return np.hstack([feats, pcs])


def stage2_inputs(base: np.ndarray, ng_pred: np.ndarray, emb_pred: np.ndarray) -> np.ndarray:
    """X2: stage2_base and one member's two stage-1 predictions."""
    return np.hstack([base, ng_pred[:, None], emb_pred[:, None]])


def _logistic(model: dict | None, X: np.ndarray) -> np.ndarray:
    if model is None:
        return np.full(len(X), 0.5)
    z = X @ model["coef"] + model["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def confidence_inputs(pred: np.ndarray, gbm: np.ndarray, lin: np.ndarray, thresholds, lo: int, hi: int) -> np.ndarray:
    """What the confidence model sees: distance to the nearest threshold, stage-2 disagreement, position."""
    rng = float(hi - lo)
    tol = tolerance(lo, hi)
    d = threshold_distance(pred, thresholds, lo, hi)
    pos = np.clip((pred - lo) / rng, 0, 1)
    return np.column_stack([np.minimum(d, 1.0) + tol, np.abs(gbm - lin) / rng * 10, pos, pos ** 2])


def raw_confidence(pred: np.ndarray, given: np.ndarray, sd: float, lo: int, hi: int) -> np.ndarray:
    """Uncalibrated baseline: P(|N(pred, sd^2) - given| <= tolerance + 1/2) with sd = the out-of-fold RMSE."""
    tol = tolerance(lo, hi) + 0.5
    z1 = (given - tol - pred) / max(sd, 1e-6)
    z2 = (given + tol - pred) / max(sd, 1e-6)
    erf = np.vectorize(math.erf)
    return np.clip(0.5 * (erf(z2 / math.sqrt(2)) - erf(z1 / math.sqrt(2))), 0, 1)


def predict_prompt(model: dict, texts: list[str], emb: np.ndarray, feats: np.ndarray | None = None, Xng=None) -> dict:
    """Every number the grader needs for essays of one prompt (continuous and integer, holistic and traits)."""
    feats = feature_matrix(texts) if feats is None else feats
    Xng = ngram_matrix(texts) if Xng is None else Xng
    lo, hi = model["range"]
    # the holistic score: the mean of the members' stretched predictions (model["bag"]: the extra members'
    # stage-1 weights and heads, from asap-stack-v3 on; Z and member 0's stage-2 inputs X2 feed the traits)
    Z = stage1_inputs(model, feats, emb)
    base = stage2_base(model, feats, emb)
    preds, gs, lins, X2 = [], [], [], None
    for member in [model, *(model.get("bag") or [])]:
        X2i = stage2_inputs(base, *stage1(member, Xng, Z))
        X2 = X2i if X2 is None else X2
        p_i, g_i, l_i = head_predict(member["holistic"], X2i)
        preds.append(stretch(member["holistic"], p_i, lo, hi))
        gs.append(g_i)
        lins.append(l_i)
    pred, g, lin = np.mean(preds, axis=0), np.mean(gs, axis=0), np.mean(lins, axis=0)
    score = apply_thresholds(pred, model["holistic"]["thresholds"], lo, hi)
    conf_x = confidence_inputs(pred, g, lin, model["holistic"]["thresholds"], lo, hi)
    conf = _logistic(model.get("confidence"), conf_x)
    traits, trait_pred = {}, {}
    for name, th in model["traits"].items():
        tlo, thi = th["range"]
        tp = Z @ th["emb_w"] + th["emb_b"]
        tpred, _, _ = head_predict(th, np.hstack([X2, tp[:, None]]))
        trait_pred[name] = stretch(th, tpred, tlo, thi)
        traits[name] = apply_thresholds(trait_pred[name], th["thresholds"], tlo, thi)
    return {"pred": pred, "score": score, "gbm": g, "lin": lin, "confidence": conf,
            "raw_confidence": raw_confidence(pred, score, model["oof_rmse"], lo, hi), "traits": traits,
            "trait_pred": trait_pred}


# --- the runtime grader ----------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ChecksumError(ValueError):
    pass


def verified_files(artifacts_dir: Path) -> tuple[dict, str]:
    """manifest.json's {file: sha256}, every listed file checked; raises ChecksumError on any mismatch."""
    manifest_path = artifacts_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    files = manifest.get("files") or {}
    if "meta.json" not in files:
        raise ChecksumError(f"{manifest_path}: meta.json is not listed")
    for name, digest in files.items():
        p = artifacts_dir / name
        if Path(name).name != name or not p.is_file():
            raise ChecksumError(f"{manifest_path}: {name!r} is missing or not a plain file name")
        got = sha256_file(p)
        if got != digest:
            raise ChecksumError(f"{p}: sha256 {got[:12]}... does not match the manifest ({digest[:12]}...)")
    return files, hashlib.sha256(manifest_path.read_bytes()).hexdigest()


def rubric_from_meta(meta: dict, p: str) -> dict:
    """The API rubric of prompt p's grader (model 'asap-p'): its score range and traits, no task text."""
    lo, hi = meta["ranges"][p]
    return {"name": f"ASAP prompt {p}", "scale": {"min": lo, "max": hi, "step": 1},
            "traits": [{"name": t, "scale": {"min": a, "max": b, "step": 1}}
                       for t, (a, b) in meta["trait_ranges"][p].items()]}


class AsapGrader:
    def __init__(self, encoder, models: dict, meta: dict, digest: str):
        self.encoder = encoder
        self.models = models
        self.meta = meta
        # what the models read: every hidden state, weighted (meta "embedding", asap-stack-v2 on)
        spec = meta.get("embedding") or {}
        if spec.get("states") != "all":
            raise ValueError(f"artifacts read embedding states {spec.get('states')!r}; this grader reads 'all'")
        from workers.ml.encoder import AllLayers

        self.all_layers = True  # the embedder gives every hidden state (bench/grading_paths.py reads this)
        self.embedder = AllLayers(encoder)
        self.emb_scale = embedding_scale(spec["weight"], encoder.n_states)
        self.feature_set = meta.get("feature_set", FEATURE_SET)
        if self.feature_set not in F.FEATURE_SETS:
            raise ValueError(f"artifacts read feature set {self.feature_set!r}; known: {', '.join(F.FEATURE_SETS)}")
        self.version = f"{meta['version']}+{digest[:12]}"
        self.low_confidence = meta["low_confidence"]  # {prompt: cut}

    @classmethod
    def load(cls, encoder=None, artifacts_dir: str | Path | None = None) -> AsapGrader:
        import joblib

        from workers.ml.variants import check_fitted_on, heads_dir, variant_of

        d = Path(artifacts_dir) if artifacts_dir else heads_dir(variant_of(encoder)) / "asap"
        files, digest = verified_files(d)
        meta = json.loads((d / "meta.json").read_text())
        models = {}
        for p in meta["prompts"]:
            name = meta["model_files"][p]
            if name not in files:
                raise ChecksumError(f"{d / name} is not in the manifest")
            models[p] = joblib.load(d / name)  # checksum verified above
        if encoder is None:
            from workers.ml.encoder import Encoder

            encoder = Encoder(max_length=meta.get("max_length", 512))
        check_fitted_on(meta, encoder, f"ASAP graders {d}")
        if encoder.dim != meta["embedding_dim"]:
            raise ValueError(f"artifacts expect {meta['embedding_dim']}-d embeddings, encoder gives {encoder.dim}")
        want = (meta.get("embedding") or {}).get("n_states")
        if want is not None and want != encoder.n_states:
            raise ValueError(f"artifacts expect {want} hidden states, encoder has {encoder.n_states}")
        return cls(encoder, models, meta, digest)

    def prompts(self) -> list[str]:
        return list(self.meta["prompts"])

    def rubric(self, prompt_id: str) -> dict:
        p = str(prompt_id)
        if p not in self.meta["ranges"]:
            raise KeyError(f"unknown ASAP prompt {prompt_id!r}; known: {', '.join(self.prompts())}")
        return rubric_from_meta(self.meta, p)

    @staticmethod
    def prompt_of(model_id: str) -> str:
        """'asap-3' -> '3' (the prompt whose shipped grader model 'asap-3' is)."""
        return str(model_id).split("-", 1)[1] if str(model_id).startswith("asap-") else str(model_id)

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        """Each request's model names its prompt ('asap-3'). emb: self.embedder.embed(texts) when the
        caller has it; else ONE encoder call for the batch. Trait scores come back under the request
        rubric's own trait names (matched case-insensitively)."""
        texts = [r.text for r in requests]
        pids = [self.prompt_of(r.model) for r in requests]
        for p in pids:
            self.rubric(p)  # unknown prompt: fail before encoding
        if emb is None:
            emb = self.embedder.embed(list(texts)) if texts else np.zeros((0, self.embedder.dim))
        if len(texts) and np.asarray(emb).shape[1] != self.embedder.dim:
            raise ValueError(f"emb has {np.asarray(emb).shape[1]} columns; these graders read "
                             f"{self.embedder.dim} (self.embedder.embed(texts))")
        rows = self.predict(texts, pids, emb) if texts else []
        traits, confs, unsure = [], [], []
        for req, p, r in zip(requests, pids, rows):
            names = {t["name"].lower(): t["name"] for t in req.rubric.get("traits") or []}
            traits.append({names.get(k.lower(), k): float(v) for k, v in r["traits"].items()})
            conf = round(min(max(r["confidence"], 0.0), 1.0), 3)
            confs.append(float(conf))
            unsure.append(conf < self.low_confidence_cut(p))
        details = [{"pred": r["pred"], "raw_confidence": r["raw_confidence"]} for r in rows]
        return ModelScores([float(r["score"]) for r in rows], traits, confs, unsure, self.version,
                           self.plain_embedding(emb) if len(texts) else None, pids, details=details)

    def low_confidence_cut(self, prompt_id: str) -> float:
        """Confidence under this gets 'low confidence' in review_reasons (~2 % of the prompt's CV essays)."""
        return float(self.low_confidence[str(prompt_id)])

    def plain_embedding(self, emb: np.ndarray) -> np.ndarray:
        """The last-layer embedding (what the review flags read) inside the embedder's output."""
        return np.asarray(emb)[:, -self.encoder.dim:]

    def mean_prediction(self, texts: list[str], emb: np.ndarray) -> np.ndarray:
        """Every prompt's grader on every text: the mean of their holistic predictions, each normalised to
        its prompt's range (0 = min, 1 = max). What calibration.py ranks a new prompt's essays by, with the
        default grader. emb: self.embedder.embed(texts)."""
        if not texts:
            return np.zeros(0)
        feats, Xng = feature_matrix(texts, self.feature_set), ngram_matrix(texts)
        emb = np.asarray(emb) * self.emb_scale
        cols = []
        for m in self.models.values():
            lo, hi = m["range"]
            cols.append((predict_prompt(m, texts, emb, feats, Xng)["pred"] - lo) / (hi - lo))
        return np.mean(cols, axis=0)

    def predict(self, texts: list[str], prompt_ids: list[str], emb: np.ndarray) -> list[dict]:
        """predict_prompt's numbers per essay, grouped by prompt and put back in order.
        emb: self.embedder.embed(texts)."""
        pids = [str(p) for p in prompt_ids]
        feats = feature_matrix(texts, self.feature_set)
        Xng = ngram_matrix(texts)
        emb = np.asarray(emb) * self.emb_scale
        rows: list[dict] = [{} for _ in texts]
        for p in sorted(set(pids), key=lambda s: int(s) if s.isdigit() else 0):
            if p not in self.models:
                raise KeyError(f"unknown ASAP prompt {p!r}")
            idx = [i for i, q in enumerate(pids) if q == p]
            r = predict_prompt(self.models[p], [texts[i] for i in idx], emb[idx], feats[idx], Xng[idx])
            for j, i in enumerate(idx):
                rows[i] = {"pred": float(r["pred"][j]), "score": int(r["score"][j]),
                           "confidence": float(r["confidence"][j]), "raw_confidence": float(r["raw_confidence"][j]),
                           "traits": {t: int(v[j]) for t, v in r["traits"].items()}}
        return rows
