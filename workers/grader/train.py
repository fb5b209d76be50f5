"""Rebuild the default grader's head from the shared ASAP data.

    python -m workers.grader.train --data ../shared/data/asap/train.jsonl --out workers/grader/artifacts/

All 8 prompts pooled; every holistic and trait score normalised to [0, 1] with its prompt's range
(rubrics.json). Inputs: the MiniLM embedding (max 512 tokens) plus the text features of
features.py, standardised. Heads: ridge regressions (closed form, alpha chosen by 5-fold CV),
a bootstrap ensemble of 5 for the holistic score (its spread feeds the confidence). Also fitted:
the off-topic threshold (cosine between an essay and its task text) and the vocabulary threshold.
Embeddings are cached under var/cache/ (never in git). Fixed seeds: the same data gives the same head.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261128
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0)


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


def build_inputs(emb: np.ndarray, feats: np.ndarray, mean=None, std=None):
    if mean is None:
        mean, std = feats.mean(0), feats.std(0) + 1e-6
    return np.hstack([emb, (feats - mean) / std]).astype(np.float64), mean, std


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "asap" / "train.jsonl"))
    ap.add_argument("--rubrics", default=None)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "artifacts"))
    ap.add_argument("--limit", type=int, default=None, help="use only the first N essays (smoke runs)")
    args = ap.parse_args(argv)
    t0 = time.time()
    from workers.grader.cache import cached_embed
    from workers.grader.encoder import Encoder
    from workers.grader.features import (
        FEATURE_NAMES,
        feature_vector,
        stats,
        vocab_share,
    )

    rows = load_jsonl(args.data)[: args.limit]
    rubrics = json.loads(Path(args.rubrics or Path(args.data).with_name("rubrics.json")).read_text())["prompts"]
    rng = np.random.default_rng(SEED)
    enc = Encoder()
    texts = [r["essay"] for r in rows]
    emb = cached_embed(enc, texts, "train")
    print(f"embeddings ready ({enc.name}, {enc.precision}, max_length {enc.max_length}) at {time.time() - t0:.0f}s", flush=True)
    st = [stats(t) for t in texts]
    feats = np.array([feature_vector(s) for s in st])
    X, fmean, fstd = build_inputs(emb, feats)

    def norm(v, lo_hi):
        lo, hi = lo_hi
        return (float(v) - lo) / (hi - lo)

    y = np.array([norm(r["score"], rubrics[str(r["prompt"])]["score"]) for r in rows])
    alpha, rmse = cv_alpha(X, y, rng)
    print(f"holistic: alpha={alpha} cv rmse={rmse:.4f} (normalised)", flush=True)
    ens = []
    for k in range(5):
        idx = rng.integers(0, len(X), len(X))
        ens.append(ridge(X[idx], y[idx], alpha))
    W_hol = np.stack(ens)

    # per-essay error model for the confidence: ridge on the out-of-fold absolute error of the
    # holistic head (own rng, so the heads above and below are unaffected)
    err_rng = np.random.default_rng(SEED + 1)
    folds = err_rng.permutation(len(X)) % 5
    oof = np.zeros(len(X))
    for k in range(5):
        tr, te = folds != k, folds == k
        oof[te] = predict(ridge(X[tr], y[tr], alpha), X[te])
    abs_err = np.abs(oof - y)
    W_err = ridge(X, abs_err, 10.0)
    pred_err = np.clip(predict(W_err, X), 0.02, None)
    print(f"error model: mean |oof error| {abs_err.mean():.4f}; corr(predicted, actual) "
          f"{np.corrcoef(pred_err, abs_err)[0, 1]:.3f}", flush=True)

    trait_names = sorted({t for r in rows for t in (r.get("traits") or {})})
    W_traits, trait_rmse = [], {}
    for name in trait_names:
        sel = [i for i, r in enumerate(rows) if name in (r.get("traits") or {})]
        yt = np.array([norm(rows[i]["traits"][name], rubrics[str(rows[i]["prompt"])]["traits"][name]) for i in sel])
        a, e = cv_alpha(X[sel], yt, rng)
        W_traits.append(ridge(X[sel], yt, a))
        trait_rmse[name] = round(e, 4)
        print(f"trait {name}: n={len(sel)} alpha={a} cv rmse={e:.4f}", flush=True)

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
        "version": "default-minilm-ridge-v1",
        "encoder": enc.name, "max_length": enc.max_length,
        "trained_on": os.path.basename(args.data), "precision": enc.precision,
        "train_seconds": round(time.time() - t0, 1), "n_train": len(rows),
        "holistic_alpha": alpha, "holistic_cv_rmse": round(rmse, 4), "trait_cv_rmse": trait_rmse,
        "feature_names": FEATURE_NAMES, "trait_names": trait_names,
        "offtopic_threshold": offtopic_threshold, "vocab_threshold": vocab_threshold,
        "seed": SEED,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "minilm_head.npz", W_hol=W_hol.astype(np.float32), W_traits=np.stack(W_traits).astype(np.float32),
                        feat_mean=fmean.astype(np.float32), feat_std=fstd.astype(np.float32),
                        resid_std=np.array([rmse], dtype=np.float32), W_err=W_err.astype(np.float32))
    (out / "minilm_head.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / 'minilm_head.npz'} in {time.time() - t0:.0f}s total "
          f"(off-topic cosine threshold {offtopic_threshold:.3f}, vocabulary threshold {vocab_threshold:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
