"""Entry point for worker processes:  celery -A workers.celery_app worker -Q grading -c 1

The Celery app itself is defined with the job lifecycle (app/lifecycle/broker.py), so the API can
publish job ids without importing any worker code; it loads the task modules of workers/tasks/."""
from __future__ import annotations

from app.lifecycle.broker import celery_app

app = celery_app  # `celery -A workers.celery_app` finds `app`
