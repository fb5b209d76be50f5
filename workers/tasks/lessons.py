"""Queue `lessons`: eduq.lesson(job_id) generates waiting lesson plans, batched across jobs."""
from __future__ import annotations

from app.lifecycle.broker import LESSON, celery_app
from app.store.db import DB_ERRORS
from workers.runtime.lessons import run_lessons


@celery_app.task(name=LESSON, bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def lesson(self, job_id: str) -> dict:
    return run_lessons(self, job_id)
