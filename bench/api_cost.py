"""CPU of the API's two hottest requests, in process (the Flask app and its test client, no HTTP server):
a 30-essay POST /api/v1/grading-jobs and a status GET /api/v1/jobs/{id}, against a fresh Postgres database
and Redis (the publish is real). Prints ms of CPU and of wall time per request, and the CPU's features.

    python bench/api_cost.py [--posts 400] [--gets 2000] [--per-job 30]

Essay texts are read at run time from ../shared/data/asap/dev.jsonl (never copied), as scripts/load.py does.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import cpu_features  # noqa: E402
from scripts import load  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of fn(i) over n calls."""
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - c) / n * 1000, (time.perf_counter() - t) / n * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=400)
    ap.add_argument("--gets", type=int, default=2000)
    ap.add_argument("--per-job", type=int, default=30)
    a = ap.parse_args(argv)
    print(cpu_features(), flush=True)
    name = f"eduq_apicost_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    redis_url = os.environ.get("EDUQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.update(DATABASE_URL=url, CELERY_BROKER_URL=redis_url, EDUQ_BENCH_MODE="1", EDUQ_RATE_LIMIT="",
                      EDUQ_SUBMIT_RATE_LIMIT="", EDUQ_LOG_FORMAT="text")
    try:
        headers = load.prepare_db(dict(os.environ))  # migrated, and a teacher's Authorization header
        logging.disable(logging.INFO)  # the access log is a file write in production, not part of this figure
        from app.web import create_app

        client = create_app().test_client()
        warm = 20
        bodies = load.job_bodies(load.load_texts(), a.per_job * (a.posts + warm), a.posts + warm, "noop")

        def post(i: int) -> str:
            r = client.post("/api/v1/grading-jobs", json=bodies[i], headers={**headers, "Idempotency-Key": f"c{i}"})
            assert r.status_code == 202, r.get_data(as_text=True)[:300]
            return r.get_json()["job"]["id"]

        job_id = [post(i) for i in range(warm)][-1]
        post_cpu, post_wall = timed(lambda i: post(warm + i), a.posts)

        def get(_i: int) -> None:
            assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 200

        timed(get, 50)
        get_cpu, get_wall = timed(get, a.gets)
        print(f"POST /grading-jobs ({a.per_job} essays): {post_cpu:.2f} ms CPU, {post_wall:.2f} ms wall (n={a.posts})")
        print(f"GET /jobs/{{id}}: {get_cpu:.2f} ms CPU, {get_wall:.2f} ms wall (n={a.gets})")
    finally:
        drop_database(name)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
