"""Queue `lessons`: eduq.lesson(job_id) generates waiting lesson plans, batched across jobs;
eduq.follow_up(job_id) builds waiting follow-ups (each student's next steps), batched across jobs."""
from __future__ import annotations

from app.lifecycle.broker import FOLLOW_UP, LESSON, celery_app
from app.store.db import DB_ERRORS
from workers.runtime.followups import run_follow_ups
from workers.runtime.lessons import run_lessons


@celery_app.task(name=LESSON, bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def lesson(self, job_id: str) -> dict:
    return run_lessons(self, job_id)


@celery_app.task(name=FOLLOW_UP, bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def follow_up(self, job_id: str) -> dict:
    return run_follow_ups(self, job_id)
