"""Teachers' overrides: the newest one of each essay is the score that counts."""
from __future__ import annotations

from sqlalchemy import select

from app.store.tables import ScoreOverride


def latest(s, essay_ids: list[str] | None = None, job_id: str | None = None) -> dict[str, ScoreOverride]:
    """essay row id -> its newest override, for the given essays or every essay of a job."""
    stmt = select(ScoreOverride).order_by(ScoreOverride.created_at, ScoreOverride.id)
    if job_id is not None:
        stmt = stmt.where(ScoreOverride.job_id == job_id)
    if essay_ids is not None:
        if not essay_ids:
            return {}
        stmt = stmt.where(ScoreOverride.essay_id.in_(essay_ids))
    out: dict[str, ScoreOverride] = {}
    for o in s.scalars(stmt):  # oldest first: the newest wins
        out[o.essay_id] = o
    return out
