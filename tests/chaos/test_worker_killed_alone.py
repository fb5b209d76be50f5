"""A grading worker SIGKILLed mid-job with only the API and that one worker running (no worker_ops,
no beat), on Redis and on RabbitMQ: its unacked Redis message would come back only after the
visibility timeout (an hour), and nothing else would re-publish the job. The restarted worker, idle,
finds the job's claimable essays in Postgres itself (workers/runtime/idle_poll.py), so the job
finishes within the claim lease plus a few polls, every essay graded once."""
from __future__ import annotations

import signal
import time
import uuid

import pytest
import requests

from tests.conftest import start_worker

from .conftest import assert_consistent, grading_body, wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]
LEASE_S = 10


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_killed_worker_alone_its_job_finishes_without_sweeper_or_beat(stack_factory, auth, log_dir, broker):
    # nothing re-publishes from the sweeper within the test's time, and Redis keeps the dead message an hour
    # (RabbitMQ gives a dead consumer's message back at once: the new worker gets it, or finds the work itself)
    st = stack_factory(beat=False, broker=broker, worker_env={"EDUQ_IDLE_POLL_S": "1", "EDUQ_REPUBLISH_AFTER_S": "3600",
                                               "EDUQ_GRADING_LEASE_S": str(LEASE_S)})
    r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(240, f"alone-{uuid.uuid4().hex[:4]}"),
                      headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    deadline = time.time() + 300
    while time.time() < deadline:
        view = requests.get(st.base + job["links"]["self"], headers=auth, timeout=10).json()["job"]
        if view["progress"]["done"] > 0:
            break
        time.sleep(0.2)
    assert 0 < view["progress"]["done"] < view["progress"]["total"], view
    st.worker.kill(signal.SIGKILL)  # the worker's whole process group, mid-batch
    t_kill = time.time()
    done_at_kill = requests.get(st.base + job["links"]["self"], headers=auth, timeout=10).json()["job"]["progress"]
    # a new worker serving only `grading`: its start-up sweep goes to `maintenance`, which nobody serves
    worker = start_worker(log_dir, "grading", f"alone-{uuid.uuid4().hex[:4]}", **{
        **st.env, "EDUQ_IDLE_POLL_S": "1", "EDUQ_REPUBLISH_AFTER_S": "3600", "EDUQ_GRADING_LEASE_S": str(LEASE_S)})
    st.procs.append(worker)
    views = wait_all_finished(lambda: st.base, auth, [job["id"]], timeout=400)
    recovered_s = time.time() - t_kill
    assert views[job["id"]]["status"] == "succeeded", views
    if broker == "redis":  # with Redis only the idle poll can bring the work back within the test's time
        assert "idle worker found claimable grading work" in worker.output(), worker.output()[-3000:]
    summary = assert_consistent([job["id"]])
    print(f"\nworker killed at {done_at_kill['done']}/{done_at_kill['total']}; job finished {recovered_s:.1f}s later "
          f"(lease {LEASE_S}s); {summary}")
