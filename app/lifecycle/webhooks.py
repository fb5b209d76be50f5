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
import time
from urllib.parse import urlsplit

from app.lifecycle import callback_policy
from app.lifecycle.broker import WEBHOOK, celery_app
from app.settings import settings
from app.store.db import session_scope
from app.store.tables import Job, WebhookDelivery
from app.store.views import job_view

log = logging.getLogger("eduq.webhooks")
DEFAULT_SECRET = "eduq-dev-webhook-secret"  # documented dev default (Settings.webhook_secret)


def secret() -> bytes:
    return settings().webhook_secret.encode()


def sign(body: bytes, key: bytes | None = None) -> str:
    return "sha256=" + hmac.new(key or secret(), body, hashlib.sha256).hexdigest()


def body_for(view: dict) -> bytes:
    return json.dumps({"job": view}, separators=(",", ":"), sort_keys=True).encode()


def enqueue(job_id: str) -> None:
    try:
        celery_app.send_task(WEBHOOK, args=[job_id])
    except Exception as exc:  # the broker is down: the job's result is safe; log the lost callback
        log.warning("could not queue callback for %s: %s", job_id, type(exc).__name__)


class CallbackFailed(Exception):
    """The receiver did not answer 2xx; the webhook task retries with backoff."""


def post_pinned(url: str, address: str, body: bytes, headers: dict, timeout: float = 10.0) -> int:
    """POST to `url`, connecting to `address` (the one callback_policy checked), never to a fresh lookup;
    https still verifies the certificate against the URL's host name. No redirects are followed."""
    import certifi
    import urllib3

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t = urllib3.Timeout(connect=timeout, read=timeout)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=t, retries=False, server_hostname=host,
                                           assert_hostname=host, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=t, retries=False)
    try:
        host_header = host if parts.port is None else f"{host}:{port}"
        r = pool.urlopen("POST", path, body=body, headers={**headers, "Host": host_header}, redirect=False,
                         assert_same_host=False)
        return int(r.status)
    finally:
        pool.close()


def deliver(job_id: str, attempt: int) -> dict:
    """POST the job's view to its callback_url once and record the attempt (webhook_deliveries).
    The URL is checked again now (callback_policy: public addresses only, resolved at this moment) and
    the request goes to the address that was checked. Raises CallbackFailed when the receiver did not
    take it; a refused URL is recorded and not retried."""
    import urllib3
    from sqlalchemy import select

    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None or not job.callback_url:
            return {"skipped": True}
        if s.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id, WebhookDelivery.delivered.is_(True))):
            return {"already_delivered": True}
        url, body = job.callback_url, body_for(job_view(job))
    t0 = time.monotonic()
    status, error = None, None
    try:
        _host, _port, addresses = callback_policy.check(url)
    except ValueError as e:
        with session_scope() as s:
            s.add(WebhookDelivery(job_id=job_id, attempt=attempt, url=url, status_code=None, delivered=False,
                                  error=f"refused: callback_url {e}"[:500], duration_ms=0))
        log.warning("callback for %s refused: %s", job_id, e, extra={"job_id": job_id})
        return {"refused": str(e)}
    try:
        status = post_pinned(url, addresses[0], body, {
            "Content-Type": "application/json", "X-Signature": sign(body), "X-EduQueue-Job": job_id,
            "X-EduQueue-Delivery": str(attempt), "User-Agent": "EduQueue-Webhook/1"})
    except (urllib3.exceptions.HTTPError, OSError) as e:
        error = f"{type(e).__name__}: {e}"[:500]
    ok = status is not None and 200 <= status < 300
    with session_scope() as s:
        s.add(WebhookDelivery(job_id=job_id, attempt=attempt, url=url, status_code=status, error=error,
                              duration_ms=int((time.monotonic() - t0) * 1000), delivered=ok))
    if not ok:
        raise CallbackFailed(f"callback for {job_id} answered {status or error}")
    return {"delivered": True, "attempt": attempt}
