"""Queue `webhooks`: eduq.webhook(job_id) delivers a finished job's callback, retried with backoff."""
from __future__ import annotations

from app.lifecycle.broker import WEBHOOK, celery_app
from app.lifecycle.webhooks import CallbackFailed, deliver
from app.store.db import DB_ERRORS


@celery_app.task(name=WEBHOOK, bind=True, acks_late=True, max_retries=8,
                 autoretry_for=(CallbackFailed,) + DB_ERRORS, retry_backoff=5, retry_backoff_max=3600, retry_jitter=True)
def webhook(self, job_id: str) -> dict:
    return deliver(job_id, attempt=self.request.retries + 1)
