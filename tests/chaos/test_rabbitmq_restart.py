"""RabbitMQ as the broker, restarted while jobs are queued and running (rabbitmqctl stop_app, then
start_app): the quorum queues keep their messages across the restart, the worker reconnects by itself,
a job accepted while the broker is down (its publish failed) is re-published by the sweeper, and every
job finishes exactly once (checked in Postgres)."""
from __future__ import annotations

import time

import pytest
import requests

from .conftest import assert_consistent, grading_body, rabbitmq, rabbitmq_up, wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]


def test_rabbitmq_restart_loses_nothing(stack_factory, auth):
    st = stack_factory(broker="amqp", worker_env={"EDUQ_GRADING_MAX_BATCH": "8"})
    job_ids = []
    for k in range(8):
        r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(16, f"q{k}"), headers=auth, timeout=30)
        assert r.status_code == 202, r.text
        job_ids.append(r.json()["job"]["id"])
    deadline = time.time() + 120
    while time.time() < deadline:
        v = requests.get(f"{st.base}/api/v1/jobs/{job_ids[0]}", headers=auth, timeout=10).json()["job"]
        if v["progress"]["done"] >= 8:
            break
        time.sleep(0.2)
    last = requests.get(f"{st.base}/api/v1/jobs/{job_ids[-1]}", headers=auth, timeout=10).json()["job"]
    assert last["status"] == "queued", "the fault must hit while jobs are still queued"
    try:
        rabbitmq("stop_app")
        r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(10, "down"), headers=auth, timeout=90)
        assert r.status_code == 202, r.text  # accepted: Postgres has it; its publish failed
        job_ids.append(r.json()["job"]["id"])
        time.sleep(3)
    finally:
        rabbitmq("start_app")
        assert rabbitmq_up()
    r = requests.post(st.base + "/api/v1/grading-jobs", json=grading_body(10, "after"), headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    job_ids.append(r.json()["job"]["id"])
    views = wait_all_finished(lambda: st.base, auth, job_ids, timeout=360)
    assert all(v["status"] == "succeeded" for v in views.values()), views
    summary = assert_consistent(job_ids)
    assert summary["essays"] == 8 * 16 + 20
