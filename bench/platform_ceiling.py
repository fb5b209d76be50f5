"""`make bench-platform`: the platform's own ceiling, with the benchmark-only grader `noop`.

HTTP submission -> Postgres -> Redis -> claim -> write -> polled result, and no model: the API and the
grading workers run with EDUQ_BENCH_MODE=1, and every job asks for the model `noop` (a valid result on
the rubric's scale, computed by nothing). Each run is scripts/load.py against a fresh database: its
clients submit 30-essay jobs (--per-job) and poll them (conditional GETs) until all are finished.

For each size (--essays, default 10,000 and 100,000) and each number of worker processes (--workers,
default 1, 2, 4) it prints:
  essays/s        essays / (the last job's finished_at - the first job's created_at), from Postgres
  wall s          from the first POST to the clients' last poll that saw its jobs finished
  stmts/essay     SQL statements every process sent (eduq_db_statements, summed over the processes
                  through prometheus_client's multiprocess files), per essay: all of them (the API's
                  include every poll of the clients), and the workers' alone (claims and writes)
  submit p50/p99  latency of POST /grading-jobs
  last result s   time to the last job's finished_at from the first submission
  stored/essay    bytes each essay occupies in Postgres after VACUUM (essays, results, jobs; rows, TOAST, indexes)
and checks nothing was lost or written twice. The CPU's features come first (these machines change).
Target on a 2-core machine: >= 2,000 essays/s with 30-essay jobs, and stmts/essay and essays/s flat
from 10,000 to 100,000 essays (no query that grows with the table).

    python bench/platform_ceiling.py [--essays 10000,100000] [--workers 1,2,4] [--per-job 30] [--clients 8] [--json F]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import cpu_features  # noqa: E402
from scripts import load  # noqa: E402


def statements(prom_dir: Path) -> dict[str, float]:
    """eduq_db_statements_total by program (gunicorn: the API, celery: the workers), summed over every
    process that wrote to the multiprocess folder."""
    from prometheus_client import CollectorRegistry, multiprocess

    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg, path=str(prom_dir))
    out: dict[str, float] = {}
    for m in reg.collect():
        for s in m.samples:
            if m.name == "eduq_db_statements" and s.name == "eduq_db_statements_total":
                out[s.labels["program"]] = out.get(s.labels["program"], 0.0) + s.value
    return out


def bytes_per_essay(db_url: str, n_essays: int) -> dict[str, int]:
    """What each essay occupies in Postgres after VACUUM (its row, TOAST and indexes): essays, results, jobs."""
    from sqlalchemy import create_engine, text

    eng = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("VACUUM (ANALYZE) essays, grading_results, jobs"))
        out = {t: round(c.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar() / max(n_essays, 1))
               for t in ("essays", "grading_results", "jobs")}
    eng.dispose()
    return out


def db_span(db_url: str) -> tuple[float, float]:
    """(seconds from the first job's creation to the last one's finish, ditto for the first job's finish)."""
    from sqlalchemy import create_engine, text

    eng = create_engine(db_url)
    with eng.connect() as c:
        row = c.execute(text("SELECT extract(epoch FROM max(finished_at) - min(created_at)), "
                             "extract(epoch FROM min(finished_at) - min(created_at)) FROM jobs")).one()
    eng.dispose()
    return float(row[0] or 0.0), float(row[1] or 0.0)


def one(n_essays: int, workers: int, per_job: int, clients: int, log_root: Path, poll_every: float,
        poll_wait: float = 0.0) -> dict:
    prom = Path(tempfile.mkdtemp(prefix="eduq-prom-"))
    seen: dict = {}

    def on_db(db_url: str, report: dict) -> None:
        seen["span"] = db_span(db_url)
        seen["bytes"] = bytes_per_essay(db_url, n_essays)

    n_jobs = max(1, n_essays // per_job)
    env = {"EDUQ_BENCH_MODE": "1", "PROMETHEUS_MULTIPROC_DIR": str(prom), "EDUQ_IDLE_POLL_S": "1"}
    rep = load.run(n_essays, n_jobs, clients, None, log_root / f"{n_essays}-{workers}", "redis://127.0.0.1:6379/13",
                   timeout_s=3600, poll_every_s=poll_every, model="noop", workers=workers, extra_env=env, on_db=on_db,
                   poll_wait_s=poll_wait)
    span, first = seen.get("span", (0.0, 0.0))
    by_program = statements(prom)
    stmts = sum(by_program.values())
    worker_stmts = sum(v for k, v in by_program.items() if "celery" in k)
    return {"essays": n_essays, "jobs": n_jobs, "workers": workers, "ok": rep["ok"], "lost": rep["lost"],
            "duplicated": rep["duplicated"], "essays_per_s": round(n_essays / span, 1) if span else None,
            "last_result_s": round(span, 1), "first_result_s": round(first, 2), "wall_s": rep["seconds"],
            "statements": int(stmts), "statements_per_essay": round(stmts / n_essays, 2),
            "worker_statements_per_essay": round(worker_stmts / n_essays, 3),
            "statements_by_program": {k: int(v) for k, v in by_program.items()},
            "submit_ms_p50": rep["submit_ms"]["p50"], "submit_ms_p99": rep["submit_ms"]["p99"],
            "poll_ms_p50": rep["poll_ms"]["p50"], "worker_rss_max_mib": rep["worker_rss"].get("max_mib"),
            "bytes_per_essay": seen.get("bytes", {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--essays", default="10000,100000")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--per-job", type=int, default=30)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--poll-wait", type=float, default=30.0,
                    help="clients long-poll each job (GET /jobs/{id}?wait=S); 0: rounds of conditional GETs instead")
    ap.add_argument("--poll-every", type=float, default=0.5, help="with --poll-wait 0: seconds between rounds")
    ap.add_argument("--json", type=Path, default=ROOT / "var" / "bench_platform.json")
    ap.add_argument("--log-dir", type=Path, default=ROOT / "var" / "bench-platform-logs")
    a = ap.parse_args(argv)
    print(cpu_features(), flush=True)
    rows = []
    print("| essays | worker processes | essays/s | last result s | wall s | stmts/essay (all / workers) "
          "| submit p50 / p99 ms | OK |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for n in [int(x) for x in a.essays.split(",")]:
        for w in [int(x) for x in a.workers.split(",")]:
            r = one(n, w, a.per_job, a.clients, a.log_dir, a.poll_every, a.poll_wait)
            rows.append(r)
            print(f"| {n} | {w} | {r['essays_per_s']} | {r['last_result_s']} | {r['wall_s']} | "
                  f"{r['statements_per_essay']} / {r['worker_statements_per_essay']} | "
                  f"{r['submit_ms_p50']} / {r['submit_ms_p99']} | {r['ok']} |", flush=True)
    for r in rows:
        b = r["bytes_per_essay"]
        print(f"stored per essay after VACUUM ({r['essays']} essays, {r['workers']} workers): "
              f"{sum(b.values())} bytes ({', '.join(f'{k} {v}' for k, v in b.items())})")
    best = max((r["essays_per_s"] or 0) for r in rows)
    print(f"best {best} essays/s (target >= 2000 on 2 cores, {a.per_job}-essay jobs)")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({"cpu": cpu_features(), "runs": rows}, indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
