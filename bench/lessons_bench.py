"""One-at-a-time vs batched lesson-plan generation.

    .venv/bin/python bench/lessons_bench.py [--n 8] [--repeats 3] [--budget-scale 1.0] [--seed 0]
    EDUQ_LESSON_DTYPE=fp32 .venv/bin/python bench/lessons_bench.py   # the old fp32 path

Both modes use the same engine, requests and seeds (per-row sampling seeds depend on
the request, not its batch position), so they generate near-identical text and the
token counts are comparable. Tokens = generated (new) tokens; the wall time includes
prompt prefill, parsing, checks (MiniLM) and retries.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
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
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved rounds of both modes (order alternates); medians are reported")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    from workers.lessons import LessonEngine

    t = time.perf_counter()
    eng = LessonEngine.load(budget_scale=args.budget_scale, max_plan_attempts=args.plan_attempts)
    load_s = time.perf_counter() - t
    reqs = [REQUESTS[i % len(REQUESTS)] for i in range(args.n)]
    eng.generate(reqs[:1], seed=args.seed + 999)  # warm-up (allocator, MiniLM, textstat caches)

    def one_at_a_time():
        t = time.perf_counter()
        tok = steps = prompt = 0
        per_plan, outs = [], []
        for r in reqs:
            t1 = time.perf_counter()
            outs += eng.generate([r], seed=args.seed)
            per_plan.append(time.perf_counter() - t1)
            tok += eng.last_stats["new_tokens"]
            prompt += eng.last_stats["prompt_tokens"]
            steps += eng.last_stats["decode_steps"]
        return {"seconds": time.perf_counter() - t, "new_tokens": tok, "prompt_tokens": prompt,
                "decode_steps": steps, "single_plan_s": per_plan}, outs

    def batched():
        t = time.perf_counter()
        res = eng.generate(reqs, seed=args.seed)
        return {"seconds": time.perf_counter() - t, "new_tokens": eng.last_stats["new_tokens"],
                "prompt_tokens": eng.last_stats["prompt_tokens"],
                "decode_steps": eng.last_stats["decode_steps"]}, res

    # The machine may be shared: interleave the modes (alternating which goes first) and
    # report medians, with the load average before and after.
    runs = {"one-at-a-time": [], "batched": []}
    res: dict = {}
    load_before = os.getloadavg()
    for rnd in range(args.repeats):
        order = [("one-at-a-time", one_at_a_time), ("batched", batched)]
        if rnd % 2:
            order.reverse()
        for name, fn in order:
            row, out = fn()
            row["tokens_per_s"] = row["new_tokens"] / row["seconds"]
            row["plans_per_min"] = 60 * args.n / row["seconds"]
            row["loadavg_1m"] = os.getloadavg()[0]
            runs[name].append(row)
            res[name] = out
            print(f"round {rnd + 1}: {name:<14} {row['seconds']:7.1f}s {row['tokens_per_s']:6.1f} tok/s "
                  f"(load {row['loadavg_1m']:.2f})", flush=True)
    load_after = os.getloadavg()
    rows = {}
    for name, lst in runs.items():
        med = statistics.median(r["seconds"] for r in lst)
        first = lst[0]
        rows[name] = {"seconds": med, "new_tokens": first["new_tokens"], "prompt_tokens": first["prompt_tokens"],
                      "decode_steps": first["decode_steps"], "tokens_per_s": first["new_tokens"] / med,
                      "plans_per_min": 60 * args.n / med, "all_seconds": [round(r["seconds"], 1) for r in lst]}
    ratio = rows["batched"]["tokens_per_s"] / rows["one-at-a-time"]["tokens_per_s"]
    wall_ratio = rows["one-at-a-time"]["seconds"] / rows["batched"]["seconds"]
    round_ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs["one-at-a-time"], runs["batched"])]
    single_plan_s = [x for r in runs["one-at-a-time"] for x in r["single_plan_s"]]

    import torch

    print(f"model {eng.model_version}  device {eng.lm.device}  torch threads {torch.get_num_threads()}  "
          f"dtype {getattr(eng.lm, 'dtype_name', '?')}  load {load_s:.1f}s  plans {args.n}  budget_scale {args.budget_scale}")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"{args.repeats} interleaved round(s), median wall time per mode")
    print(f"{'mode':<15}{'wall s':>9}{'new tok':>9}{'prompt tok':>11}{'steps':>7}{'tok/s':>8}{'plans/min':>10}")
    for k, v in rows.items():
        print(f"{k:<15}{v['seconds']:>9.1f}{v['new_tokens']:>9}{v['prompt_tokens']:>11}{v['decode_steps']:>7}"
              f"{v['tokens_per_s']:>8.1f}{v['plans_per_min']:>10.2f}")
    print(f"ratio batched/one-at-a-time (medians): tokens/s {ratio:.2f}x, wall time {wall_ratio:.2f}x; "
          f"per round: {', '.join(f'{x:.2f}x' for x in round_ratios)}")
    for k, v in rows.items():
        print(f"  {k} wall s per round: {v['all_seconds']}")
    print(f"single plan: mean {sum(single_plan_s) / len(single_plan_s):.1f}s "
          f"(min {min(single_plan_s):.1f}, max {max(single_plan_s):.1f}); "
          f"{args.n}-plan batch: {rows['batched']['seconds']:.1f}s")
    for name, out in res.items():
        passed = sum(1 for r in out if r["checks"].get("passed"))
        fb = sum(len(r["checks"].get("fallback_parts", [])) for r in out)
        print(f"{name} plans passing all checks: {passed}/{len(out)}; fallback parts: {fb}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "ratio_tokens_per_s": ratio, "ratio_wall": wall_ratio,
                       "round_ratios": round_ratios, "single_plan_s": single_plan_s,
                       "loadavg_before": load_before, "loadavg_after": load_after,
                       "dtype": getattr(eng.lm, "dtype_name", "?")}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
