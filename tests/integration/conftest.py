"""Fixtures of the integration tier (real Postgres and Redis, in process)."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from app.store.db import session_scope
from app.store.tables import Essay, LessonPlan


@pytest.fixture()
def clean_queue(pg_url):
    """The test owns the queues: older pending or claimed items of other tests are set aside."""
    with session_scope() as s:
        s.execute(update(Essay).where(Essay.status.in_(("pending", "claimed"))).values(status="cancelled"))
        s.execute(update(LessonPlan).where(LessonPlan.status.in_(("pending", "claimed"))).values(status="cancelled"))
    yield
