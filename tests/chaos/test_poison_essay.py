"""A poison essay that makes the model raise (injected by workers/runtime/faults.py): it is retried alone,
fails with a reason after EDUQ_GRADING_MAX_ATTEMPTS, and the other essays of its batch are graded."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from .conftest import assert_consistent, grading_body, wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

MARKER = "<<eduq-chaos-poison-7f3a>>"


def test_poison_essay_fails_alone_after_bounded_attempts(stack_factory, auth):
    st = stack_factory(worker_env={"EDUQ_FAULT_POISON_MARKER": MARKER, "EDUQ_GRADING_MAX_ATTEMPTS": "3"}, beat=False)
    body = grading_body(12, "p", poison_at=5, marker=MARKER)
    body["rubric"] = {**body["rubric"], "always_score": True}  # short texts: scored, never withheld, here
    r = requests.post(st.base + "/api/v1/grading-jobs", json=body, headers=auth, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    [view] = wait_all_finished(lambda: st.base, auth, [job["id"]], timeout=240).values()
    assert view["status"] == "succeeded", view
    assert view["progress"]["done"] == 12 and view["progress"]["failed"] == 1, view
    assert view["error"] and view["error"]["code"] == "items_failed"

    res = requests.get(f"{st.base}/api/v1/jobs/{job['id']}/results?limit=100", headers=auth, timeout=30).json()["results"]
    assert [x["essay_id"] for x in res] == [f"p-{i}" for i in range(12)]
    bad = res[5]
    assert bad["status"] == "failed" and bad["score"] is None
    assert "PoisonEssay" in bad["error"] and "after 3 attempt" in bad["error"], bad
    assert all(x["status"] == "graded" and x["score"] is not None for i, x in enumerate(res) if i != 5)

    from app.store.db import session_scope
    from app.store.tables import Essay

    with session_scope() as s:
        attempts = s.scalar(select(Essay.attempts).where(Essay.job_id == job["id"], Essay.position == 5))
    assert attempts == 3, "bounded: exactly EDUQ_GRADING_MAX_ATTEMPTS attempts"
    assert "grading its essays one by one" in st.worker.output()
    assert_consistent([job["id"]], expect_failed=1)
