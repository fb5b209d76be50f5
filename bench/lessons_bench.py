"""One-at-a-time vs batched lesson-plan generation.

    .venv/bin/python bench/lessons_bench.py [--n 8] [--rounds 3] [--max-batch 16] [--budget-scale 1.0] [--seed 0]

Both modes run the same engine code (`LessonEngine.generate`) on the same requests with
the same seeds and token budgets; the only difference is how many rows decode together:
  one-at-a-time  each plan alone, `max_batch=1`: one sequence decodes at a time
  batched        all plans in one call, `max_batch=16` (the engine's default): up to 16 rows (plan parts) decode
                 together, a finished row's slot is refilled by the next waiting row
Per-row sampling seeds depend on the request and part, not on the batch, so both modes
generate (near-)identical text; the bench counts identical plans. The machine may be
shared, so the modes are interleaved over rounds (order alternating) and the median of
the per-round ratios is reported with the load average. Tokens = generated (new) tokens;
wall time includes prompt prefill, parsing, checks (MiniLM) and part retries.
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
PHASES = ("prefill_s", "forward_s", "sample_s", "book_s", "cache_s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both modes")
    ap.add_argument("--max-batch", type=int, default=16, help="rows decoded together in batched mode (the engine's default)")
    ap.add_argument("--budget-scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plan-attempts", type=int, default=1,
                    help="plan-level regenerations (1 keeps both modes' work identical)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    import torch

    from workers.ml.lessons import LessonEngine

    t = time.perf_counter()
    eng = LessonEngine.load(budget_scale=args.budget_scale, max_plan_attempts=args.plan_attempts)
    load_s = time.perf_counter() - t
    reqs = [REQUESTS[i % len(REQUESTS)] for i in range(args.n)]
    eng.generate(reqs[:1], seed=args.seed + 999)  # warm-up (allocator, MiniLM, textstat caches)

    def add_gen(acc: dict, st: dict) -> None:
        for k, v in st.get("generation", {}).items():
            acc[k] = acc.get(k, 0) + v

    def one_at_a_time():
        t = time.perf_counter()
        tok = steps = prompt = 0
        per_plan, outs, gen = [], [], {}
        for r in reqs:
            t1 = time.perf_counter()
            outs += eng.generate([r], seed=args.seed, max_batch=1)
            per_plan.append(time.perf_counter() - t1)
            tok += eng.last_stats["new_tokens"]
            prompt += eng.last_stats["prompt_tokens"]
            steps += eng.last_stats["decode_steps"]
            add_gen(gen, eng.last_stats)
        return {"seconds": time.perf_counter() - t, "new_tokens": tok, "prompt_tokens": prompt,
                "decode_steps": steps, "single_plan_s": per_plan, "generation": gen}, outs

    def batched():
        t = time.perf_counter()
        outs = eng.generate(reqs, seed=args.seed, max_batch=args.max_batch)
        gen: dict = {}
        add_gen(gen, eng.last_stats)
        return {"seconds": time.perf_counter() - t, "new_tokens": eng.last_stats["new_tokens"],
                "prompt_tokens": eng.last_stats["prompt_tokens"],
                "decode_steps": eng.last_stats["decode_steps"], "generation": gen}, outs

    modes = {"one-at-a-time": one_at_a_time, f"batched ({args.max_batch})": batched}
    runs: dict = {k: [] for k in modes}
    last_out: dict = {}
    load_before = os.getloadavg()
    print(f"model {eng.model_version}  device {eng.lm.device}  dtype {eng.lm.model.dtype}  "
          f"torch threads {torch.get_num_threads()}  load {load_s:.1f}s  plans {args.n}  "
          f"budget_scale {args.budget_scale}  rounds {args.rounds}", flush=True)
    for rnd in range(args.rounds):
        order = list(modes.items())
        if rnd % 2:
            order.reverse()
        for name, fn in order:
            row, out = fn()
            row["loadavg_1m_after"] = os.getloadavg()[0]
            runs[name].append(row)
            last_out[name] = out
            print(f"round {rnd + 1}: {name:<14} {row['seconds']:7.1f} s  {row['new_tokens'] / row['seconds']:6.1f} tok/s"
                  f"  (load average 1 min {row['loadavg_1m_after']:.2f})", flush=True)
    load_after = os.getloadavg()

    names = list(modes)
    one, bat = names
    round_ratios = [a["seconds"] / b["seconds"] * (b["new_tokens"] / a["new_tokens"])
                    for a, b in zip(runs[one], runs[bat])]
    rows = {}
    for name in names:
        lst = runs[name]
        med = statistics.median(r["seconds"] for r in lst)
        first = lst[0]
        gen = {k: statistics.median(r["generation"].get(k, 0) for r in lst) for k in PHASES}
        rows[name] = {"seconds": med, "new_tokens": first["new_tokens"], "prompt_tokens": first["prompt_tokens"],
                      "decode_steps": first["decode_steps"], "tokens_per_s": first["new_tokens"] / med,
                      "plans_per_min": 60 * args.n / med, "all_seconds": [round(r["seconds"], 1) for r in lst],
                      "phases_s": gen}
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} (1/5/15 min)")
    print(f"{'mode':<15}{'wall s':>9}{'new tok':>9}{'prompt tok':>11}{'steps':>7}{'tok/s':>8}{'plans/min':>10}"
          f"   median seconds in: " + " ".join(p[:-2] for p in PHASES))
    for k, v in rows.items():
        print(f"{k:<15}{v['seconds']:>9.1f}{v['new_tokens']:>9}{v['prompt_tokens']:>11}{v['decode_steps']:>7}"
              f"{v['tokens_per_s']:>8.1f}{v['plans_per_min']:>10.2f}   "
              + " ".join(f"{v['phases_s'][p]:.1f}" for p in PHASES))
    ratio = statistics.median(round_ratios)
    print(f"ratio batched/one-at-a-time tokens/s: median of rounds {ratio:.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}x' for x in round_ratios)})")
    for k, v in rows.items():
        print(f"  {k} wall s per round: {v['all_seconds']}")
    single = [x for r in runs[one] for x in r["single_plan_s"]]
    print(f"single plan at max_batch 1: mean {sum(single) / len(single):.1f}s "
          f"(min {min(single):.1f}, max {max(single):.1f}); {args.n}-plan batch: median {rows[bat]['seconds']:.1f}s")
    t = time.perf_counter()
    eng.generate(reqs[:1], seed=args.seed, max_batch=args.max_batch)
    print(f"one plan alone at max_batch {args.max_batch} (its 10 parts decode together): "
          f"{time.perf_counter() - t:.1f}s, {eng.last_stats['new_tokens']} tokens")
    for name, out in last_out.items():
        passed = sum(1 for r in out if r["checks"].get("passed"))
        fb = sum(len(r["checks"].get("fallback_parts", [])) for r in out)
        print(f"{name} plans passing all checks: {passed}/{len(out)}; fallback parts: {fb}")
    same = sum(1 for a, b in zip(last_out[one], last_out[bat]) if a["markdown"] == b["markdown"])
    print(f"plans identical in both modes: {same}/{args.n}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "ratio_tokens_per_s_median": ratio, "round_ratios": round_ratios,
                       "runs": runs, "loadavg_before": load_before, "loadavg_after": load_after,
                       "identical_plans": same}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
