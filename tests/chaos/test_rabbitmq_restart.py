"""RabbitMQ as the broker, restarted while jobs are queued and running (rabbitmqctl stop_app, then
start_app): the quorum queues keep their messages across the restart, the worker reconnects by itself,
a job accepted while the broker is down (its publish failed) is re-published by the sweeper, and every
job finishes exactly once (checked in Postgres)."""
from __future__ import annotations

import time

import pytest
import requests

from .conftest import assert_consistent, grading_body, rabbitmq, rabbitmq_up, submit_until_working, wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]


def test_rabbitmq_restart_loses_nothing(stack_factory, auth):
    st = stack_factory(broker="amqp", worker_env={"EDUQ_GRADING_MAX_BATCH": "8"})
    job_ids = submit_until_working(st, auth, "q")
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
