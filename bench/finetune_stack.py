"""What a district's `stack` fine-tune costs on this machine: 1,800 scored essays on a rubric of
1-5 by half points with five analytic traits (made from ASAP prompts 1 and 2, read from
../shared/data/asap/ at run time: their scores rescaled onto 1-5 by half points, so the recipe meets
a scale and a mix of essays it was never tuned on), run as the training task runs it
(workers/ml/training/methods.train: embedding with the worker's encoder, no cache; the stacked
recipe; the validation report). Prints the CPU's features, the seconds of each stage and the
validation figures. Target: <= 15 minutes for 1,800 essays on a 2-core CPU, embedding included.
Not part of `make bench`.

    python bench/finetune_stack.py [--n 1800] [--method stack] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import DATA, cpu_features  # noqa: E402

TRAITS = ("content", "organization", "word_choice", "sentence_fluency", "conventions")
RUBRIC = {"name": "District argument rubric (bench)", "scale": {"min": 1, "max": 5, "step": 0.5},
          "traits": [{"name": t, "scale": {"min": 1, "max": 5, "step": 0.5}} for t in TRAITS]}


def half_points(x: float, lo: float, hi: float) -> float:
    """A score on [lo, hi] onto 1-5 by half points."""
    return 1 + round((float(x) - lo) / (hi - lo) * 8) / 2


def examples(n: int) -> list[dict]:
    rubrics = json.loads((DATA / "rubrics.json").read_text())["prompts"]
    out = []
    for split in ("train", "dev"):
        for line in open(DATA / f"{split}.jsonl"):
            e = json.loads(line)
            p = str(e["prompt"])
            if p not in ("1", "2") or not set(TRAITS) <= set(e.get("traits") or {}):
                continue
            lo, hi = rubrics[p]["score"]
            out.append({"text": e["essay"], "score": half_points(e["score"], lo, hi),
                        "traits": {t: half_points(e["traits"][t], *rubrics[p]["traits"][t]) for t in TRAITS}})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} essays of prompts 1 and 2 have the five traits; asked for {n}")
    return out[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1800)
    ap.add_argument("--method", default="stack")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(cpu_features(), flush=True)
    from workers.ml.training.finetune import get_encoder
    from workers.ml.training.methods import train

    ex = examples(args.n)
    t0 = time.perf_counter()
    enc = get_encoder(512)
    load_s = time.perf_counter() - t0
    print(f"{len(ex)} essays; encoder {enc.name} ({enc.precision}) loaded in {load_s:.1f}s", flush=True)
    stages: list[tuple[float, str]] = []

    def report(d, force=False):
        if not stages or stages[-1][1] != d.get("stage"):
            stages.append((time.perf_counter(), d.get("stage")))

    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        trained = train({"method": args.method, "validation_fraction": 0.2, "seed": 13}, ex, RUBRIC, Path(tmp),
                        "mdl_bench", report=report)
        total = time.perf_counter() - t1
    m = trained.metrics
    marks = stages + [(t1 + total, "end")]
    per_stage = {s: round(marks[i + 1][0] - t, 1) for i, (t, s) in enumerate(marks[:-1])}
    print(f"method {trained.method}: {total:.0f}s in all ({total / 60:.1f} min; target <= 15 min) "
          f"= {per_stage}")
    print(f"validation (n={m['n_validation']}): holistic QWK {m['qwk']:.4f}, SMD {m['smd']:+.3f}, ECE "
          f"{m.get('ece', float('nan')):.3f}; traits " +
          ", ".join(f"{t} {v['qwk']:.3f}" for t, v in (m.get("traits") or {}).items()) +
          f" (mean {m.get('mean_trait_qwk', float('nan')):.4f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_features(), "n": len(ex), "seconds": round(total, 1),
                                               "stages": per_stage, "metrics": m}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
