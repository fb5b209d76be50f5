"""Fair share with real processes: gunicorn and a Celery grading worker in bench mode (the model 'noop',
so the platform alone is timed), on a database and Redis of their own. One school's big job is
queued first; another school's class of 30 sent just after finishes while most of the big job still
waits: the class is dealt its share of each batch instead of waiting for the whole job."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import requests

from tests.conftest import BIN, ROOT, create_database, drop_database, start_api, start_worker

pytestmark = pytest.mark.e2e
RUBRIC = {"name": "Fair share (e2e)", "scale": {"min": 1, "max": 6, "step": 1}}
BIG = 6000


@pytest.fixture(scope="module")
def bench_stack(log_dir, redis_client):
    name = f"eduq_fair_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    env = {"DATABASE_URL": url, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12", "EDUQ_BENCH_MODE": "1",
           "EDUQ_MAX_ESSAYS_PER_JOB": str(BIG), "EDUQ_RATE_LIMIT": "100000/minute"}
    import redis

    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    full = {**__import__("os").environ, **env}
    subprocess.run([str(BIN / "eduq"), "db", "upgrade"], env=full, check=True, cwd=ROOT, capture_output=True)

    def teacher(school: str) -> dict:
        out = subprocess.run([str(BIN / "eduq"), "teachers", "create", "--email", f"{uuid.uuid4().hex[:8]}@example.org",
                              "--name", "T", "--school", school], env=full, check=True, cwd=ROOT,
                             capture_output=True, text=True)
        return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}

    api, base = start_api(log_dir, **env)
    worker = start_worker(log_dir, "grading", "fair", **env)
    try:
        yield base, teacher("District A"), teacher("School B")
    finally:
        worker.stop()
        api.stop()
        drop_database(name)


def submit(base, headers, n, tag):
    body = {"rubric": RUBRIC, "model": "noop", "essays": [{"id": f"{tag}{i}", "text": f"essay {i} of {tag}"} for i in range(n)]}
    r = requests.post(base + "/api/v1/grading-jobs", json=body, headers=headers, timeout=120)
    assert r.status_code == 202, r.text
    return r.json()["job"]


def get(base, headers, job):
    return requests.get(base + job["links"]["self"], headers=headers, timeout=30).json()["job"]


def test_a_class_behind_another_schools_big_job_is_not_held_back(bench_stack):
    base, a, b = bench_stack
    big = submit(base, a, BIG, "a")
    cls = submit(base, b, 30, "b")
    deadline = time.time() + 300  # a hang guard, not a speed check
    while time.time() < deadline:
        c = get(base, b, cls)
        if c["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    big_then = get(base, a, big)
    assert c["status"] == "succeeded", c
    # without fair share the class waits for all 6,000 essays; with it, for its share of a batch or two
    assert big_then["progress"]["done"] < BIG // 2, (big_then["progress"], c["progress"])
    res = requests.get(base + cls["links"]["results"], headers=b, timeout=30).json()["results"]
    assert len(res) == 30 and all(x["score"] == 3.0 and x["model_version"] == "noop" for x in res)
    while get(base, a, big)["status"] not in ("succeeded", "failed") and time.time() < deadline:
        time.sleep(0.5)
    assert get(base, a, big)["status"] == "succeeded"


def test_noop_needs_bench_mode(live_api):
    """The session's API runs without EDUQ_BENCH_MODE: the benchmark-only model is a 422 naming it."""
    from tests.conftest import make_teacher

    _, token = make_teacher()
    r = requests.post(live_api + "/api/v1/grading-jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                      json={"rubric": RUBRIC, "model": "noop", "essays": [{"id": "x", "text": "an essay"}]})
    assert r.status_code == 422 and "EDUQ_BENCH_MODE" in r.json()["error"]["message"], r.text
