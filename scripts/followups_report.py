"""Measure each student's next steps (workers/ml/followups) on real essays: the share that pass every
check, what fails, and the time per student on this CPU.

    python scripts/followups_report.py [--data ../shared/data/asap/dev.jsonl] [--n 100] [--examples]

Every (len/n)-th essay of the file, graded by its human scores as a teacher's scores (the follow-up reads
the scores that count; it never changes them), on its prompt's rubric from rubrics.json (holistic scale and
traits). The checks are the workers' own (checks.problems), with the other sampled essays of the same
prompt as "other students". Nothing of the essays is printed or written (their terms forbid copying them);
--examples prints follow-ups of the demo class (our own writing) instead.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rubric_of(spec: dict, name: str) -> dict:
    lo, hi = spec["score"]
    return {"name": name, "scale": {"min": lo, "max": hi, "step": 1},
            "traits": [{"name": t, "scale": {"min": a, "max": b, "step": 1}} for t, (a, b) in (spec.get("traits") or {}).items()]}


def main() -> int:
    from workers.ml.followups.build import build
    from workers.ml.followups.checks import problems

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/asap/dev.jsonl"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--examples", action="store_true")
    args = ap.parse_args()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    feats = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    print(f"CPU: {platform.processor() or platform.machine()}; features: {', '.join(feats) or 'none found'}")
    rows = [json.loads(line) for line in open(args.data)]
    rubrics = json.loads(Path(args.data).with_name("rubrics.json").read_text())["prompts"]
    sample = rows[:: max(1, len(rows) // args.n)][: args.n]
    by_prompt: dict[str, list[str]] = {}
    for r in sample:
        by_prompt.setdefault(str(r["prompt"]), []).append(r["essay"])
    passed, reasons, times, sizes = 0, Counter(), [], Counter()
    build("Warm the spell checker up with a first sentence of twenty words or so, about nothing in particular at all.",
          {"name": "w", "scale": {"min": 1, "max": 6}}, {"score": 3, "traits": {}})
    for r in sample:
        p = str(r["prompt"])
        rubric = rubric_of(rubrics[p], f"ASAP prompt {p}")
        scores = {"score": r["score"], "traits": dict(r.get("traits") or {})}
        t0 = time.perf_counter()
        fu = build(r["essay"], rubric, scores)
        found = problems(fu, r["essay"], rubric, [o for o in by_prompt[p] if o != r["essay"]])
        times.append(time.perf_counter() - t0)
        passed += not found
        sizes.update({f"{len(fu['exercises'])} exercises": 1, f"{len(fu['strengths'])} strengths": 1})
        for f in found:
            reasons[f.split(":", 1)[0]] += 1
    n = len(sample)
    print(f"{n} essays of {Path(args.data).name}: {passed} pass every check ({100 * passed / n:.0f} %)")
    print(f"failing checks: {dict(reasons.most_common()) or 'none'}")
    print(f"shape: {dict(sorted(sizes.items()))}")
    print(f"time per student (build + checks): median {1000 * statistics.median(times):.1f} ms, "
          f"p95 {1000 * sorted(times)[int(0.95 * (n - 1))]:.1f} ms, max {1000 * max(times):.1f} ms")
    if args.examples:
        demo = json.loads((ROOT / "app" / "demo" / "class_8b.json").read_text())
        for e in demo["essays"][:5]:
            fu = build(e["text"], demo["rubric"], {"score": 3, "traits": {"organization": 2, "conventions": 3}})
            print(f"\n--- {e['id']} (demo class, our own writing)\n{json.dumps(fu, indent=1)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
