"""One-at-a-time vs batched lesson-plan generation.

    .venv/bin/python bench/lessons_bench.py [--n 8] [--budget-scale 1.0] [--seed 0]

Both modes use the same engine, requests and seeds (per-row sampling seeds depend on
the request, not its batch position), so they generate near-identical text and the
token counts are comparable. Tokens = generated (new) tokens; the wall time includes
prompt prefill, parsing, checks (MiniLM) and retries.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REQUESTS = [
    {"topic": "Photosynthesis", "subject": "Science", "grade_level": "5", "duration_minutes": 45},
    {"topic": "Adding fractions with unlike denominators", "subject": "Math", "grade_level": "4", "duration_minutes": 60},
    {"topic": "The water cycle", "subject": "Science", "grade_level": "3", "duration_minutes": 40},
    {"topic": "Causes of World War I", "subject": "History", "grade_level": "10", "duration_minutes": 50},
    {"topic": "Writing a haiku", "subject": "English", "grade_level": "6", "duration_minutes": 30},
    {"topic": "Volcanoes", "subject": "Geography", "grade_level": "7", "duration_minutes": 45},
    {"topic": "Counting to 20", "subject": "Math", "grade_level": "K", "duration_minutes": 20},
    {"topic": "Linear equations", "subject": "Algebra", "grade_level": "9", "duration_minutes": 55},
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--budget-scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plan-attempts", type=int, default=1,
                    help="plan-level regenerations (1 keeps both modes' work identical)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    from workers.lessons import LessonEngine

    t = time.perf_counter()
    eng = LessonEngine.load(budget_scale=args.budget_scale, max_plan_attempts=args.plan_attempts)
    load_s = time.perf_counter() - t
    reqs = [REQUESTS[i % len(REQUESTS)] for i in range(args.n)]
    eng.generate(reqs[:1], seed=args.seed + 999)  # warm-up (allocator, MiniLM, textstat caches)

    rows = {}
    # one at a time
    t = time.perf_counter()
    tok = steps = prompt = 0
    single_plan_s = []
    for r in reqs:
        t1 = time.perf_counter()
        eng.generate([r], seed=args.seed)
        single_plan_s.append(time.perf_counter() - t1)
        tok += eng.last_stats["new_tokens"]
        prompt += eng.last_stats["prompt_tokens"]
        steps += eng.last_stats["decode_steps"]
    rows["one-at-a-time"] = {"seconds": time.perf_counter() - t, "new_tokens": tok, "prompt_tokens": prompt,
                             "decode_steps": steps}
    # batched
    t = time.perf_counter()
    res = eng.generate(reqs, seed=args.seed)
    rows["batched"] = {"seconds": time.perf_counter() - t, "new_tokens": eng.last_stats["new_tokens"],
                       "prompt_tokens": eng.last_stats["prompt_tokens"],
                       "decode_steps": eng.last_stats["decode_steps"]}
    for v in rows.values():
        v["tokens_per_s"] = v["new_tokens"] / v["seconds"]
        v["plans_per_min"] = 60 * args.n / v["seconds"]
    ratio = rows["batched"]["tokens_per_s"] / rows["one-at-a-time"]["tokens_per_s"]
    wall_ratio = rows["one-at-a-time"]["seconds"] / rows["batched"]["seconds"]

    import torch

    print(f"model {eng.model_version}  device {eng.lm.device}  torch threads {torch.get_num_threads()}  "
          f"load {load_s:.1f}s  plans {args.n}  budget_scale {args.budget_scale}")
    print(f"{'mode':<15}{'wall s':>9}{'new tok':>9}{'prompt tok':>11}{'steps':>7}{'tok/s':>8}{'plans/min':>10}")
    for k, v in rows.items():
        print(f"{k:<15}{v['seconds']:>9.1f}{v['new_tokens']:>9}{v['prompt_tokens']:>11}{v['decode_steps']:>7}"
              f"{v['tokens_per_s']:>8.1f}{v['plans_per_min']:>10.2f}")
    print(f"ratio batched/one-at-a-time: tokens/s {ratio:.2f}x, wall time {wall_ratio:.2f}x")
    print(f"single plan: mean {sum(single_plan_s) / len(single_plan_s):.1f}s "
          f"(min {min(single_plan_s):.1f}, max {max(single_plan_s):.1f}); "
          f"{args.n}-plan batch: {rows['batched']['seconds']:.1f}s")
    passed = sum(1 for r in res if r["checks"].get("passed"))
    print(f"batched plans passing all checks: {passed}/{len(res)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "ratio_tokens_per_s": ratio, "ratio_wall": wall_ratio,
                       "single_plan_s": single_plan_s}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
