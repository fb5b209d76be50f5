"""`make bench`: grading throughput and quality, three paths, one run, side by side.

Over the same ASAP dev essays (read from ../shared/data/asap/dev.jsonl at run time):
  naive     the plain Hugging Face loop: one essay at a time, fp32
  batched   the project's model path (DefaultGrader.grade on worker-sized batches)
  platform  HTTP -> Postgres -> Redis -> Celery worker -> Postgres -> polling
It prints essays/s, the ratio to the naive loop, and each path's mean QWK against the human scores.
Targets: platform >= 2.0x naive; platform overhead <= 10% of batched; |QWK change| <= 0.005.
    python bench/run.py [--per-prompt 50] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("EDUQ_ASAP_DIR", ROOT.parent / "shared" / "data" / "asap"))


def sample(per_prompt: int) -> tuple[list[dict], dict]:
    rubrics = json.loads((DATA / "rubrics.json").read_text())["prompts"]
    rows = [json.loads(line) for line in open(DATA / "dev.jsonl")]
    picked = []
    for p in sorted(rubrics):
        picked += [r for r in rows if str(r["prompt"]) == p][:per_prompt]
    return picked, rubrics


def rubric_for(p: str, rubrics: dict) -> dict:
    lo, hi = rubrics[p]["score"]
    return {"name": f"ASAP prompt {p}", "prompt": rubrics[p]["task"], "scale": {"min": lo, "max": hi, "step": 1}}


def mean_qwk(rows: list[dict], scores: list[float], rubrics: dict) -> float:
    from workers.grader.metrics import qwk

    per = []
    for p in sorted(rubrics):
        idx = [i for i, r in enumerate(rows) if str(r["prompt"]) == p]
        if idx:
            lo, hi = rubrics[p]["score"]
            per.append(qwk([rows[i]["score"] for i in idx], [round(scores[i]) for i in idx], lo, hi))
    return sum(per) / len(per)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-prompt", type=int, default=50)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-platform", action="store_true")
    args = ap.parse_args()
    import torch

    from bench.grading_paths import NaiveLoop, batched_path
    from workers.device import choose_device, inference_dtype
    from workers.grader.default import DefaultGrader

    rows, rubrics = sample(args.per_prompt)
    texts = [r["essay"] for r in rows]
    rbs = [rubric_for(str(r["prompt"]), rubrics) for r in rows]
    n = len(rows)
    dev = choose_device()
    print(f"{n} dev essays ({args.per_prompt} per prompt); device {dev}, precision {inference_dtype(dev)}, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    grader = DefaultGrader.load()
    grader.warmup()
    naive = NaiveLoop()
    naive.grade(grader, texts[:2], rbs[:2])  # warm-up

    table = []
    t0 = time.perf_counter()
    naive_out = naive.grade(grader, texts, rbs)
    t_naive = time.perf_counter() - t0
    naive_scores = [o["score"] for o in naive_out]
    table.append(("naive HF loop (1 essay, fp32)", t_naive, mean_qwk(rows, naive_scores, rubrics)))
    print(f"naive done in {t_naive:.1f}s", flush=True)

    t0 = time.perf_counter()
    batched_out = batched_path(grader, texts, rbs, int(os.environ.get("EDUQ_GRADING_MAX_BATCH", 64)))
    t_batched = time.perf_counter() - t0
    batched_scores = [o["score"] for o in batched_out]
    table.append(("batched model path", t_batched, mean_qwk(rows, batched_scores, rubrics)))
    print(f"batched done in {t_batched:.1f}s", flush=True)
    same = sum(1 for a, b in zip(naive_scores, batched_scores) if a == b) / n

    if not args.skip_platform:
        from bench.platform_path import run_platform

        del grader, naive  # free the cores' caches for the worker process
        jobs, order = [], []
        for p in sorted(rubrics):
            idx = [i for i, r in enumerate(rows) if str(r["prompt"]) == p]
            jobs.append({"rubric": rubric_for(p, rubrics),
                         "essays": [{"id": str(rows[i]["essay_id"]), "text": texts[i]} for i in idx]})
            order.append(idx)
        with tempfile.TemporaryDirectory() as tmp:
            t_platform, results = run_platform(jobs, Path(tmp))
        plat_scores = [0.0] * n
        for idx, res in zip(order, results):
            for i, r in zip(idx, res):
                plat_scores[i] = r["score"]
        table.append(("platform (HTTP->queue->worker->Postgres)", t_platform, mean_qwk(rows, plat_scores, rubrics)))

    base_rate = n / t_naive
    q0 = table[0][2]
    print()
    print(f"{'path':44} {'essays/s':>9} {'x naive':>8} {'mean QWK':>9} {'dQWK':>8}")
    for name, secs, q in table:
        print(f"{name:44} {n / secs:>9.1f} {n / secs / base_rate:>8.2f} {q:>9.4f} {q - q0:>+8.4f}")
    if len(table) == 3:
        overhead = 1 - (n / table[2][1]) / (n / table[1][1])
        print(f"\nplatform overhead vs batched model path: {overhead * 100:.1f}% of throughput")
    print(f"identical scores naive vs batched: {same * 100:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "paths": [
            {"name": nm, "seconds": s, "essays_per_s": n / s, "ratio": n / s / base_rate, "mean_qwk": q}
            for nm, s, q in table]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
