"""For each ASAP prompt: a fine-tune made through the API from train.jsonl (--method, default the API's
default, auto), then dev.jsonl graded through the API with that model; prints the holistic and trait
QWK on dev, the validation figures and the fine-tune job's wall time per prompt.

  python scripts/finetune_asap_report.py --base http://127.0.0.1:8000 --token eduq_...
  python scripts/finetune_asap_report.py --local [--method stack|head|auto] [--prompts 1,2]
      # --local: a throwaway Postgres DB + API + workers here

Essays are read from ../shared/data/asap/ at run time (never copied). Writes --out (JSON) too.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load(asap: Path, split: str, p: int) -> list[dict]:
    return [e for e in map(json.loads, open(asap / f"{split}.jsonl")) if e["prompt"] == p]


def rubric(asap: Path, p: int) -> dict:
    r = json.loads((asap / "rubrics.json").read_text())["prompts"][str(p)]
    return {"name": f"ASAP prompt {p}", "prompt": r["task"], "scale": {"min": r["score"][0], "max": r["score"][1], "step": 1},
            "traits": [{"name": k, "scale": {"min": v[0], "max": v[1], "step": 1}} for k, v in r["traits"].items()]}


def wait(base, h, job, timeout=3600):
    t0 = time.time()
    while job["status"] in ("queued", "running"):
        r = requests.get(base + job["links"]["self"] + "?wait=20", headers=h, timeout=60)
        if r.status_code != 200:  # 429 (rate limit) or a blip: back off and ask again
            time.sleep(float(r.headers.get("Retry-After", 2)))
            continue
        job = r.json()["job"]
        if time.time() - t0 > timeout:
            raise TimeoutError(job)
    return job


def grade_dev(base: str, h: dict, model: str, rb: dict, dev: list[dict]) -> tuple[float, dict]:
    """Grade the dev essays with `model` through the API (always_score: agreement on every essay);
    (holistic QWK, {trait: QWK})."""
    from workers.ml.stats import qwk

    r = requests.post(base + "/api/v1/grading-jobs", headers=h, timeout=300,
                      json={"model": model, "rubric": {**rb, "always_score": True},
                            "essays": [{"id": str(e["essay_id"]), "text": e["essay"]} for e in dev]})
    r.raise_for_status()
    gj = wait(base, h, r.json()["job"])
    res, cursor = [], None
    while True:
        page = requests.get(base + gj["links"]["results"] + "?limit=500" + (f"&cursor={cursor}" if cursor else ""),
                            headers=h, timeout=60).json()
        res += page["results"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    got = {x["essay_id"]: x for x in res}
    lo = rb["scale"]["min"]
    human = [int(e["score"] - lo) for e in dev]
    pred = [int(round(got[str(e["essay_id"])]["score"] - lo)) for e in dev]
    trait_qwk = {}
    for t in rb["traits"]:
        tlo, thi = t["scale"]["min"], t["scale"]["max"]
        have = [e for e in dev if t["name"] in (e.get("traits") or {})]
        trait_qwk[t["name"]] = round(qwk([int(e["traits"][t["name"]] - tlo) for e in have],
                                         [int(round(got[str(e["essay_id"])]["traits"][t["name"]] - tlo)) for e in have],
                                         0, int(thi - tlo)), 4)
    return round(qwk(human, pred, 0, int(rb["scale"]["max"] - lo)), 4), trait_qwk


def run(base: str, token: str, asap: Path, prompts: list[int], method: str | None = None,
        with_asap: bool = False) -> dict:

    h = {"Authorization": f"Bearer {token}"}
    rows = {}
    for p in prompts:
        rb = rubric(asap, p)
        traits = [t["name"] for t in rb["traits"]]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["text", "score", *traits])
        for e in load(asap, "train", p):
            w.writerow([e["essay"], e["score"], *[(e.get("traits") or {}).get(t, "") for t in traits]])
        form = {"rubric": json.dumps(rb), "name": f"ASAP {p} {method or 'auto'}", **({"method": method} if method else {})}
        r = requests.post(base + "/api/v1/fine-tune-jobs", headers=h, timeout=300, data=form,
                          files={"file": ("train.csv", buf.getvalue().encode(), "text/csv")})
        r.raise_for_status()
        job = wait(base, h, r.json()["job"])
        assert job["status"] == "succeeded", job
        from datetime import datetime

        wall = (datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
                - datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))).total_seconds()
        model = requests.get(base + job["links"]["results"], headers=h, timeout=30).json()["results"][0]["model"]
        dev = load(asap, "dev", p)
        dev_qwk, trait_qwk = grade_dev(base, h, model["id"], rb, dev)
        extra = {}
        if with_asap:  # the shipped grader of this prompt through the same path: the like-for-like baseline
            extra["asap_dev_qwk"], asap_traits = grade_dev(base, h, f"asap-{p}", rb, dev)
            extra["asap_dev_trait_qwk"] = asap_traits
        metrics = model["metrics"]
        rows[p] = {"dev_qwk": dev_qwk, "dev_trait_qwk": trait_qwk, **extra,
                   "method": model["method"], "validation_qwk": metrics["qwk"],
                   "validation_mean_trait_qwk": metrics.get("mean_trait_qwk"), "validation_ece": metrics.get("ece"),
                   "n_train": metrics["n_train"], "n_dev": len(dev), "fine_tune_wall_s": round(wall, 1),
                   "train_seconds": metrics.get("train_seconds"), "model": model["id"]}
        print(p, rows[p], flush=True)
    mean = round(sum(r["dev_qwk"] for r in rows.values()) / len(rows), 4)
    pairs = [q for r in rows.values() for q in r["dev_trait_qwk"].values()]
    out = {"prompts": rows, "mean_dev_qwk": mean, "mean_dev_trait_qwk": round(sum(pairs) / max(len(pairs), 1), 4),
           "method": method or "auto"}
    if with_asap:
        out["asap_mean_dev_qwk"] = round(sum(r["asap_dev_qwk"] for r in rows.values()) / len(rows), 4)
        ap = [q for r in rows.values() for q in r["asap_dev_trait_qwk"].values()]
        out["asap_mean_dev_trait_qwk"] = round(sum(ap) / max(len(ap), 1), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base")
    ap.add_argument("--token")
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--asap", default=str(ROOT.parent / "shared" / "data" / "asap"))
    ap.add_argument("--prompts", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--method", default=None, help="the fine-tune method (default: none sent, the API's auto)")
    ap.add_argument("--with-asap", action="store_true",
                    help="also grade dev with the shipped asap-N grader through the same path (the baseline)")
    ap.add_argument("--out", default="finetune_asap_report.json")
    a = ap.parse_args()
    asap = Path(a.asap) if Path(a.asap).exists() else Path("/work/shared/data/asap")
    prompts = [int(x) for x in a.prompts.split(",")]
    procs = []
    try:
        if a.local:
            import tempfile

            from tests import conftest as c

            name = f"eduq_report_{uuid.uuid4().hex[:8]}"
            url = c.create_database(name)
            var = tempfile.mkdtemp(prefix="eduq-report-")
            c.use_env(DATABASE_URL=url, CELERY_BROKER_URL="redis://127.0.0.1:6379/8", EDUQ_VAR_DIR=var)
            from app.store.migrate import upgrade

            upgrade(url)
            logs = Path(var)
            api, base = c.start_api(logs)
            procs = [api, c.start_worker(logs, "training", "training"), c.start_worker(logs, "grading,maintenance", "grading")]
            _, token = c.make_teacher()
        else:
            base, token = a.base, a.token
        report = run(base, token, asap, prompts, a.method, a.with_asap)
    finally:
        for p in procs:
            p.stop()
    Path(a.out).write_text(json.dumps(report, indent=1))
    print("| prompt | method | n_train | n_dev | validation QWK | validation trait QWK | validation ECE | dev QWK "
          "| dev trait QWK (mean) | fine-tune wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p, r in report["prompts"].items():
        tq = sum(r["dev_trait_qwk"].values()) / max(len(r["dev_trait_qwk"]), 1)
        print(f"| {p} | {r['method']} | {r['n_train']} | {r['n_dev']} | {r['validation_qwk']} | "
              f"{r['validation_mean_trait_qwk']} | {r['validation_ece']} | {r['dev_qwk']} | {tq:.4f} | {r['fine_tune_wall_s']} |")
    print(f"mean dev QWK {report['mean_dev_qwk']}; mean dev trait QWK over the prompt-trait pairs "
          f"{report['mean_dev_trait_qwk']}")
    if "asap_mean_dev_qwk" in report:
        print("shipped ASAP graders through the same path: " + ", ".join(
            f"{p} {r['asap_dev_qwk']}" for p, r in report["prompts"].items()) +
              f"; mean {report['asap_mean_dev_qwk']}, traits {report['asap_mean_dev_trait_qwk']}")


if __name__ == "__main__":
    main()
