"""Fit the review flags' prompt classifier and thresholds (workers/ml/grading/review.py) on train.jsonl.

    python -m workers.ml.training.review_flags fit --data ../shared/data/asap/train.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

from workers.ml.grading.review import ARTIFACTS, DEFAULTS, measure

# --- fitting (train.jsonl only) ------------------------------------------------------------------
BUDGETS = {  # share of real train essays each fitted detector may flag
    "salad_rate": 0.004, "repeat_share": 0.003, "nonsense_dict_share": 0.002, "copy_prompt_share": 0.002,
    "offtopic_prob": 0.004, "offtopic_cosine": 0.01,
}


def choose_threshold(real, stress, budget: float, higher_is_bad: bool = True) -> dict:
    """Flag when score >= t (or <= t). t_fp: the (1 - budget) quantile of the real essays' scores;
    t_catch: the 2nd percentile of the stress items' scores; when t_catch lies beyond t_fp, take the
    midpoint (a margin on both sides), else t_fp (the false-positive budget wins)."""
    sign = 1.0 if higher_is_bad else -1.0
    r, s = sign * np.asarray(real, dtype=float), sign * np.asarray(stress, dtype=float)
    t_fp = float(np.quantile(r, 1.0 - budget)) + 1e-9
    t_catch = float(np.quantile(s, 0.02))
    t = (t_fp + t_catch) / 2 if t_catch > t_fp else t_fp
    return {"threshold": round(sign * t, 4), "train_fp": round(float((r >= t).mean()), 4),
            "train_catch": round(float((s >= t).mean()), 4), "n_real": len(r), "n_stress": len(s)}


def fit(train_path: str, out_dir: str | Path = ARTIFACTS, seed: int = 20261129, per_prompt: int = 100,
        encoder=None) -> dict:
    """Prompt classifier on cached train embeddings, thresholds on real train essays and on synthetic
    stress built from them (stress.make_stress on train.jsonl, never dev.jsonl)."""
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from workers.ml.embedding_cache import cached_embed
    from workers.ml.encoder import Encoder
    from workers.ml.stress_set import load, make_stress

    t0 = time.perf_counter()
    rows, rubrics = load(train_path)
    texts = [r["essay"] for r in rows]
    pids = np.array([str(r["prompt"]) for r in rows])
    enc = encoder or Encoder(max_length=512)
    emb = cached_embed(enc, texts, Path(train_path).stem).astype(np.float64)
    classes = sorted(set(pids), key=int)
    # classifier: C by 5-fold log-loss, out-of-fold probabilities for the thresholds
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(emb, pids))
    best = None
    for C in (1.0, 10.0, 100.0):
        oof = np.zeros((len(rows), len(classes)))
        for tr, te in folds:
            m = LogisticRegression(C=C, max_iter=3000).fit(emb[tr], pids[tr])
            oof[te] = m.predict_proba(emb[te])
        ll = float(-np.mean(np.log(np.clip(oof[np.arange(len(rows)), [classes.index(p) for p in pids]], 1e-12, 1))))
        if best is None or ll < best[1]:
            best = (C, ll, oof)
    C, logloss, oof = best
    clf = LogisticRegression(C=C, max_iter=3000).fit(emb, pids)
    assert [str(c) for c in clf.classes_] == classes
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "prompt_clf.npz", W=clf.coef_.astype(np.float32), b=clf.intercept_.astype(np.float32),
             classes=np.array(classes))

    items = make_stress(rows, rubrics, per_prompt, seed)
    real_m = [measure(t, rubrics[p]["task"]) for t, p in zip(texts, pids)]
    st_m = [measure(it["text"], it["prompt_text"]) for it in items]

    def kind(k, key, cond=lambda m: True):
        return [m[key] for m, it in zip(st_m, items) if it["kind"] == k and cond(m)]

    sal_ok = lambda m: m["salad_checked"] >= DEFAULTS["salad_min_checked"]  # noqa: E731
    rep_ok = lambda m: m["repeated_words"] >= DEFAULTS["repeat_min_words"]  # noqa: E731
    fits = {
        "salad_rate": choose_threshold([m["salad_rate"] for m in real_m if sal_ok(m)],
                                       kind("shuffled", "salad_rate", sal_ok), BUDGETS["salad_rate"]),
        "repeat_share": choose_threshold([m["repeat_share"] for m in real_m],
                                         kind("repeated", "repeat_share", rep_ok), BUDGETS["repeat_share"]),
        "nonsense_dict_share": choose_threshold([m["dict_share"] for m in real_m],
                                                kind("random_chars", "dict_share"),
                                                BUDGETS["nonsense_dict_share"], higher_is_bad=False),
        "copy_prompt_share": choose_threshold([m["copy_prompt_share"] for m in real_m],
                                              kind("prompt_pasted", "copy_prompt_share"),
                                              BUDGETS["copy_prompt_share"]),
    }
    index = {r["essay_id"]: i for i, r in enumerate(rows)}
    p_own = oof[np.arange(len(rows)), [classes.index(p) for p in pids]]
    moved = [it for it in items if it["kind"] == "moved"]
    p_moved = [oof[index[it["source"]], classes.index(it["prompt_id"])] for it in moved]
    fits["offtopic_prob"] = choose_threshold(p_own, p_moved, BUDGETS["offtopic_prob"], higher_is_bad=False)
    tasks = {p: e for p, e in zip(classes, enc.embed([rubrics[p]["task"] for p in classes]).astype(np.float64))}
    cos_own = np.einsum("ij,ij->i", emb, np.stack([tasks[p] for p in pids]))
    cos_moved = [float(emb[index[it["source"]]] @ tasks[it["prompt_id"]]) for it in moved]
    fits["offtopic_cosine"] = choose_threshold(cos_own, cos_moved, BUDGETS["offtopic_cosine"], higher_is_bad=False)

    cfg = dict(DEFAULTS)
    for k, v in fits.items():
        cfg[k] = v["threshold"]
    body = {k: cfg[k] for k in DEFAULTS}
    digest = zlib.crc32(json.dumps(body, sort_keys=True).encode() + (out / "prompt_clf.npz").read_bytes())
    meta = {
        "version": f"review-v1+{digest:08x}",
        **body,
        "fitted_on": Path(train_path).name, "variant": getattr(enc, "variant", "full"), "seed": seed,
        "stress_per_prompt": per_prompt,
        "budgets": BUDGETS, "fits": fits,
        "prompt_classifier": {"C": C, "cv_logloss": round(logloss, 4),
                              "cv_accuracy": round(float((np.array(classes)[oof.argmax(1)] == pids).mean()), 4),
                              "n_train": len(rows)},
        "fit_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "review.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="review flags: fit thresholds on train.jsonl")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--data", default=str(Path(__file__).resolve().parents[4] / "shared" / "data" / "asap" / "train.jsonl"))
    f.add_argument("--out", default=str(ARTIFACTS))
    args = ap.parse_args(argv)
    res = fit(args.data, args.out)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
