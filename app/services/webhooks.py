"""Job callbacks: a POST of {"job": JobView} signed with HMAC-SHA256, on the webhooks queue,
retried with exponential backoff and jitter; every attempt is recorded in webhook_deliveries.

Signature: header `X-Signature: sha256=<hex of HMAC-SHA256(EDUQ_WEBHOOK_SECRET, raw body)>`,
plus `X-EduQueue-Job` and `X-EduQueue-Delivery` (attempt number). Verify with the raw body bytes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os

log = logging.getLogger("eduq.webhooks")
DEFAULT_SECRET = "eduq-dev-webhook-secret"


def secret() -> bytes:
    return os.environ.get("EDUQ_WEBHOOK_SECRET", DEFAULT_SECRET).encode()


def sign(body: bytes, key: bytes | None = None) -> str:
    return "sha256=" + hmac.new(key or secret(), body, hashlib.sha256).hexdigest()


def body_for(view: dict) -> bytes:
    return json.dumps({"job": view}, separators=(",", ":"), sort_keys=True).encode()


def enqueue(job_id: str) -> None:
    from workers.celery_app import celery_app

    try:
        celery_app.send_task("eduq.webhook", args=[job_id])
    except Exception as exc:  # the broker is down: the job's result is safe; log the lost callback
        log.warning("could not queue callback for %s: %s", job_id, type(exc).__name__)
