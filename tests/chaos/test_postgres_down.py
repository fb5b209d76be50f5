"""Postgres stopped for 20 s during a burst of submissions and grading.

- The API answers 503 with Retry-After while it is down (checked on a submission and a poll).
- Clients retry with their Idempotency-Key: exactly one job per key.
- The worker's task fails with OperationalError and retries with backoff (autoretry_for DB errors);
  a batch whose write failed is never half-written (one transaction), its claims expire and are
  claimed again; everything finishes after Postgres is back.
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from .conftest import (
    assert_consistent,
    grading_body,
    pg_start,
    pg_stop,
    pg_up,
    wait_all_finished,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]

OUTAGE_S = 20


def test_postgres_down_20s_during_burst(stack_factory, auth):
    st = stack_factory(worker_env={"EDUQ_GRADING_MAX_BATCH": "8"})
    keys: dict[str, str] = {}  # idempotency key -> job id
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        i = 0
        while not stop.is_set():
            key, body = f"pg-{c}-{i}-{uuid.uuid4().hex[:6]}", grading_body(6, f"c{c}i{i}")
            i += 1
            for _attempt in range(120):  # retry this key until it is accepted
                try:
                    r = requests.post(st.base + "/api/v1/grading-jobs", json=body, timeout=30,
                                      headers={**auth, "Idempotency-Key": key})
                except requests.RequestException:
                    time.sleep(1)
                    continue
                with lock:
                    answers.append((r.status_code, r.headers.get("Retry-After")))
                if r.status_code in (200, 202):
                    with lock:
                        assert keys.get(key, r.json()["job"]["id"]) == r.json()["job"]["id"]
                        keys[key] = r.json()["job"]["id"]
                    break
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "service_unavailable"
                time.sleep(min(float(r.headers["Retry-After"]), 2.0))
            time.sleep(0.6)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(3)]
    for t in threads:
        t.start()
    polled_503 = None
    try:
        time.sleep(4)  # the burst is under way, the worker is grading
        assert keys
        some_job = next(iter(keys.values()))
        pg_stop()
        t_down = time.time()
        time.sleep(2)
        r = requests.get(f"{st.base}/api/v1/jobs/{some_job}", headers=auth, timeout=30)
        polled_503 = (r.status_code, r.headers.get("Retry-After"), r.headers.get("Content-Type"))
        time.sleep(max(0.0, OUTAGE_S - (time.time() - t_down)))
    finally:
        pg_start()
    time.sleep(5)  # submissions go on a little after it is back
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    assert polled_503 and polled_503[0] == 503 and polled_503[1], polled_503
    assert "json" in (polled_503[2] or "")
    codes = [a[0] for a in answers]
    assert 503 in codes, "no client saw the outage"
    assert all(a[1] for a in answers if a[0] == 503), "a 503 without Retry-After"
    assert pg_up()

    views = wait_all_finished(lambda: st.base, auth, list(keys.values()), timeout=300)
    assert all(v["status"] == "succeeded" for v in views.values())
    assert_consistent(list(keys.values()))
    # exactly one job per Idempotency-Key
    from app.store.db import session_scope
    from app.store.tables import Job

    with session_scope() as s:
        rows = s.execute(select(Job.idempotency_key, func.count()).where(Job.idempotency_key.in_(list(keys)))
                         .group_by(Job.idempotency_key)).all()
    assert len(rows) == len(keys) and all(n == 1 for _, n in rows)
