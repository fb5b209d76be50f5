"""Agreement of a grader with human scores on ASAP-style JSON lines.

    python -m workers.ml.evaluation.evaluate --data ../shared/data/asap/dev.jsonl [--limit N] [--no-cache]

Each essay is graded against a rubric built from its prompt (rubrics.json next to the data):
the prompt's task text and its integer holistic range with step 1, so scores come back already
mapped onto the prompt's own integer scale. QWK per prompt, then the plain mean over prompts
(the ASAP convention). With cache=True the embeddings come from var/cache (same Encoder, same
settings) and go through the grading service (workers/ml/grading/service.py) like the worker's
batches, i.e. the same numbers, without re-encoding on every run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from workers.ml.stats import qwk


def load_rows(jsonl_path: str, limit: int | None = None) -> tuple[list[dict], dict]:
    path = Path(jsonl_path)
    with open(path) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rubrics = json.loads((path.parent / "rubrics.json").read_text())["prompts"]
    return (rows[:limit] if limit else rows), rubrics


def rubric_for(prompt: str, rubrics: dict) -> dict:
    lo, hi = rubrics[str(prompt)]["score"]
    return {"name": f"ASAP prompt {prompt}", "prompt": rubrics[str(prompt)]["task"],
            "scale": {"min": lo, "max": hi, "step": 1}}


def per_prompt_qwk(rows: list[dict], scores: list[float], rubrics: dict) -> dict:
    out = {}
    for p in sorted(rubrics, key=int):
        idx = [i for i, r in enumerate(rows) if str(r["prompt"]) == p]
        if idx:
            lo, hi = rubrics[p]["score"]
            out[p] = {"qwk": round(qwk([rows[i]["score"] for i in idx], [scores[i] for i in idx], lo, hi), 4),
                      "n": len(idx)}
    return out


def evaluate(grader, jsonl_path: str, limit: int | None = None, cache: bool = False, batch: int = 64) -> dict:
    """{"per_prompt": {prompt: {"qwk", "n"}}, "mean_qwk", "n", "seconds", "scores"}."""
    rows, rubrics = load_rows(jsonl_path, limit)
    texts = [r["essay"] for r in rows]
    rbs = [rubric_for(r["prompt"], rubrics) for r in rows]
    t0 = time.perf_counter()
    from workers.ml.grading.service import GradingService

    service = GradingService.over(grader.encoder, {"default": grader})
    if cache:
        from workers.ml.embedding_cache import cached_embed

        emb = cached_embed(grader.encoder, texts, Path(jsonl_path).stem)
        results = service.grade_with("default", texts, rbs, emb)
    else:
        results = []
        for i in range(0, len(texts), batch):
            results += service.grade_with("default", texts[i:i + batch], rbs[i:i + batch])
    secs = time.perf_counter() - t0
    scores = [r["score"] for r in results]
    per = per_prompt_qwk(rows, scores, rubrics)
    return {"per_prompt": per, "mean_qwk": round(float(np.mean([v["qwk"] for v in per.values()])), 4),
            "n": len(rows), "seconds": round(secs, 1), "scores": scores,
            "needs_review_share": round(float(np.mean([r["needs_review"] for r in results])), 4),
            "mean_confidence": round(float(np.mean([r["confidence"] for r in results])), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="QWK per prompt of the default grader")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[4] / "shared" / "data" / "asap" / "dev.jsonl"))
    ap.add_argument("--head", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-cache", action="store_true", help="re-encode in batches instead of reading var/cache")
    args = ap.parse_args(argv)
    from workers.ml.grading.default import DefaultGrader

    g = DefaultGrader.load(head_path=args.head)
    res = evaluate(g, args.data, args.limit, cache=not args.no_cache)
    print(f"{g.version} on {args.data} ({res['n']} essays, {res['seconds']}s, {g.encoder.precision})")
    for p, v in res["per_prompt"].items():
        print(f"  prompt {p}: QWK {v['qwk']:.4f} (n={v['n']})")
    print(f"  mean QWK {res['mean_qwk']:.4f}; needs_review {res['needs_review_share']:.1%}; "
          f"mean confidence {res['mean_confidence']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
