"""Grade every essay of an ASAP-style file with the default and the shipped ASAP graders through the
grading service, and write what a teacher would get (score, traits, confidence, review reasons,
feedback, model version) to JSON; or compare two such files field by field. For refactors that must
not move a grade:

    .venv/bin/python scripts/grade_snapshot.py --data ../shared/data/asap/dev.jsonl --out var/before.json
    ... change the code ...
    .venv/bin/python scripts/grade_snapshot.py --data ../shared/data/asap/dev.jsonl --out var/after.json
    .venv/bin/python scripts/grade_snapshot.py --compare var/before.json var/after.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIELDS = ("score", "traits", "confidence", "review_reasons", "needs_review", "feedback", "model_version")


def snapshot(data: str, batch: int = 64) -> dict:
    from workers.ml.evaluation.asap_eval import rubric_of
    from workers.ml.evaluation.validity import load_rubrics
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.grading.interface import GradeRequest
    from workers.ml.grading.service import GradingService

    rows = [json.loads(line) for line in open(data) if line.strip()]
    rubrics = load_rubrics(data)
    default = DefaultGrader.load()
    asap = AsapGrader.load(encoder=default.encoder)
    service = GradingService.over(default.encoder, {"default": default, "asap-": asap})
    out: dict[str, list] = {"default": [], "asap": []}
    t0 = time.time()
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        pids = [str(r["prompt"]) for r in chunk]
        out["default"] += service.grade([GradeRequest(r["essay"], rubric_of(rubrics, p), "default")
                                         for r, p in zip(chunk, pids)])
        out["asap"] += service.grade([GradeRequest(r["essay"], {**asap.rubric(p), "prompt": rubrics[p].get("task")},
                                                   f"asap-{p}") for r, p in zip(chunk, pids)])
        print(f"{i + len(chunk)}/{len(rows)} essays, {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return out


def compare(a: dict, b: dict) -> int:
    differ = 0
    for grader in ("default", "asap"):
        x, y = a[grader], b[grader]
        if len(x) != len(y):
            print(f"{grader}: {len(x)} vs {len(y)} results")
            differ += 1
            continue
        for f in FIELDS:
            idx = [i for i in range(len(x)) if x[i].get(f) != y[i].get(f)]
            differ += bool(idx)
            print(f"{grader:8} {f:15} " + ("identical" if not idx else f"{len(idx)} of {len(x)} differ, first at {idx[0]}"))
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "asap" / "dev.jsonl"))
    ap.add_argument("--out")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*(json.loads(Path(p).read_text()) for p in args.compare))
    if not args.out:
        ap.error("--out or --compare is required")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(snapshot(args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
