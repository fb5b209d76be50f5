"""Queue `training`: eduq.train(job_id) fine-tunes under a Postgres lease with heartbeat."""
from __future__ import annotations

from app.lifecycle.broker import TRAIN, celery_app
from app.store.db import DB_ERRORS
from workers.runtime.training import run_training


@celery_app.task(name=TRAIN, bind=True, acks_late=True, max_retries=20,
                 autoretry_for=DB_ERRORS, retry_backoff=5, retry_backoff_max=120, retry_jitter=True)
def train(self, job_id: str) -> dict:
    return run_training(job_id)
