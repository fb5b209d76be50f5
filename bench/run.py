"""`make bench`: grading throughput and quality, three paths, one run, side by side.

Over the same ASAP dev essays (read from ../shared/data/asap/dev.jsonl at run time):
  naive     the plain Hugging Face loop: one essay at a time, fp32
  batched   the project's model path (GradingService.grade on worker-sized batches)
  platform  HTTP -> Postgres -> Redis -> Celery worker -> Postgres -> polling
and the same two in-process paths with the shipped per-prompt ASAP graders (models 'asap-N'):
  asap naive    one essay at a time, fp32 HF forward, then the grading service on those embeddings
  asap batched  GradingService.grade on worker-sized batches (the worker's path)
It prints essays/s, the ratio to the naive loop, and each path's mean QWK against the human scores,
then the compute ceiling (bench/ceiling.py): each path's encoder GFLOP/s as a share of this CPU's
measured fp32 matmul peak, and the most any fp32 path could gain over the naive loop here.
Targets: platform >= 2.0x naive; platform overhead <= 10% of batched; |QWK change| <= 0.005.
Then the compression table (bench/compression.py: every encoder variant with its refit heads, model path and
platform, ratio to the naive loop, dQWK, size, worker memory, the variant this machine serves; --no-compression
skips it). Then the lesson-plan benchmark (bench/lessons_bench.py: the llama.cpp engine against the retired decode
loop, one stream and eight plans at once, worker memory, 50 varied plans through the checks, the labelled
set; --no-lessons skips it).
    python bench/run.py [--per-prompt 50] [--json out.json] [--no-lessons]
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
    """always_score: the agreement is measured on every essay (a withheld score, null since the first-hour
    issue, would otherwise stop the QWK)."""
    lo, hi = rubrics[p]["score"]
    return {"name": f"ASAP prompt {p}", "prompt": rubrics[p]["task"], "scale": {"min": lo, "max": hi, "step": 1},
            "always_score": True}


def platform_scores(rows: list[dict], rubrics: dict, extra_env: dict | None = None,
                    stats: dict | None = None) -> tuple[float, list[float]]:
    """The sample through the whole platform (bench/platform_path.py), one grading job per prompt:
    (seconds from the first POST to the last result, each essay's score in the order of `rows`)."""
    from bench.platform_path import run_platform

    jobs, order = [], []
    for p in sorted(rubrics):
        idx = [i for i, r in enumerate(rows) if str(r["prompt"]) == p]
        jobs.append({"rubric": rubric_for(p, rubrics),
                     "essays": [{"id": str(rows[i]["essay_id"]), "text": rows[i]["essay"]} for i in idx]})
        order.append(idx)
    with tempfile.TemporaryDirectory() as tmp:
        secs, results = run_platform(jobs, Path(tmp), extra_env=extra_env, stats=stats)
    scores = [0.0] * len(rows)
    for idx, res in zip(order, results):
        for i, r in zip(idx, res):
            scores[i] = r["score"]
    return secs, scores


def mean_qwk(rows: list[dict], scores: list[float], rubrics: dict) -> float:
    from workers.ml.stats import qwk

    per = []
    for p in sorted(rubrics):
        idx = [i for i, r in enumerate(rows) if str(r["prompt"]) == p]
        if idx:
            lo, hi = rubrics[p]["score"]
            per.append(qwk([rows[i]["score"] for i in idx], [round(scores[i]) for i in idx], lo, hi))
    return sum(per) / len(per)


def cpu_features() -> str:
    """The CPU's model and the features the figures depend on (these machines change between sessions)."""
    model, flags = "unknown CPU", set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, val = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = val.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    has = {"AVX2": "avx2", "AVX-512": "avx512f", "AVX512-BF16": "avx512_bf16", "AMX": "amx_tile"}
    return f"CPU: {model}, {os.cpu_count()} cores; " + ", ".join(
        f"{name} {'yes' if flag in flags else 'no'}" for name, flag in has.items())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-prompt", type=int, default=50)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-platform", action="store_true")
    ap.add_argument("--no-lessons", action="store_true", help="skip the lesson-plan benchmark")
    ap.add_argument("--no-compression", action="store_true", help="skip the compression table")
    ap.add_argument("--lesson-plans", type=int, default=50, help="varied plans the lesson benchmark generates")
    args = ap.parse_args()
    import torch

    from bench.grading_paths import NaiveLoop, batched_path, service
    from workers.ml.device import choose_device, inference_dtype
    from workers.ml.grading.default import DefaultGrader

    rows, rubrics = sample(args.per_prompt)
    texts = [r["essay"] for r in rows]
    rbs = [rubric_for(str(r["prompt"]), rubrics) for r in rows]
    n = len(rows)
    dev = choose_device()
    print(cpu_features(), flush=True)
    print(f"{n} dev essays ({args.per_prompt} per prompt); device {dev}, precision {inference_dtype(dev)}, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    grader = DefaultGrader.load()
    service(grader).warmup("default")
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

    from bench.grading_paths import batched_asap, naive_asap, service
    from workers.ml.grading.asap import AsapGrader

    asap = AsapGrader.load(encoder=grader.encoder)
    service(asap).warmup("asap-1", asap.rubric("1"))
    pids = [str(r["prompt"]) for r in rows]
    naive_asap(naive, asap, texts[:2], pids[:2])  # warm-up
    t0 = time.perf_counter()
    asap_naive = [o["score"] for o in naive_asap(naive, asap, texts, pids)]
    t_asap_naive = time.perf_counter() - t0
    print(f"asap naive done in {t_asap_naive:.1f}s", flush=True)
    t0 = time.perf_counter()
    asap_batched = [o["score"] for o in batched_asap(asap, texts, pids, int(os.environ.get("EDUQ_GRADING_MAX_BATCH", 64)))]
    t_asap_batched = time.perf_counter() - t0
    print(f"asap batched done in {t_asap_batched:.1f}s", flush=True)
    from bench.ceiling import encoder_flops, matmul_peak, report, token_lengths

    flops = encoder_flops(token_lengths(naive.tok, texts), naive.model.config)
    peak = matmul_peak()
    asap_rows = [("asap graders, naive loop (1 essay, fp32)", t_asap_naive, mean_qwk(rows, asap_naive, rubrics)),
                 ("asap graders, batched model path", t_asap_batched, mean_qwk(rows, asap_batched, rubrics))]
    del asap

    if not args.skip_platform:
        del grader, naive  # free the cores' caches for the worker process
        # the full model here (the variants' table follows): the rows of this table compare like with like
        t_platform, plat_scores = platform_scores(rows, rubrics, {"EDUQ_ENCODER_VARIANT": "full"})
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
    # the bound under the ratios: the encoder's fp32 work per second against this CPU's matmul peak
    print()
    print("\n".join(report(flops, {"naive": t_naive, "batched": t_batched, "platform": table[-1][1]}
                           if len(table) == 3 else {"naive": t_naive, "batched": t_batched}, peak)))
    a_rate = n / t_asap_naive
    print(f"\n{'asap graders (per-prompt, shipped)':44} {'essays/s':>9} {'x naive':>8} {'mean QWK':>9} {'dQWK':>8}")
    for name, secs, q in asap_rows:
        print(f"{name:44} {n / secs:>9.1f} {n / secs / a_rate:>8.2f} {q:>9.4f} {q - asap_rows[0][2]:>+8.4f}")
    print(f"identical scores asap naive vs batched: "
          f"{sum(1 for a, b in zip(asap_naive, asap_batched) if a == b) / n * 100:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "encoder_gflop": flops / 1e9, "matmul_peak_gflops": peak, "paths": [
            {"name": nm, "seconds": s, "essays_per_s": n / s, "ratio": n / s / base_rate, "mean_qwk": q}
            for nm, s, q in table], "asap_paths": [
            {"name": nm, "seconds": s, "essays_per_s": n / s, "ratio": n / s / a_rate, "mean_qwk": q}
            for nm, s, q in asap_rows]}, indent=2))
    import subprocess

    if not args.no_compression:
        print("\ncompressed encoder variants (bench/compression.py), the same dev essays:", flush=True)
        cmd = [sys.executable, str(ROOT / "bench" / "compression.py"), "--per-prompt", str(args.per_prompt)]
        rc = subprocess.call(cmd + (["--skip-platform"] if args.skip_platform else []), cwd=ROOT)
        if rc:
            return rc
    if not args.no_lessons:
        print("\nlesson plans (bench/lessons_bench.py):", flush=True)
        rc = subprocess.call([sys.executable, str(ROOT / "bench" / "lessons_bench.py"), "--plans", str(args.lesson_plans)],
                             cwd=ROOT)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
