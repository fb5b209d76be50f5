"""Callbacks at delivery (app/lifecycle/webhooks.py:deliver): the URL is checked again when it is sent,
and the request goes to the address that was checked. Only loopback receivers are ever contacted here;
non-public answers come from a stubbed resolver."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from app.lifecycle import callback_policy, webhooks
from app.store.db import session_scope
from app.store.tables import Job, Teacher, WebhookDelivery
from tests.conftest import free_port, make_teacher


def _finished_job(callback_url: str) -> str:
    tid, _ = make_teacher()
    with session_scope() as s:
        school = s.get(Teacher, tid).school_id
        job = Job(kind="grading", status="succeeded", teacher_id=tid, school_id=school, total=1, done=1,
                  callback_url=callback_url)
        s.add(job)
        s.flush()
        return job.id


def _deliveries(job_id):
    with session_scope() as s:
        return s.execute(select(WebhookDelivery.delivered, WebhookDelivery.status_code, WebhookDelivery.error)
                         .where(WebhookDelivery.job_id == job_id)).all()


def test_a_name_that_now_resolves_to_a_private_address_is_refused_at_delivery(pg_url, monkeypatch):
    job_id = _finished_job("http://rebind.example/hook")
    monkeypatch.setattr(callback_policy, "resolve", lambda host, port: ["10.0.0.8"])
    sent = []
    monkeypatch.setattr(webhooks, "post_pinned", lambda *a, **k: sent.append(a) or 200)
    out = webhooks.deliver(job_id, attempt=1)
    assert "non-public address (10.0.0.8)" in out["refused"] and not sent
    [(delivered, status, error)] = _deliveries(job_id)
    assert not delivered and status is None and error.startswith("refused: callback_url points at a non-public")


class _Receiver:
    def __init__(self):
        self.calls = []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                recv.calls.append((self.headers.get("Host"), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.timeout(60)
def test_an_allowlisted_loopback_receiver_gets_the_signed_callback_at_the_checked_address(pg_url, monkeypatch):
    recv = _Receiver()
    try:
        monkeypatch.setenv("EDUQ_CALLBACK_ALLOWLIST", "127.0.0.1/32")
        job_id = _finished_job(f"http://127.0.0.1:{recv.port}/hook?x=1")
        assert webhooks.deliver(job_id, attempt=1) == {"delivered": True, "attempt": 1}
        assert len(recv.calls) == 1 and recv.calls[0][0] == f"127.0.0.1:{recv.port}"
        assert b'"status":"succeeded"' in recv.calls[0][1]
        assert [tuple(r) for r in _deliveries(job_id)] == [(True, 204, None)]
    finally:
        recv.server.shutdown()


def test_without_the_allowlist_a_loopback_callback_is_never_contacted(pg_url, monkeypatch):
    recv = _Receiver()
    try:
        monkeypatch.delenv("EDUQ_CALLBACK_ALLOWLIST", raising=False)
        job_id = _finished_job(f"http://127.0.0.1:{recv.port}/hook")
        out = webhooks.deliver(job_id, attempt=1)
        assert "refused" in out and recv.calls == []
    finally:
        recv.server.shutdown()
