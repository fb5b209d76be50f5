"""End to end over HTTP: a real gunicorn API, real Celery worker processes with the real model,
real Postgres and Redis."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import make_teacher, start_worker

pytestmark = pytest.mark.e2e
DEMO = json.loads((Path(__file__).resolve().parents[2] / "app" / "demo" / "class_8b.json").read_text())


@pytest.fixture()
def auth(pg_url):
    _, token = make_teacher()
    return {"Authorization": f"Bearer {token}"}


def wait_finished(base, job, headers, timeout=240):
    deadline = time.time() + timeout
    etag = None
    while time.time() < deadline:
        h = dict(headers)
        if etag:
            h["If-None-Match"] = etag
        r = requests.get(base + job["links"]["self"] + "?wait=10", headers=h, timeout=30)
        if r.status_code == 200:
            etag = r.headers["ETag"]
            job = r.json()["job"]
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
        else:
            assert r.status_code == 304
    raise TimeoutError(job)


def all_results(base, job, headers):
    out, cursor = [], None
    while True:
        url = base + job["links"]["results"] + "?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = requests.get(url, headers=headers, timeout=30).json()
        out += page["results"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def on_scale(x, scale):
    steps = (x - scale["min"]) / scale.get("step", 1)
    return scale["min"] <= x <= scale["max"] and abs(steps - round(steps)) < 1e-9


def scored_or_withheld(res, scale, traits=None) -> bool:
    """A result's score (and each trait's) is on its scale, or null with a withholding reason first."""
    from workers.ml.grading.review import withheld_by

    if res["score"] is None:
        return (withheld_by(res["review_reasons"]) == res["review_reasons"][0]
                and all(v is None for v in res["traits"].values()))
    return on_scale(res["score"], scale) and all(on_scale(res["traits"][t["name"]], t.get("scale") or scale)
                                                 for t in traits or [])


def test_class_as_json_graded_end_to_end(live_api, grading_worker, auth):
    r = requests.post(live_api + "/api/v1/grading-jobs", json={"rubric": DEMO["rubric"], "essays": DEMO["essays"]},
                      headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_finished(live_api, r.json()["job"], auth)
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] == len(DEMO["essays"])
    assert job["started_at"] and job["finished_at"]
    results = all_results(live_api, job, auth)
    assert [x["essay_id"] for x in results] == [e["id"] for e in DEMO["essays"]]
    for res in results:
        assert scored_or_withheld(res, DEMO["rubric"]["scale"]), res
        assert set(res["traits"]) == {"organization", "conventions"}
        assert 0 <= res["confidence"] <= 1
        assert res["model_version"]
    by_id = {x["essay_id"]: x for x in results}
    # the edge cases of the class are flagged for a teacher
    short = min(DEMO["essays"], key=lambda e: len(e["text"].split()))
    assert by_id[short["id"]]["needs_review"] and by_id[short["id"]]["review_reasons"]
    assert by_id[short["id"]]["score"] is None  # the demo's shortest essay: too short to score
    # scores are not a constant: the strong essays outscore the weak ones (of those scored)
    longest = [e for e in sorted(DEMO["essays"], key=lambda e: len(e["text"].split())) if by_id[e["id"]]["score"] is not None]
    weak = [by_id[e["id"]]["score"] for e in longest[:4]]
    strong = [by_id[e["id"]]["score"] for e in longest[-3:]]
    assert sum(strong) / 3 > sum(weak) / 4
    assert sum(r["score"] is None for r in results) <= 5, [r["review_reasons"] for r in results]
    # CSV export: the same rows
    text = requests.get(live_api + job["links"]["results"] + "?format=csv", headers=auth, timeout=30).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["essay_id"] for row in rows] == [e["id"] for e in DEMO["essays"]]
    for row, res in zip(rows, results):  # a withheld score is a blank cell
        assert row["score"] == ("" if res["score"] is None else f"{res['score']:g}"), (row, res)


def test_class_as_csv_graded_end_to_end(live_api, grading_worker, auth):
    csv_path = Path(__file__).resolve().parents[2] / "app" / "demo" / "class_8b.csv"
    with open(csv_path, "rb") as fh:
        r = requests.post(live_api + "/api/v1/grading-jobs", headers={**auth, "Idempotency-Key": "csv-1"},
                          files={"file": ("class.csv", fh, "text/csv")}, data={"rubric": json.dumps(DEMO["rubric"])},
                          timeout=30)
    assert r.status_code == 202, r.text
    job = wait_finished(live_api, r.json()["job"], auth)
    assert job["status"] == "succeeded"
    results = all_results(live_api, job, auth)
    assert len(results) == 20 and all(scored_or_withheld(x, DEMO["rubric"]["scale"]) for x in results)
    assert results[0]["student_ref"] == DEMO["essays"][0]["student_ref"]


def test_burst_of_one_essay_jobs_is_batched(live_api, grading_worker, auth):
    before = len(grading_worker.output())
    essays = [e for e in DEMO["essays"]][:10]
    jobs: list[dict] = []
    lock = threading.Lock()

    def client(k):
        for i in range(10):
            e = essays[(k + i) % len(essays)]
            r = requests.post(live_api + "/api/v1/grading-jobs", headers=auth, timeout=30,
                              json={"rubric": DEMO["rubric"], "essays": [{"id": f"{k}-{i}", "text": e["text"]}]})
            assert r.status_code == 202
            with lock:
                jobs.append(r.json()["job"])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs) == 100
    for job in jobs:
        assert wait_finished(live_api, job, auth)["status"] == "succeeded"
    log = grading_worker.output()[before:]
    sizes = [int(line.split("size=")[1].split()[0]) for line in log.splitlines() if "grading batch size=" in line]
    assert sum(sizes) >= 100
    # 100 one-essay jobs in a few large forward passes, not 100
    assert len(sizes) <= 25, sizes
    assert max(sizes) >= 10, sizes


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def _result_counts(job_id: str) -> tuple[int, int, int]:
    from app.store.db import session_scope
    from app.store.tables import Essay, GradingResult

    with session_scope() as s:
        n_results = s.scalar(select(func.count()).select_from(GradingResult).where(GradingResult.job_id == job_id))
        n_distinct = s.scalar(select(func.count(func.distinct(GradingResult.essay_id))).where(GradingResult.job_id == job_id))
        n_essays = s.scalar(select(func.count()).select_from(Essay).where(Essay.job_id == job_id))
    return n_results, n_distinct, n_essays


@pytest.mark.parametrize("victim", ["child", "whole_worker"])
def test_worker_killed_mid_job_loses_nothing_and_writes_nothing_twice(live_api, grading_worker, auth, log_dir, victim):
    # a dedicated worker with small batches, so the job spans many batches
    env = dict(EDUQ_GRADING_MAX_BATCH="8", EDUQ_GRADING_LEASE_S="6", EDUQ_REPUBLISH_AFTER_S="3")
    # pause the shared worker so only the victim works on this job
    os.killpg(grading_worker.p.pid, signal.SIGSTOP)
    try:
        victim_proc = start_worker(log_dir, "grading,maintenance", f"victim-{victim}", **env)
        essays = [{"id": f"k{i}", "text": DEMO["essays"][i % 20]["text"]} for i in range(160)]
        r = requests.post(live_api + "/api/v1/grading-jobs", headers=auth, timeout=30,
                          json={"rubric": DEMO["rubric"], "essays": essays})
        job = r.json()["job"]
        deadline = time.time() + 120
        while time.time() < deadline:
            job = requests.get(live_api + job["links"]["self"], headers=auth, timeout=10).json()["job"]
            if job["progress"]["done"] >= 16:
                break
            time.sleep(0.1)
        assert 0 < job["progress"]["done"] < job["progress"]["total"], job
        if victim == "child":
            kids = _children(victim_proc.p.pid)
            assert kids
            for k in kids:
                os.kill(k, signal.SIGKILL)
            restarted = victim_proc  # the parent forks a new child; the message is re-queued
        else:
            victim_proc.kill(signal.SIGKILL)
            restarted = start_worker(log_dir, "grading,maintenance", f"restart-{victim}", **env)
        try:
            job = wait_finished(live_api, job, auth, timeout=240)
        finally:
            restarted.stop()
            victim_proc.stop()
    finally:
        os.killpg(grading_worker.p.pid, signal.SIGCONT)
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 160, "total": 160, "failed": 0}
    n_results, n_distinct, n_essays = _result_counts(job["id"])
    assert n_results == n_distinct == n_essays == 160
    assert len(all_results(live_api, job, auth)) == 160


def test_shipped_asap_grader_job_end_to_end(live_api, grading_worker, auth):
    """model 'asap-N': the shipped per-prompt grader brings its own rubric (the prompt's range and traits);
    a batch mixing it with default-model jobs is split between the two graders."""
    from app.store.grader_models import builtin_rubric

    own = builtin_rubric("asap-1")
    assert own and own["traits"], "the shipped ASAP graders must be in workers/ml/grading/artifacts/asap"
    bad = requests.post(live_api + "/api/v1/grading-jobs", json={"model": "asap-9", "essays": DEMO["essays"][:1]},
                        headers=auth, timeout=30)
    assert bad.status_code == 422 and "asap-9" in bad.json()["error"]["message"]
    other_scale = {**own, "scale": {"min": 1, "max": 6, "step": 1}}
    bad = requests.post(live_api + "/api/v1/grading-jobs",
                        json={"model": "asap-1", "rubric": other_scale, "essays": DEMO["essays"][:1]},
                        headers=auth, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "rubric"

    essays = DEMO["essays"][:6]
    jobs = []
    for body in ({"model": "asap-1", "essays": essays},
                 {"model": "asap-3", "essays": essays[:2]},
                 {"rubric": DEMO["rubric"], "essays": essays[:3]}):
        r = requests.post(live_api + "/api/v1/grading-jobs", json=body, headers=auth, timeout=30)
        assert r.status_code == 202, r.text
        jobs.append(r.json()["job"])
    done = [wait_finished(live_api, j, auth) for j in jobs]
    assert [j["status"] for j in done] == ["succeeded"] * 3, done
    for job, model in zip(done, ("asap-1", "asap-3")):
        rubric = builtin_rubric(model)
        results = all_results(live_api, job, auth)
        assert len(results) == job["progress"]["total"]
        for res in results:
            assert scored_or_withheld(res, rubric["scale"], rubric["traits"]), (model, res)
            assert set(res["traits"]) == {t["name"] for t in rubric["traits"]}
            assert 0 <= res["confidence"] <= 1 and res["model_version"].startswith("asap")
            assert res["feedback"] and all(f["comment"] for f in res["feedback"])
    default_results = all_results(live_api, done[2], auth)
    assert set(default_results[0]["traits"]) == {"organization", "conventions"}
    assert not default_results[0]["model_version"].startswith("asap")
