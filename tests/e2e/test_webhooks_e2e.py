"""Job callbacks end to end: signed POST on finish, retried with backoff, one record per attempt."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from sqlalchemy import select

from tests.conftest import LOOPBACK_RECEIVERS, RUBRIC, free_port, make_teacher, start_worker

pytestmark = pytest.mark.e2e
SECRET = "test-webhook-secret"


class Receiver:
    """A local HTTP endpoint that fails the first `fail_first` deliveries with a 503."""

    def __init__(self, fail_first: int):
        self.fail_first, self.calls = fail_first, []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recv.calls.append((dict(self.headers), body))
                self.send_response(503 if len(recv.calls) <= recv.fail_first else 200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture(scope="module")
def ops_worker(pg_url, redis_client, log_dir):
    proc = start_worker(log_dir, "webhooks", "ops", EDUQ_WEBHOOK_SECRET=SECRET, EDUQ_CALLBACK_ALLOWLIST=LOOPBACK_RECEIVERS)
    yield proc
    proc.stop()


def test_callback_signed_retried_and_recorded(live_api, grading_worker, ops_worker):
    recv = Receiver(fail_first=1)
    _, token = make_teacher()
    h = {"Authorization": f"Bearer {token}"}
    body = {"rubric": RUBRIC, "callback_url": recv.url,
            "essays": [{"id": "w1", "text": "School uniforms save money and time, so I support them. " * 5}]}
    job = requests.post(live_api + "/api/v1/grading-jobs", json=body, headers=h, timeout=30).json()["job"]
    deadline = time.time() + 180
    while time.time() < deadline and not any(True for _ in recv.calls[1:]):
        time.sleep(0.5)
    assert len(recv.calls) >= 2, f"expected a failed attempt and a retry, got {len(recv.calls)}"
    headers, raw = recv.calls[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Signature"], expected)
    payload = json.loads(raw)
    assert payload["job"]["id"] == job["id"] and payload["job"]["status"] == "succeeded"
    assert headers["X-EduQueue-Delivery"] == "2"
    from app.store.db import session_scope
    from app.store.tables import WebhookDelivery

    time.sleep(1)
    with session_scope() as s:
        rows = s.execute(select(WebhookDelivery.attempt, WebhookDelivery.status_code, WebhookDelivery.delivered)
                         .where(WebhookDelivery.job_id == job["id"]).order_by(WebhookDelivery.attempt)).all()
    assert [tuple(r) for r in rows] == [(1, 503, False), (2, 200, True)]
    recv.server.shutdown()
