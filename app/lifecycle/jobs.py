"""Jobs: creation with idempotency, the public JobView, tenancy-scoped reads, cancel, publish."""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ApiError
from app.lifecycle.broker import TASK_FOR_KIND, celery_app
from app.lifecycle.webhooks import enqueue
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.tables import Essay, Job, LessonPlan, utcnow
from app.store.views import decode_cursor, encode_cursor, job_view

log = logging.getLogger("eduq.jobs")

FINISHED = ("succeeded", "failed", "cancelled")
FINISHED_PHRASE = {"succeeded": "has already succeeded", "failed": "has already failed",
                   "cancelled": "has already been cancelled"}  # "The job ..." in messages


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def scoped(stmt, who: Principal):
    """Tenancy: a teacher sees their own jobs; a school admin sees the school's."""
    if who.is_admin:
        return stmt.where(Job.school_id == who.school_id)
    return stmt.where(Job.teacher_id == who.teacher_id)


def get_job(s: Session, job_id: str, who: Principal, for_update: bool = False) -> Job:
    stmt = scoped(select(Job).where(Job.id == job_id), who)
    if for_update:
        stmt = stmt.with_for_update()
    job = s.scalar(stmt)
    if job is None:
        raise ApiError(404, f"No job {job_id!r} is visible to you.", "not_found")
    return job


def create_job(who: Principal, kind: str, *, body_hash: str, idempotency_key: str | None,
               fill: Callable[[Session, Job], None], model: str | None = None,
               rubric: dict | None = None, params: dict | None = None,
               callback_url: str | None = None, total: int = 0) -> tuple[dict, bool]:
    """Insert a job (with its `total` items) and its items in one transaction, then publish its id.
    fill(session, job) adds the items (a bulk insert: one statement however many there are).

    Returns (JobView, created). With an Idempotency-Key already used by this teacher: the same
    body returns the first job (created=False); another body is a 409. The key is looked up only when
    the insert meets it (the unique constraint on teacher and key): a new key costs no extra statement.
    """
    now = utcnow()
    try:
        with session_scope() as s:
            job = Job(kind=kind, status="queued", teacher_id=who.teacher_id, school_id=who.school_id,
                      idempotency_key=idempotency_key, request_hash=body_hash, model=model,
                      rubric=rubric, params=params, callback_url=callback_url, total=total,
                      created_at=now, updated_at=now, published_at=now, publish_count=1)
            s.add(job)
            s.flush()
            fill(s, job)
            view = job_view(job)
    except IntegrityError:
        if idempotency_key:  # the key was used before (or a concurrent request with it won the race)
            replay = _replay(who, idempotency_key, body_hash)
            if replay is not None:
                return replay, False
        raise
    publish(view["id"], kind)
    return view, True


def _replay(who: Principal, key: str, body_hash: str) -> dict | None:
    with session_scope() as s:
        job = s.scalar(select(Job).where(Job.teacher_id == who.teacher_id, Job.idempotency_key == key))
        if job is None:
            return None
        if job.request_hash != body_hash:
            raise ApiError(409, "This Idempotency-Key was already used with a different request body.",
                           "idempotency_conflict")
        return job_view(job)


def publish(job_id: str, kind: str) -> bool:
    """Send the job id to its queue. Postgres stays the source of truth: if the broker is down
    the job is still accepted and the sweeper publishes it again later."""

    try:
        celery_app.send_task(TASK_FOR_KIND[kind], args=[job_id])
        return True
    except Exception as exc:  # broker down: the sweeper will pick it up
        log.warning("publish failed for %s: %s", job_id, type(exc).__name__)
        try:
            with session_scope() as s:
                s.execute(update(Job).where(Job.id == job_id).values(published_at=None))
        except Exception:
            log.warning("could not mark %s for republish", job_id)
        return False


def list_jobs(who: Principal, kind: str | None, status: str | None, limit: int, cursor: str | None):
    with session_scope() as s:
        stmt = scoped(select(Job), who)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        if status:
            stmt = stmt.where(Job.status == status)
        if cursor:
            c_at, c_id = decode_cursor(cursor)
            c_dt = datetime.fromisoformat(c_at)
            stmt = stmt.where(or_(Job.created_at < c_dt, and_(Job.created_at == c_dt, Job.id < c_id)))
        rows = s.scalars(stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = None
        if more:
            last = rows[-1]
            created = last.created_at if last.created_at.tzinfo else last.created_at.replace(tzinfo=timezone.utc)
            nxt = encode_cursor(created.isoformat(), last.id)
        return [job_view(j) for j in rows], nxt


def cancel(who: Principal, job_id: str) -> dict:
    with session_scope() as s:
        job = get_job(s, job_id, who, for_update=True)
        if job.status in FINISHED:
            raise ApiError(409, f"The job {FINISHED_PHRASE.get(job.status, 'has already finished')}; only queued or "
                                "running jobs can be cancelled.", "job_finished")
        now = utcnow()
        item = Essay if job.kind == "grading" else LessonPlan
        if job.kind in ("grading", "lesson"):
            s.execute(update(item).where(item.job_id == job.id, item.status.in_(("pending", "claimed")))
                      .values(status="cancelled", claimed_by=None, claimed_until=None))
        job.status = "cancelled"
        job.finished_at = now
        job.updated_at = now
        job.version += 1
        s.flush()
        view = job_view(job)
        callback = bool(job.callback_url)
    if callback:

        enqueue(job_id)
    return view
