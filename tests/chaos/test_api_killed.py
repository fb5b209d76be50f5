"""The API process SIGKILLed during submissions. A client that got 202 finds its job; a client
that got no answer retries with its Idempotency-Key: exactly one job per key, whatever the
killed request had committed (nothing, or the job without its publish: the sweeper covers that)."""
from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from .conftest import assert_consistent, grading_body, wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]


def test_api_sigkilled_during_submissions(stack_factory, auth):
    st = stack_factory()
    accepted: dict[str, str] = {}  # key -> job id (answered 202/200)
    unanswered: dict[str, dict] = {}  # key -> body (no answer: connection reset/refused)
    lock = threading.Lock()
    stop = threading.Event()
    base = {"url": st.base}

    def client(c: int) -> None:
        i = 0
        while not stop.is_set():
            key, body = f"kill-{c}-{i}-{uuid.uuid4().hex[:6]}", grading_body(5, f"k{c}i{i}")
            i += 1
            try:
                r = requests.post(base["url"] + "/api/v1/grading-jobs", json=body, timeout=30,
                                  headers={**auth, "Idempotency-Key": key})
            except requests.RequestException:
                with lock:
                    unanswered[key] = body
                time.sleep(0.2)
                continue
            assert r.status_code == 202, r.text
            with lock:
                accepted[key] = r.json()["job"]["id"]

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(6)]
    for t in threads:
        t.start()
    time.sleep(3)
    st.api.kill(signal.SIGKILL)  # master and workers, mid-request
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert accepted and unanswered, (len(accepted), len(unanswered))

    base["url"] = st.restart_api()
    # a client that got 202 finds its job
    for jid in accepted.values():
        r = requests.get(f"{base['url']}/api/v1/jobs/{jid}", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["job"]["id"] == jid
    # a client that got no answer retries with the same key and body: 202 (never committed) or 200 (replay)
    retried: dict[str, str] = {}
    for key, body in unanswered.items():
        r = requests.post(base["url"] + "/api/v1/grading-jobs", json=body, timeout=30,
                          headers={**auth, "Idempotency-Key": key})
        assert r.status_code in (200, 202), r.text
        retried[key] = r.json()["job"]["id"]
        again = requests.post(base["url"] + "/api/v1/grading-jobs", json=body, timeout=30,
                              headers={**auth, "Idempotency-Key": key})
        assert again.status_code == 200 and again.json()["job"]["id"] == retried[key]
    key0, jid0 = next(iter(accepted.items()))
    all_keys = {**accepted, **retried}

    from app.store.db import session_scope
    from app.store.tables import Job

    with session_scope() as s:
        rows = dict(s.execute(select(Job.idempotency_key, func.count()).where(Job.idempotency_key.in_(list(all_keys)))
                              .group_by(Job.idempotency_key)).all())
        ids = dict(s.execute(select(Job.idempotency_key, Job.id).where(Job.idempotency_key.in_(list(all_keys)))).all())
    assert rows == {k: 1 for k in all_keys}, "exactly one job per Idempotency-Key"
    assert ids == all_keys
    assert jid0 == ids[key0]

    views = wait_all_finished(lambda: base["url"], auth, list(all_keys.values()), timeout=300)
    assert all(v["status"] == "succeeded" for v in views.values())
    assert_consistent(list(all_keys.values()))
