"""The Alembic history and the ORM models describe the same schema; the essay-result rule holds."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert
from sqlalchemy.exc import IntegrityError

from app.store.tables import Base, Essay, GradingResult, Job
from tests.conftest import make_teacher


def test_autogenerate_finds_no_difference(pg_url):
    eng = create_engine(pg_url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    eng.dispose()
    assert diff == [], diff


def test_sqlite_migrates_too(tmp_path):
    from app.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    eng = create_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    eng.dispose()
    assert diff == [], diff


def test_one_result_per_essay_is_enforced(pg_url):
    from app.store.db import session_scope

    tid, _ = make_teacher()
    with session_scope() as s:
        from app.store.tables import Teacher

        t = s.get(Teacher, tid)
        job = Job(kind="grading", teacher_id=tid, school_id=t.school_id, total=1)
        s.add(job)
        s.flush()
        essay = Essay(job_id=job.id, position=0, client_id="a", text="x")
        s.add(essay)
        s.flush()
        ids = (job.id, essay.id)
    row = dict(job_id=ids[0], essay_id=ids[1], position=0, score=3, traits={}, confidence=0.5,
               needs_review=False, review_reasons=[], feedback=[], model_version="t")
    with session_scope() as s:
        s.execute(insert(GradingResult).values(id="res_1", **row))
    with pytest.raises(IntegrityError):
        with session_scope() as s:
            s.execute(insert(GradingResult).values(id="res_2", **row))
