"""Lesson plans: the llama.cpp engine against the retired transformers decode loop, in one run.

    .venv/bin/python bench/lessons_bench.py [--plans 50] [--legacy-single 2] [--json out.json] [--no-legacy]

Same machine, same run, same eight requests (``REQUESTS``):
  one stream    tokens/s of plans generated one at a time. Legacy: its ten parts decoded one sequence at a
                time (``max_batch=1``), over the first ``--legacy-single`` requests (it takes ~30 s a plan);
                new: each plan alone through ``LessonEngine.generate`` (its slots under the schema).
  eight at once all eight plans in one call: aggregate tokens/s (generated tokens / wall) and the time to
                the last plan. Legacy: ``max_batch=16`` (its default); new: the engine's default parallel.
  memory        peak RSS of a lessons worker process (the engine loaded, one plan generated), each in a
                fresh subprocess.
  quality       ``--plans`` generated plans over varied subjects, grades, durations and notes: schema-valid,
                passing every check without regeneration, needing review; then the checks on the labelled
                set (``python -m workers.ml.evaluation.lesson_checks``).
Targets (docs/lessons.md): one stream >= 5x, eight at once >= 2x tokens/s and >= 2x shorter to the last
plan, 50/50 schema-valid, >= 45 passing without regeneration, lessons worker memory <= half.
Tokens: generated tokens as each engine counts them (its own tokenizer: the same model's).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

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

_TOPICS = [
    ("Counterargument paragraphs", "English"), ("Main idea and supporting details", "Reading"),
    ("Persuasive letters", "English"), ("Similes and metaphors", "English"), ("Plot structure", "Literature"),
    ("Multiplying decimals", "Math"), ("Area of triangles", "Math"), ("Probability", "Math"),
    ("Ratios and rates", "Math"), ("Place value", "Math"), ("States of matter", "Science"),
    ("Food chains", "Science"), ("Magnets", "Science"), ("The phases of the moon", "Science"),
    ("Simple machines", "Science"), ("Ancient Egypt", "History"), ("The Industrial Revolution", "History"),
    ("Maps and compass directions", "Geography"), ("Rivers and how they shape land", "Geography"),
    ("Color mixing", "Art"), ("Rhythm and beat", "Music"), ("Healthy sleep habits", "Health"),
    ("Passing a ball", "Physical Education"), ("Loops in block coding", "Computing"),
    ("Greetings and introductions", "Spanish"),
]
_NOTES = ["", "Two English learners.", "One student has an IEP for reading.",
          "A student with ADHD and several advanced students.", "One student uses a wheelchair.",
          "One student is deaf; another has dyslexia.", ""]


def varied_requests(n: int) -> list[dict]:
    """``n`` requests over the topic list, grades K-12, durations 15-90 and notes (a fixed, seeded mix)."""
    grades = ["K", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]
    out = []
    for i in range(n):
        topic, subject = _TOPICS[i % len(_TOPICS)]
        out.append({"topic": topic, "subject": subject, "grade_level": grades[(i * 5) % len(grades)],
                    "duration_minutes": (15, 30, 40, 45, 50, 60, 90)[(i * 3) % 7],
                    "notes": _NOTES[i % len(_NOTES)]})
    return out


def _rss_child(which: str) -> None:
    """In a fresh process: load the engine, generate one plan, print the peak RSS in MiB."""
    if which == "legacy":
        from bench.baselines.legacy_lessons.engine import LessonEngine as Legacy

        Legacy.load().generate(REQUESTS[:1], seed=0)
    else:
        from workers.ml.lessons import LessonEngine

        LessonEngine.load().generate(REQUESTS[:1], seed=0)
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_rss(which: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--rss", which], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def legacy_figures(n_single: int) -> dict:
    from bench.baselines.legacy_lessons.engine import LessonEngine as Legacy

    eng = Legacy.load(max_plan_attempts=1)
    eng.generate(REQUESTS[:1], seed=999)  # warm-up
    tok = 0
    t = time.perf_counter()
    for r in REQUESTS[:n_single]:
        eng.generate([r], seed=0, max_batch=1)
        tok += eng.last_stats["new_tokens"]
    one_s = time.perf_counter() - t
    t = time.perf_counter()
    eng.generate(REQUESTS, seed=0, max_batch=16)
    eight_s = time.perf_counter() - t
    return {"model": eng.model_version, "one_stream_tok_s": tok / one_s, "one_stream_plans": n_single,
            "eight_tok_s": eng.last_stats["new_tokens"] / eight_s, "eight_last_plan_s": eight_s,
            "eight_tokens": eng.last_stats["new_tokens"]}


def new_figures(eng) -> dict:
    eng.generate(REQUESTS[:1], seed=999)  # warm-up (the prefix cache, MiniLM)
    tok, t = 0, time.perf_counter()
    for r in REQUESTS:
        eng.generate([r], seed=0)
        tok += eng.last_stats["new_tokens"]
    one_s = time.perf_counter() - t
    t = time.perf_counter()
    outs = eng.generate(REQUESTS, seed=0)
    eight_s = time.perf_counter() - t
    return {"model": eng.model_version, "one_stream_tok_s": tok / one_s, "one_stream_plans": len(REQUESTS),
            "eight_tok_s": eng.last_stats["new_tokens"] / eight_s, "eight_last_plan_s": eight_s,
            "eight_tokens": eng.last_stats["new_tokens"], "eight_passed": sum(o["checks"]["passed"] for o in outs)}


def engine_ceiling(llm) -> dict:
    """What llama.cpp alone decodes for this model on this CPU at a plan's context length: the slot prompt of
    the first request, 128 tokens, greedy, no schema, one sequence and eight: the bound the plan figures sit
    under (generation is compute- and memory-bound on 2 cores; the checks add little)."""
    from workers.ml.lessons import slots
    from workers.ml.lessons.schema import normalize_request
    from workers.ml.llm.base import GenRequest

    base = slots.request_for(normalize_request(REQUESTS[0]), seed=0)
    one = GenRequest(messages=base.messages, max_tokens=128, temperature=0, repeat_penalty=1.0)
    out = {}
    for n in (1, 8):
        llm.generate([one] * n)
        t = time.perf_counter()
        res = llm.generate([one] * n)
        out[f"decode_{n}_tok_s"] = sum(r.completion_tokens for r in res) / (time.perf_counter() - t)
    out["prompt_tokens"] = res[0].prompt_tokens
    return out


def quality(eng, n: int) -> dict:
    import jsonschema

    from workers.ml.lessons.schema import LESSON_SCHEMA

    reqs = varied_requests(n)
    t = time.perf_counter()
    outs = eng.generate(reqs, seed=0)
    secs = time.perf_counter() - t
    validator = jsonschema.Draft202012Validator(LESSON_SCHEMA)
    valid = sum(1 for o in outs if o["lesson"] and not list(validator.iter_errors(o["lesson"])))
    first = sum(1 for o in outs if o["checks"]["passed"] and o["checks"]["attempts"] == 1)
    fails: dict = {}
    for o in outs:
        for r in o.get("review_reasons") or []:
            fails[r] = fails.get(r, 0) + 1
    repaired: dict = {}
    for o in outs:
        for k in o["checks"].get("repaired_slots") or []:
            repaired[k] = repaired.get(k, 0) + 1
    return {"plans": n, "schema_valid": valid, "passed_first_attempt": first,
            "passed": sum(o["checks"]["passed"] for o in outs), "needs_review": sum(o["needs_review"] for o in outs),
            "review_reasons": fails, "repaired_slots": repaired, "seconds": secs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plans", type=int, default=50)
    ap.add_argument("--legacy-single", type=int, default=2, help="plans the legacy loop generates one at a time")
    ap.add_argument("--no-legacy", action="store_true", help="skip the legacy baseline (no ratios)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--rss", choices=["legacy", "new"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss:
        _rss_child(args.rss)
        return 0

    from bench.run import cpu_features
    from workers.ml.lessons import LessonEngine

    print(cpu_features(), flush=True)
    t = time.perf_counter()
    eng = LessonEngine.load()
    print(f"new engine: {eng.model_version}  ({eng.llm.name}, loaded in {time.perf_counter() - t:.1f}s)", flush=True)
    new = new_figures(eng)
    new.update(engine_ceiling(eng.llm))
    print(f"new: {json.dumps(new)}", flush=True)
    q = quality(eng, args.plans)
    print(f"quality: {json.dumps(q)}", flush=True)
    del eng
    report: dict = {"new": new, "quality": q}
    report["new"]["peak_rss_mib"] = peak_rss("new")
    if not args.no_legacy:
        report["legacy"] = legacy_figures(args.legacy_single)
        report["legacy"]["peak_rss_mib"] = peak_rss("legacy")
        print(f"legacy: {json.dumps(report['legacy'])}", flush=True)
    lab = subprocess.run([sys.executable, "-m", "workers.ml.evaluation.lesson_checks"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    report["labelled"] = {k: v for k, v in json.loads(lab.stdout)["leave_one_out"].items()
                          if k in ("bad_rejected", "bad_rejected_rate", "good_passed", "good_passed_rate")}

    n, L = report["new"], report.get("legacy")
    print(f"\n{'':<34}{'legacy (transformers)':>22}{'llama.cpp':>12}{'ratio':>9}  target")
    rows = [("one stream, tokens/s", "one_stream_tok_s", ">= 5x", False),
            ("eight at once, tokens/s", "eight_tok_s", ">= 2x", False),
            ("eight at once, s to the last plan", "eight_last_plan_s", ">= 2x shorter", True),
            ("lessons worker peak RSS, MiB", "peak_rss_mib", "<= 0.5x", True)]
    for label, key, target, lower in rows:
        lv = L[key] if L else float("nan")
        ratio = (lv / n[key] if lower else n[key] / lv) if L else float("nan")
        shown = f"{ratio:.2f}x" + (" shorter" if lower and key != "peak_rss_mib" else "")
        if key == "peak_rss_mib" and L:
            shown = f"{n[key] / lv:.2f}x"
        print(f"{label:<34}{lv:>22.1f}{n[key]:>12.1f}{shown:>14}  {target}")
    print(f"llama.cpp alone on this CPU, {n['prompt_tokens']}-token prompt, greedy, no schema: one sequence "
          f"{n['decode_1_tok_s']:.1f} tokens/s, eight {n['decode_8_tok_s']:.1f} tokens/s (the bound the rows above sit under)")
    print(f"\n{q['plans']} varied plans in {q['seconds']:.1f}s: schema-valid {q['schema_valid']}/{q['plans']}, "
          f"passing every check without regeneration {q['passed_first_attempt']}/{q['plans']} (target >= 45 of 50), "
          f"passing after regeneration {q['passed']}, needs_review {q['needs_review']}")
    print(f"  review reasons: {q['review_reasons']}\n  slots repaired with generic text: {q['repaired_slots']}")
    lb = report["labelled"]
    print(f"labelled set (leave-one-out threshold): bad rejected {lb['bad_rejected']} ({lb['bad_rejected_rate']:.0%}, "
          f"target >= 95%), good passed {lb['good_passed']} ({lb['good_passed_rate']:.0%}, target >= 90%)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
