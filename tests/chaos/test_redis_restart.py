"""Redis restarted WITHOUT persistence while jobs are queued and running: every queued message
and the running task's unacked message are lost. Postgres is the source of truth: the running
task keeps claiming queued jobs' essays from Postgres while the broker is gone; a job accepted
while Redis is down (its publish failed) is re-published by the sweeper (beat every
EDUQ_SWEEP_INTERVAL_S) once Redis is back; the worker reconnects by itself, and every job
finishes exactly once."""
from __future__ import annotations

import time

import pytest
import requests

from .conftest import (
    assert_consistent,
    grading_body,
    redis_start,
    redis_stop,
    submit_until_working,
    wait_all_finished,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]


def test_redis_restart_without_persistence_loses_nothing(stack_factory, auth):
    st = stack_factory(worker_env={"EDUQ_GRADING_MAX_BATCH": "8"})
    job_ids = submit_until_working(st, auth, "r")
    try:
        redis_stop()  # the queued messages and the running task's unacked message are gone
        # The running grade task keeps claiming across jobs from Postgres: with no broker at all
        # it still finishes the 8 jobs already accepted.
        wait_all_finished(lambda: st.base, auth, job_ids, timeout=240)
        # The API still accepts work while the broker is down (published_at = NULL). Nothing is
        # running now, so only the sweeper can bring this job to a worker.
        r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(10, "down"), headers=auth, timeout=90)
        assert r.status_code == 202, r.text
        down = r.json()["job"]["id"]
        job_ids.append(down)
        time.sleep(2)
        v = requests.get(f"{st.base}/api/v1/jobs/{down}", headers=auth, timeout=10).json()["job"]
        assert v["status"] == "queued" and v["progress"]["done"] == 0, v
    finally:
        redis_start()  # empty: --save "" --appendonly no
    # the broker is back, empty: the sweeper (beat) re-publishes the job from Postgres
    wait_all_finished(lambda: st.base, auth, [down], timeout=180)
    assert "re-published" in st.worker.output(), "recovery must come from the sweeper"
    r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(10, "after"), headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    job_ids.append(r.json()["job"]["id"])

    views = wait_all_finished(lambda: st.base, auth, job_ids, timeout=300)
    assert all(v["status"] == "succeeded" for v in views.values()), views
    summary = assert_consistent(job_ids)
    assert summary["essays"] == 8 * 16 + 20
