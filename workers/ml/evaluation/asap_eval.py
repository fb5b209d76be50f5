"""Agreement of a grader with human scores on an ASAP-style file, per prompt: the data behind
`eduq grader eval` and its validity report. Any grader is measured the same way, through the grader
interface (workers/ml/grading/interface.py): each essay becomes a GradeRequest on its prompt's rubric
and the model id that grades that prompt, and the figures come from the grader's ModelScores."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from workers.ml.grading.asap import tolerance
from workers.ml.grading.interface import GradeRequest, is_empty
from workers.ml.stats import ece, qwk, smd


@dataclass
class EvalTarget:
    """What is measured: a grader, the embedder whose output it reads, and per ASAP prompt the rubric
    and the model id it is graded with ('asap-3' for the shipped graders, 'default' for the default)."""

    grader: object
    embedder: object
    rubric: Callable[[str], dict]
    model: Callable[[str], str]
    prompts: list[str]

    @property
    def version(self) -> str:
        return self.grader.version


def asap_target(grader) -> EvalTarget:
    """The shipped per-prompt graders, each on its own rubric."""
    return EvalTarget(grader, grader.embedder, grader.rubric, lambda p: f"asap-{p}", grader.prompts())


def rubric_of(rubrics: dict, p: str) -> dict:
    """The API rubric of an ASAP prompt read from rubrics.json: its task text, range and traits."""
    r = rubrics[str(p)]
    lo, hi = r["score"]
    return {"name": f"ASAP prompt {p}", "prompt": r.get("task") or "", "scale": {"min": lo, "max": hi, "step": 1},
            "traits": [{"name": t, "scale": {"min": a, "max": b, "step": 1}} for t, (a, b) in (r.get("traits") or {}).items()]}


def default_target(grader, rubrics: dict) -> EvalTarget:
    """The rubric-agnostic default grader, each essay graded against its prompt's rubric (rubrics.json)."""
    return EvalTarget(grader, grader.encoder, lambda p: rubric_of(rubrics, p), lambda p: "default",
                      sorted(rubrics, key=int))


def _range(scale: dict) -> tuple[int, int]:
    return int(scale["min"]), int(scale["max"])


def evaluate_asap(target: EvalTarget, jsonl_path: str, limit: int | None = None, cache: bool = True,
                  batch: int = 64) -> dict:
    """Agreement with the human scores of an ASAP jsonl file, per prompt, plus raw per-essay arrays.

    With cache=True the embeddings come from var/cache (cached_embed, tag = the file's stem), the same
    numbers the worker computes; otherwise the embedder in batches."""
    with open(jsonl_path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rows = rows[:limit] if limit else rows
    texts = [r["essay"] for r in rows]
    pids = [str(r["prompt"]) for r in rows]
    emb_of = target.embedder
    if cache:
        from workers.ml.embedding_cache import cached_embed

        emb = cached_embed(emb_of, texts, Path(jsonl_path).stem, verbose=False)
    else:
        emb = np.concatenate([emb_of.embed(texts[i:i + batch]) for i in range(0, len(texts), batch)] or
                             [np.zeros((0, emb_of.dim), dtype=np.float32)])
    rubric = {p: target.rubric(p) for p in sorted(set(pids), key=int)}
    requests = [GradeRequest(t, rubric[p], target.model(p)) for t, p in zip(texts, pids)]
    ms = target.grader.score(requests, emb)
    empty = np.array([is_empty(t) for t in texts], dtype=bool)
    human = np.array([float(r["score"]) for r in rows])
    pred = np.array([float(rubric[p]["scale"]["min"]) if e else s for s, p, e in zip(ms.scores, pids, empty)])
    conf = np.where(empty, 0.0, np.array(ms.confidence, dtype=float))
    details = ms.details or [{} for _ in rows]
    rawc = np.where(empty, 0.0, np.array([d.get("raw_confidence", c) for d, c in zip(details, ms.confidence)], dtype=float))
    low = np.array(ms.unsure, dtype=bool) & ~empty  # the low-confidence review reason, as the service adds it
    per, hits = {}, np.zeros(len(rows), dtype=bool)
    for p in target.prompts:
        idx = np.array([i for i, q in enumerate(pids) if q == p], dtype=int)
        if not len(idx):
            continue
        lo, hi = _range(rubric[p]["scale"])
        tol = tolerance(lo, hi)
        h, s, c = human[idx], pred[idx], conf[idx]
        diff = np.abs(h - s)
        hit = diff <= tol
        hits[idx] = hit
        cm = np.zeros((hi - lo + 1, hi - lo + 1), dtype=int)
        np.add.at(cm, (h.astype(int) - lo, s.astype(int) - lo), 1)
        tq = {}
        for t in rubric[p].get("traits") or []:
            a, b = _range(t["scale"])
            ti = [k for k, i in enumerate(idx) if t["name"] in (rows[i].get("traits") or {})]
            if ti:
                tq[t["name"]] = round(qwk([rows[idx[k]]["traits"][t["name"]] for k in ti],
                                          [ms.traits[idx[k]][t["name"]] for k in ti], a, b), 4)
        per[p] = {
            "n": int(len(idx)), "qwk": round(qwk(h, s, lo, hi), 4),
            "exact": round(float((diff == 0).mean()), 4),
            "adjacent": round(float((diff <= max(1, tol)).mean()), 4), "tolerance": tol,
            "smd": round(smd(s, h), 4),
            "confusion": cm.tolist(), "range": [lo, hi], "trait_qwk": tq,
            "mean_trait_qwk": round(float(np.mean(list(tq.values()))), 4) if tq else None,
            "mean_confidence": round(float(c.mean()), 4), "median_confidence": round(float(np.median(c)), 4),
            "observed_agreement": round(float(hit.mean()), 4),
            "ece": round(ece(c, hit), 4), "ece_uncalibrated": round(ece(rawc[idx], hit), 4),
            "low_confidence_share": round(float(low[idx].mean()), 4),
        }
    trait_vals = [v for d in per.values() for v in d["trait_qwk"].values()]
    return {
        "model_version": target.version, "data": str(jsonl_path), "n": len(rows), "per_prompt": per,
        "mean_qwk": round(float(np.mean([d["qwk"] for d in per.values()])), 4) if per else float("nan"),
        "mean_trait_qwk": round(float(np.mean(trait_vals)), 4) if trait_vals else float("nan"),
        "ece": round(ece(conf, hits), 4), "ece_uncalibrated": round(ece(rawc, hits), 4),
        "mean_confidence": round(float(conf.mean()), 4) if len(conf) else float("nan"),
        "observed_agreement": round(float(hits.mean()), 4) if len(hits) else float("nan"),
        "low_confidence_share": round(float(low.mean()), 4) if len(conf) else 0.0,
        "arrays": {"human": human.tolist(), "pred": pred.tolist(), "confidence": conf.tolist(), "prompt": pids},
    }
