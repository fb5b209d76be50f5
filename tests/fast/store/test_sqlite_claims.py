"""The embedded default (make demo) claims on SQLite: the fair order's SQLite branch (a window over the
active jobs instead of Postgres's LATERAL) deals a batch the same way. Fast: a file database."""
from __future__ import annotations

from datetime import timedelta

import pytest


@pytest.fixture()
def sqlite_db(tmp_path, monkeypatch):
    from app.store.db import reset_engine
    from app.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'claims.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    reset_engine()
    upgrade(url)
    yield url
    reset_engine()


def _job(teacher_id: str, n: int, age_s: float) -> str:
    from app.store.db import session_scope
    from app.store.tables import Essay, Job, Teacher, utcnow

    with session_scope() as s:
        t = s.get(Teacher, teacher_id)
        created = utcnow() - timedelta(seconds=age_s)
        job = Job(kind="grading", teacher_id=t.id, school_id=t.school_id, total=n, model="default", created_at=created,
                  rubric={"name": "r", "scale": {"min": 1, "max": 6, "step": 1}})
        s.add(job)
        s.flush()
        s.add_all(Essay(job_id=job.id, position=i, client_id=f"e{i}", text="t", created_at=created) for i in range(n))
        return job.id


def test_sqlite_claims_in_the_fair_order(sqlite_db):
    from app.lifecycle import claims
    from app.store.accounts import create_teacher
    from app.store.db import session_scope

    with session_scope() as s:
        a, _ = create_teacher(s, email="a@example.org", name="A", school="District A")
        b, _ = create_teacher(s, email="b@example.org", name="B", school="School B")
        a_id, b_id = a.id, b.id
    big = _job(a_id, 100, age_s=60)
    small = _job(b_id, 10, age_s=0)
    got: dict[str, int] = {}
    for it in claims.claim("grading", 32, 60, 3, worker="w").items:
        got[it.job_id] = got.get(it.job_id, 0) + 1
    assert got == {big: 22, small: 10}
