"""Queue `maintenance`: eduq.sweep (re-publish jobs whose message may be lost, reap dead training
leases) and eduq.purge (the retention purge). Both are run by beat; a starting worker sends a sweep."""
from __future__ import annotations

from app.lifecycle import retention
from app.lifecycle import sweep as sweeper
from app.lifecycle.broker import PURGE, SWEEP, celery_app


@celery_app.task(name=SWEEP, acks_late=True, ignore_result=True)
def sweep() -> dict:
    return sweeper.sweep()


@celery_app.task(name=PURGE, acks_late=True, ignore_result=True)
def purge() -> dict:
    """Delete the content of finished jobs older than EDUQ_RETENTION_DAYS (app/lifecycle/retention.py)."""
    return retention.purge_expired()
