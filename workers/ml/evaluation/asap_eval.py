"""Agreement of the per-prompt graders (or the default grader behind the same `predict` interface)
with human scores on an ASAP-style file: the data behind `eduq grader eval` and its validity report."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from workers.ml.evaluation.stats import ece
from workers.ml.grading.asap import AsapGrader, tolerance


def evaluate_asap(grader: AsapGrader, jsonl_path: str, limit: int | None = None, cache: bool = True,
                  batch: int = 64) -> dict:
    """Agreement with the human scores of an ASAP jsonl file, per prompt, plus raw per-essay arrays.

    With cache=True the embeddings come from var/cache (cached_embed, tag = the file's stem), the same
    numbers grade() gives; otherwise grade() in batches."""
    from workers.ml.evaluation.evaluate import qwk

    with open(jsonl_path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rows = rows[:limit] if limit else rows
    texts = [r["essay"] for r in rows]
    pids = [str(r["prompt"]) for r in rows]
    if cache:
        from workers.ml.embedding_cache import cached_embed

        emb = cached_embed(grader.embedder, texts, Path(jsonl_path).stem, verbose=False)
    else:
        emb = np.concatenate([grader.embedder.embed(texts[i:i + batch]) for i in range(0, len(texts), batch)] or
                             [np.zeros((0, grader.embedder.dim), dtype=np.float32)])
    preds = grader.predict(texts, pids, emb)
    human = np.array([float(r["score"]) for r in rows])
    pred = np.array([float(p["score"]) for p in preds])
    conf = np.array([p["confidence"] for p in preds])
    rawc = np.array([p["raw_confidence"] for p in preds])
    # the low-confidence flag: the grader's own per-essay verdict where it gives one, else confidence < its cut
    low = np.array([p["low_confidence"] if "low_confidence" in p else p["confidence"] < grader.low_confidence_cut(q)
                    for p, q in zip(preds, pids)], dtype=bool)
    per, hits = {}, np.zeros(len(rows), dtype=bool)
    for p in grader.prompts():
        idx = np.array([i for i, q in enumerate(pids) if q == p], dtype=int)
        if not len(idx):
            continue
        lo, hi = grader.meta["ranges"][p]
        tol = tolerance(lo, hi)
        h, s, c = human[idx], pred[idx], conf[idx]
        diff = np.abs(h - s)
        hit = diff <= tol
        hits[idx] = hit
        sd = math.sqrt((h.var(ddof=1) + s.var(ddof=1)) / 2) if len(idx) > 1 else float("nan")
        cm = np.zeros((hi - lo + 1, hi - lo + 1), dtype=int)
        np.add.at(cm, (h.astype(int) - lo, s.astype(int) - lo), 1)
        tq = {}
        for t, (a, b) in grader.meta["trait_ranges"][p].items():
            ti = [k for k, i in enumerate(idx) if t in (rows[i].get("traits") or {})]
            if ti:
                tq[t] = round(qwk([rows[idx[k]]["traits"][t] for k in ti], [preds[idx[k]]["traits"][t] for k in ti],
                                  a, b), 4)
        per[p] = {
            "n": int(len(idx)), "qwk": round(qwk(h, s, lo, hi), 4),
            "exact": round(float((diff == 0).mean()), 4),
            "adjacent": round(float((diff <= max(1, tol)).mean()), 4), "tolerance": tol,
            "smd": round(float((s.mean() - h.mean()) / sd), 4) if sd and sd > 0 else 0.0,
            "confusion": cm.tolist(), "range": [lo, hi], "trait_qwk": tq,
            "mean_trait_qwk": round(float(np.mean(list(tq.values()))), 4) if tq else None,
            "mean_confidence": round(float(c.mean()), 4), "median_confidence": round(float(np.median(c)), 4),
            "observed_agreement": round(float(hit.mean()), 4),
            "ece": round(ece(c, hit), 4), "ece_uncalibrated": round(ece(rawc[idx], hit), 4),
            "low_confidence_share": round(float(low[idx].mean()), 4),
        }
    trait_vals = [v for d in per.values() for v in d["trait_qwk"].values()]
    return {
        "model_version": grader.version, "data": str(jsonl_path), "n": len(rows), "per_prompt": per,
        "mean_qwk": round(float(np.mean([d["qwk"] for d in per.values()])), 4) if per else float("nan"),
        "mean_trait_qwk": round(float(np.mean(trait_vals)), 4) if trait_vals else float("nan"),
        "ece": round(ece(conf, hits), 4), "ece_uncalibrated": round(ece(rawc, hits), 4),
        "mean_confidence": round(float(conf.mean()), 4) if len(conf) else float("nan"),
        "observed_agreement": round(float(hits.mean()), 4) if len(hits) else float("nan"),
        "low_confidence_share": round(float(low.mean()), 4) if len(conf) else 0.0,
        "arrays": {"human": human.tolist(), "pred": pred.tolist(), "confidence": conf.tolist(), "prompt": pids},
    }
