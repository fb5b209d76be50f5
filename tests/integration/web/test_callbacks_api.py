"""A callback_url to a non-public address is a 422 naming the field, and nothing is queued. Only a
loopback URL is submitted (the validator refuses it before anything could be sent)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.store.db import session_scope
from app.store.tables import Job
from tests.conftest import RUBRIC


def test_loopback_callback_is_refused_at_submission(client, teacher, monkeypatch):
    monkeypatch.delenv("EDUQ_CALLBACK_ALLOWLIST", raising=False)
    with session_scope() as s:
        before = s.scalar(select(func.count()).select_from(Job))
    for path, body in [("/api/v1/grading-jobs", {"rubric": RUBRIC, "essays": [{"id": "a", "text": "An essay."}]}),
                       ("/api/v1/lesson-jobs", {"subject": "ELA", "grade": 7, "topic": "counterarguments",
                                                "duration_minutes": 45})]:
        r = client.post(path, json={**body, "callback_url": "http://127.0.0.1:6379/"}, headers=teacher["headers"])
        assert r.status_code == 422, (path, r.get_json())
        err = r.get_json()["error"]
        assert any(d["field"] == "callback_url" and "non-public address (127.0.0.1)" in d["message"]
                   for d in err["details"]), err
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == before
