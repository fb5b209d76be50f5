"""Rebuild the default grader's head from the shared ASAP data.

    python -m workers.ml.training.default_head --data ../shared/data/asap/train.jsonl --out workers/ml/grading/artifacts/

The recipe ("rater-v1", chosen by leave-one-prompt-out on train.jsonl; docs/grading.md): all 8
prompts pooled; every holistic and trait score normalised to [0, 1] with its prompt's range
(rubrics.json). Inputs: the MiniLM embedding (max 512 tokens) with its topic directions projected out
(the span of the centred per-prompt mean embeddings: what tells one prompt's essays from another's,
not a better essay from a worse one) plus the 38 rater-style features of features.rater_features
(length, vocabulary, spelling, sentence structure, readability, punctuation), standardised.

Heads: ridge regressions (closed form, penalty ALPHA), a bootstrap ensemble of 5 for the holistic
score (its spread feeds the confidence); the projection is folded into the stored weights, so
inference is one matrix product on the raw embedding.

Spread law: a ridge shrinks its predictions towards the pooled mean, and the more coarsely a rubric's
scale is cut, the wider its normalised scores spread. So each head stores c (the pooled mean) and a
law k = exp(a log(points) + b), fitted on the training prompts (log of human sd / fitted sd per prompt
against log of the scale's number of points); a prediction for a scale with `points` steps is
c + k (raw - c), points clipped to [3, 60] and k to [0.5, 2].

Error model for the confidence: a ridge on the absolute leave-one-prompt-out error of the holistic
recipe, i.e. the error on a prompt the head never saw. Also fitted: the off-topic threshold (cosine
between an essay and its task text) and the vocabulary threshold. Embeddings are cached under
var/cache/ (never in git). Fixed seeds: the same data gives the same head.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from workers.ml.scales import K_RANGE, POINTS_RANGE, scale_points, spread_factor

ROOT = Path(__file__).resolve().parents[3]
SEED = 20261128
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)
ALPHA = 10.0  # ridge penalty of every head, chosen by leave-one-prompt-out on train.jsonl (docs/grading.md)
VERSION = "default-minilm-ridge-v3"
CLIP_PERCENTILES = (0.5, 99.5)  # standardised features are clipped to this range of the training essays
# rater-v1 features that read sentence punctuation, capitals or spelling: mechanics, which the
# ideas-like traits must not move with (no punctuation -> one 300-word "sentence"; no capitals)
MECHANICS_FEATURES = (
    "log_sentences", "mean_sent_len", "std_sent_len", "max_sent_len", "commas_per_sent", "clause_per_sent",
    "flesch", "fk_grade", "exclaim_per_100", "question_per_100", "semicolon_colon_per_100", "quotes_per_100",
    "apostrophe_per_100", "paren_per_100", "lower_start_share", "lowercase_i", "caps_word_share",
    "log_misspelled", "misspelled_share", "log_unique_misspelled",
)
# paragraph features: in ASAP only prompt 2's essays kept their paragraph breaks (4.5 per essay; every
# other prompt's essays are one paragraph), so in the pooled fit the paragraph count stands for
# "prompt 2" (whose normalised level is the lowest, 0.48): a weight of -0.10 per sd that absorbs that
# prompt's level (dropping the features instead cost 0.05 of leave-one-prompt-out QWK, docs/grading.md).
# On a teacher's typed letter (six paragraphs with greeting and sign-off) it took ~2 points off a 1-6
# score. So the heads are fitted with them, and every essay is graded as one of SERVE_PARAGRAPHS
# paragraphs, the value of every training prompt but one: paragraphing never moves a default score.
SERVE_PARAGRAPHS = 1
# the ASAP traits scored on ideas, not mechanics: their heads read the embedding and the other features
IDEAS_TRAITS = frozenset({"content", "ideas", "ideas_content", "prompt_adherence", "narrativity"})


def load_jsonl(path: str) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Closed-form ridge with an unpenalised bias (last column of the returned weights)."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    reg = alpha * np.eye(Xb.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(Xb.T @ Xb + reg, Xb.T @ y)


def predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))]) @ W


def cv_alpha(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    folds = rng.permutation(len(X)) % 5
    best = (None, 1e9)
    for a in ALPHAS:
        err = 0.0
        for k in range(5):
            tr, te = folds != k, folds == k
            W = ridge(X[tr], y[tr], a)
            err += float(((predict(W, X[te]) - y[te]) ** 2).sum())
        rmse = (err / len(X)) ** 0.5
        if rmse < best[1]:
            best = (a, rmse)
    return best


def feature_keep(ideas: bool = False) -> np.ndarray:
    """The 0/1 mask of the rater-v1 features a head reads: all, but for an ideas-like trait not the
    MECHANICS_FEATURES."""
    from workers.ml.grading.features import RATER_FEATURE_NAMES

    drop = set(MECHANICS_FEATURES) if ideas else set()
    return np.array([0.0 if n in drop else 1.0 for n in RATER_FEATURE_NAMES])


def feature_bounds(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip range of standardised features: CLIP_PERCENTILES of the training essays."""
    lo, hi = np.percentile(z, CLIP_PERCENTILES, axis=0)
    return lo, hi


def build_inputs(emb: np.ndarray, feats: np.ndarray, mean=None, std=None, bounds=None, keep=None):
    """[embedding, standardised features clipped to `bounds`]; keep: a 0/1 mask of the features a head may
    read (the others are zeroed, so its ridge weights on them are exactly 0)."""
    if mean is None:
        mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    if bounds is not None:
        z = np.clip(z, bounds[0], bounds[1])
    if keep is not None:
        z = z * keep
    return np.hstack([emb, z]).astype(np.float64), mean, std


# --- the rater-v1 recipe ---------------------------------------------------------------------------------

def topic_basis(emb: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning the centred per-prompt mean embeddings (rank n_prompts - 1)."""
    keys = sorted(set(groups.tolist()))
    C = np.stack([emb[groups == g].mean(0) for g in keys]).astype(np.float64)
    C -= C.mean(0)
    return np.linalg.svd(C, full_matrices=False)[2][: max(len(keys) - 1, 0)]


def fold_projection(W: np.ndarray, B: np.ndarray, dim: int) -> np.ndarray:
    """Weights on the projected embedding -> the same function of the raw embedding ((I - B'B) w)."""
    W = np.array(W, dtype=np.float64)
    w = W[..., :dim]
    W[..., :dim] = w - (w @ B.T) @ B
    return W


def fit_spread_law(fit: np.ndarray, y: np.ndarray, groups: np.ndarray, points: dict) -> list[float]:
    """[a, b]: least squares of log(human sd / fitted sd) on log(points) over the groups (prompts);
    [0, mean] when the groups share one scale."""
    keys = sorted(set(groups.tolist()))
    r = np.array([math.log(max(y[groups == g].std(), 1e-6) / max(fit[groups == g].std(), 1e-6)) for g in keys])
    L = np.array([math.log(points[g]) for g in keys])
    if len(keys) < 2 or np.ptp(L) == 0:
        return [0.0, float(r.mean()) if len(r) else 0.0]
    a, b = np.linalg.lstsq(np.vstack([L, np.ones_like(L)]).T, r, rcond=None)[0]
    return [float(a), float(b)]


def fit_recipe(emb: np.ndarray, feats: np.ndarray, y: np.ndarray, groups: np.ndarray, points: dict,
               alpha: float = ALPHA, fmean=None, fstd=None, bounds=None, keep=None) -> dict:
    """One holistic head of the recipe on these essays: weights on the raw [embedding, standardised
    features clipped to the training range] (projection folded in), pooled mean c and spread law.
    keep: the features this head may read (None: all)."""
    groups = np.asarray(groups)
    if fmean is None:
        fmean, fstd = feats.mean(0), feats.std(0) + 1e-6
    if bounds is None:
        bounds = feature_bounds((feats - fmean) / fstd)
    X, fmean, fstd = build_inputs(emb, feats, fmean, fstd, bounds, keep)
    B = topic_basis(emb, groups)
    d = emb.shape[1]
    Xp = X.copy()
    Xp[:, :d] -= (Xp[:, :d] @ B.T) @ B
    W = ridge(Xp, y, alpha)
    fit = predict(W, Xp)
    return {"W": fold_projection(W, B, d), "c": float(y.mean()), "law": fit_spread_law(fit, y, groups, points),
            "fmean": fmean, "fstd": fstd, "bounds": bounds, "B": B}


def apply_recipe(model: dict, emb: np.ndarray, feats: np.ndarray, points: float) -> np.ndarray:
    from workers.ml.grading.features import with_paragraphs

    X, _, _ = build_inputs(emb, with_paragraphs(feats, SERVE_PARAGRAPHS), model["fmean"], model["fstd"],
                           model["bounds"])
    raw = predict(model["W"], X)
    return model["c"] + spread_factor(model["law"], points) * (raw - model["c"])


LOW_CONFIDENCE_QUANTILE = 0.98


def low_confidence_sd(X: np.ndarray, W_hol: np.ndarray, W_err: np.ndarray,
                      quantile: float = LOW_CONFIDENCE_QUANTILE) -> float:
    """The default grader's low-confidence cut: the `quantile` of the per-essay normalised error sd
    (DefaultGrader.error_sd and the ensemble spread, as DefaultGrader.unsure computes them) over X's essays."""
    from workers.ml.grading.default import error_model_sd, essay_sd

    err = error_model_sd(X, np.asarray(W_err, dtype=np.float64))
    spread = (X @ np.asarray(W_hol, dtype=np.float64).T).std(1)
    return round(float(np.quantile(essay_sd(err, spread), quantile)), 5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "asap" / "train.jsonl"))
    ap.add_argument("--rubrics", default=None)
    ap.add_argument("--out", default=str(ROOT / "workers" / "ml" / "grading" / "artifacts"))
    ap.add_argument("--limit", type=int, default=None, help="use only the first N essays (smoke runs)")
    ap.add_argument("--variant", default="full", help="the encoder variant to fit on (workers/ml/variants.py)")
    args = ap.parse_args(argv)
    t0 = time.time()
    from workers.ml.embedding_cache import cached_embed
    from workers.ml.encoder import Encoder
    from workers.ml.grading.features import RATER_FEATURE_NAMES, RATER_FEATURE_SET, feature_matrix, stats, vocab_share

    rows = load_jsonl(args.data)[: args.limit]
    rubrics = json.loads(Path(args.rubrics or Path(args.data).with_name("rubrics.json")).read_text())["prompts"]
    rng = np.random.default_rng(SEED)
    enc = Encoder(variant=args.variant)
    texts = [r["essay"] for r in rows]
    emb = cached_embed(enc, texts, "train")
    print(f"embeddings ready ({enc.name}, {enc.precision}, max_length {enc.max_length}) at {time.time() - t0:.0f}s", flush=True)
    st = [stats(t) for t in texts]
    feats = feature_matrix(RATER_FEATURE_SET, texts, st)
    print(f"features ready at {time.time() - t0:.0f}s", flush=True)
    groups = np.array([str(r["prompt"]) for r in rows])
    d = emb.shape[1]
    fmean, fstd = feats.mean(0), feats.std(0) + 1e-6
    bounds = feature_bounds((feats - fmean) / fstd)
    X, _, _ = build_inputs(emb, feats, fmean, fstd, bounds)
    keep_all, keep_ideas = feature_keep(), feature_keep(ideas=True)
    X, _, _ = build_inputs(emb, feats, fmean, fstd, bounds, keep_all)

    def norm(v, lo_hi):
        lo, hi = lo_hi
        return (float(v) - lo) / (hi - lo)

    def points_of(lo_hi):
        return scale_points({"min": lo_hi[0], "max": lo_hi[1], "step": 1})

    y = np.array([norm(r["score"], rubrics[str(r["prompt"])]["score"]) for r in rows])
    hol_points = {p: points_of(rubrics[p]["score"]) for p in rubrics}
    full = fit_recipe(emb, feats, y, groups, hol_points, ALPHA, fmean, fstd, bounds, keep_all)
    B = full["B"]
    Xp = X.copy()
    Xp[:, :d] -= (Xp[:, :d] @ B.T) @ B
    ens = []
    for _member in range(5):
        idx = rng.integers(0, len(X), len(X))
        ens.append(fold_projection(ridge(Xp[idx], y[idx], ALPHA), B, d))
    W_hol = np.stack(ens)
    in_rmse = float(np.sqrt(((predict(full["W"], X) - y) ** 2).mean()))
    print(f"holistic: alpha={ALPHA} in-sample rmse={in_rmse:.4f}; spread law k = exp({full['law'][0]:.3f} "
          f"log(points) + {full['law'][1]:.3f})", flush=True)

    # leave-one-prompt-out predictions of the whole recipe: the error on a prompt the head never saw,
    # which is what the error model (confidence) and resid_std describe
    oof = np.zeros(len(X))
    for p in sorted(set(groups.tolist())):
        m = groups == p
        if m.all():
            oof[m] = apply_recipe(full, emb[m], feats[m], hol_points[p])
            continue
        mdl = fit_recipe(emb[~m], feats[~m], y[~m], groups[~m], hol_points, ALPHA, keep=keep_all)
        oof[m] = apply_recipe(mdl, emb[m], feats[m], hol_points[p])
    abs_err = np.abs(np.clip(oof, 0, 1) - y)
    lopo_rmse = float(np.sqrt(((np.clip(oof, 0, 1) - y) ** 2).mean()))
    W_err = ridge(X, abs_err, 10.0)
    pred_err = np.clip(predict(W_err, X), 0.02, None)
    print(f"error model: mean |leave-one-prompt-out error| {abs_err.mean():.4f} (rmse {lopo_rmse:.4f}); "
          f"corr(predicted, actual) {np.corrcoef(pred_err, abs_err)[0, 1]:.3f}", flush=True)

    Xb = np.hstack([X, np.ones((len(X), 1))])  # DefaultGrader.inputs: [embedding, features, 1]
    low_sd = low_confidence_sd(Xb, W_hol.astype(np.float32), W_err.astype(np.float32))  # as stored
    print(f"low-confidence cut: normalised error sd > {low_sd:.4f} ({LOW_CONFIDENCE_QUANTILE:.0%} of training essays "
          f"fall under it)", flush=True)

    trait_names = sorted({t for r in rows for t in (r.get("traits") or {})})
    W_traits, trait_c, trait_law, trait_rmse = [], [], [], {}
    for name in trait_names:
        sel = np.array([i for i, r in enumerate(rows) if name in (r.get("traits") or {})])
        yt = np.array([norm(rows[i]["traits"][name], rubrics[str(rows[i]["prompt"])]["traits"][name]) for i in sel])
        tpoints = {p: points_of(rubrics[p]["traits"][name]) for p in rubrics if name in (rubrics[p].get("traits") or {})}
        keep = keep_ideas if name in IDEAS_TRAITS else keep_all
        mdl = fit_recipe(emb[sel], feats[sel], yt, groups[sel], tpoints, ALPHA, fmean, fstd, bounds, keep)
        W_traits.append(mdl["W"])
        trait_c.append(mdl["c"])
        trait_law.append(mdl["law"])
        trait_rmse[name] = round(float(np.sqrt(((predict(mdl["W"], X[sel]) - yt) ** 2).mean())), 4)
        print(f"trait {name}: n={len(sel)} in-sample rmse={trait_rmse[name]:.4f} law {np.round(mdl['law'], 3).tolist()}",
              flush=True)

    # off-topic: cosine between an essay and its own task text vs the other prompts' tasks
    prompts = sorted(rubrics)
    task_emb = enc.embed([rubrics[p]["task"] for p in prompts])
    sims = emb @ task_emb.T
    own = np.array([sims[i, prompts.index(str(r["prompt"]))] for i, r in enumerate(rows)])
    offtopic_threshold = float(np.percentile(own, 1.0))
    vocab = enc.tokenizer.get_vocab()
    shares = np.array([vocab_share(s.words, vocab) for s in st if s.n_words >= 20])
    vocab_threshold = float(min(0.55, np.percentile(shares, 0.5)))
    meta = {
        "version": VERSION,
        "encoder": enc.name, "variant": enc.variant, "max_length": enc.max_length,
        "trained_on": os.path.basename(args.data), "precision": enc.precision,
        "train_seconds": round(time.time() - t0, 1), "n_train": len(rows),
        "recipe": ("ridge on [MiniLM embedding minus its topic subspace, rater-v1 features clipped to the training "
                   "range], spread law by scale points; ideas-like traits without the mechanics features"),
        "clip_percentiles": list(CLIP_PERCENTILES), "mechanics_features": list(MECHANICS_FEATURES),
        "ideas_traits": sorted(IDEAS_TRAITS),
        "serve_paragraphs": SERVE_PARAGRAPHS,
        "holistic_alpha": ALPHA, "holistic_in_sample_rmse": round(in_rmse, 4),
        "holistic_lopo_rmse": round(lopo_rmse, 4), "trait_in_sample_rmse": trait_rmse,
        "feature_set": RATER_FEATURE_SET, "feature_names": RATER_FEATURE_NAMES, "trait_names": trait_names,
        "points_range": list(POINTS_RANGE), "k_range": list(K_RANGE),
        "offtopic_threshold": offtopic_threshold, "vocab_threshold": vocab_threshold,
        "low_confidence_sd": low_sd, "low_confidence_quantile": LOW_CONFIDENCE_QUANTILE,
        "seed": SEED,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "minilm_head.npz", W_hol=W_hol.astype(np.float32), W_traits=np.stack(W_traits).astype(np.float32),
                        feat_mean=fmean.astype(np.float32), feat_std=fstd.astype(np.float32),
                        feat_lo=bounds[0].astype(np.float32), feat_hi=bounds[1].astype(np.float32),
                        resid_std=np.array([lopo_rmse], dtype=np.float32), W_err=W_err.astype(np.float32),
                        hol_c=np.array([full["c"]], dtype=np.float64), hol_law=np.array(full["law"], dtype=np.float64),
                        trait_c=np.array(trait_c, dtype=np.float64), trait_law=np.array(trait_law, dtype=np.float64))
    (out / "minilm_head.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / 'minilm_head.npz'} in {time.time() - t0:.0f}s total "
          f"(off-topic cosine threshold {offtopic_threshold:.3f}, vocabulary threshold {vocab_threshold:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
