"""The sweeper: Postgres is the source of truth, so jobs whose message may be lost (the publish
failed, Redis restarted without persistence, a worker died) are published again. A duplicate
message is harmless: work is claimed from Postgres, never taken from the message."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from app.lifecycle.jobs import publish
from app.lifecycle.training import reap_training_leases
from app.settings import settings
from app.store.db import DB_ERRORS, session_scope
from app.store.tables import Essay, FollowUp, Job, LessonPlan, utcnow

log = logging.getLogger("eduq.worker")
ITEMS = {"grading": Essay, "lesson": LessonPlan, "follow_up": FollowUp}


def republish_stale(kind: str, after_s: float, limit: int = 500) -> list[str]:
    """Mark and re-publish unfinished jobs of `kind` last published more than `after_s` ago (or never)
    that still have work to do. Grading and lesson jobs count only with claimable items; fine-tune
    jobs only while queued (a running one holds a lease, reaped separately)."""
    now = utcnow()
    stale = now - timedelta(seconds=after_s)
    with session_scope() as s:
        stmt = select(Job.id).where(Job.kind == kind, or_(Job.published_at.is_(None), Job.published_at < stale))
        if kind in ITEMS:
            Item = ITEMS[kind]
            claimable = select(Item.id).where(
                Item.job_id == Job.id,
                or_(Item.status == "pending", and_(Item.status == "claimed", Item.claimed_until < now))).exists()
            stmt = stmt.where(Job.status.in_(("queued", "running")), claimable)
        else:
            stmt = stmt.where(Job.status == "queued")
        ids = list(s.scalars(stmt.limit(limit)).all())
        if ids:
            s.execute(update(Job).where(Job.id.in_(ids)).values(published_at=now, publish_count=Job.publish_count + 1))
    for job_id in ids:
        publish(job_id, kind)
    return ids


def sweep() -> dict:
    cfg = settings()
    found = []
    for kind in ("grading", "lesson", "follow_up"):
        found += republish_stale(kind, cfg.republish_after_s)
    # a queued fine-tune waits for a free training worker for a long time; re-publish it less eagerly
    found += republish_stale("fine_tune", max(cfg.republish_after_s, 900), limit=100)
    try:
        reaped = reap_training_leases()
    except DB_ERRORS:
        raise
    except Exception:
        log.exception("reaping training leases failed")
        reaped = {}
    if found:
        log.info("sweeper re-published %d job(s)", len(found))
    return {"republished": len(found), "reaped": reaped.get("reaped", [])}
