"""Queue `grading`: eduq.grade(job_id) grades pending essays, batched across jobs."""
from __future__ import annotations

from app.lifecycle.broker import GRADE, celery_app
from app.store.db import DB_ERRORS
from workers.runtime.grading import run_grading


@celery_app.task(name=GRADE, bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def grade(self, job_id: str) -> dict:
    return run_grading(self, job_id)
