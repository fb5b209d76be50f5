"""Per-token rate limits (Flask-Limiter on the real Redis) and CORS, each in its own app instance."""
from __future__ import annotations

import hashlib

import pytest

from tests.conftest import RUBRIC, make_teacher


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _submit(client, token: str, n: int = 0):
    return client.post("/api/v1/grading-jobs", headers=_h(token),
                       json={"rubric": RUBRIC, "essays": [{"id": f"e{n}", "text": "Uniforms help everyone focus."}]})


@pytest.fixture()
def tiny_app(pg_url, redis_client):
    from app.web import create_app

    return create_app({"TESTING": True, "EDUQ_RATE_LIMIT": "3/minute", "EDUQ_SUBMIT_RATE_LIMIT": "2/minute"})


def assert_429(resp):
    assert resp.status_code == 429, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "rate_limited"
    assert "limit" in body["error"]["message"].lower()
    assert isinstance(body["error"]["details"], list)
    retry = int(resp.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert resp.mimetype == "application/json"


def test_read_limit_answers_429_with_retry_after_and_other_tokens_are_unaffected(tiny_app, redis_client):
    client = tiny_app.test_client()
    _, tok_a = make_teacher()
    _, tok_b = make_teacher()
    for _ in range(3):
        assert client.get("/api/v1/jobs", headers=_h(tok_a)).status_code == 200
    assert_429(client.get("/api/v1/jobs", headers=_h(tok_a)))
    # the budget is per token across routes, not per route
    assert_429(client.get("/api/v1/jobs/job_nope", headers=_h(tok_a)))
    # another token has its own budget
    assert client.get("/api/v1/jobs", headers=_h(tok_b)).status_code == 200
    # service endpoints and the teacher page are never limited
    for path in ("/healthz", "/", "/app"):
        assert client.get(path, headers=_h(tok_a)).status_code == 200
    # counters live in Redis, keyed by the token's SHA-256, never the token itself
    digest = hashlib.sha256(tok_a.encode()).hexdigest()
    keys = [k.decode() for k in redis_client.keys("*eduq-rl*")]
    assert any(digest in k for k in keys), keys
    assert not any(tok_a in k for k in keys)


def test_submissions_have_their_own_lower_limit(tiny_app):
    client = tiny_app.test_client()
    _, tok = make_teacher()
    assert _submit(client, tok, 1).status_code == 202
    assert _submit(client, tok, 2).status_code == 202
    assert_429(_submit(client, tok, 3))
    # reads have their own budget, untouched by submissions
    assert all(client.get("/api/v1/jobs", headers=_h(tok)).status_code == 200 for _ in range(3))
    _, other = make_teacher()
    assert _submit(client, other, 1).status_code == 202


def test_without_a_token_the_key_is_the_remote_address(tiny_app):
    client = tiny_app.test_client()
    env = {"REMOTE_ADDR": "10.9.8.7"}
    for _ in range(3):
        assert client.get("/api/v1/jobs", environ_base=env).status_code == 401
    assert_429(client.get("/api/v1/jobs", environ_base=env))
    assert client.get("/api/v1/jobs", environ_base={"REMOTE_ADDR": "10.9.8.6"}).status_code == 401


def test_limits_can_be_switched_off(pg_url, redis_client):
    from app.web import create_app

    app = create_app({"TESTING": True, "EDUQ_RATE_LIMIT": "", "EDUQ_SUBMIT_RATE_LIMIT": ""})
    client = app.test_client()
    _, tok = make_teacher()
    assert all(client.get("/api/v1/jobs", headers=_h(tok)).status_code == 200 for _ in range(8))


def test_defaults_and_storage_choice(pg_url, monkeypatch):
    from flask import Flask

    from app.settings import load_settings
    from app.web import limits

    cfg = load_settings()
    assert cfg.rate_limit == "600/minute;20000/hour" and cfg.submit_rate_limit == "120/minute;2000/hour"
    assert cfg.cors_origins == () and cfg.retention_days == 365
    assert limits._storage_uri(Flask("x")).startswith("redis://")  # the test broker is Redis
    monkeypatch.setattr(limits, "settings", lambda: cfg.__class__(**{**cfg.__dict__, "broker_url": "filesystem://"}))
    assert limits._storage_uri(Flask("x")) == "memory://"


def test_cors_is_off_by_default_and_allows_only_configured_origins(pg_url, redis_client, client):
    from app.web import create_app

    _, tok = make_teacher()
    r = client.get("/api/v1/jobs", headers={**_h(tok), "Origin": "https://evil.example"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers

    app = create_app({"TESTING": True, "EDUQ_CORS_ORIGINS": "https://school.example, https://other.example"})
    c = app.test_client()
    pre = c.options("/api/v1/grading-jobs", headers={
        "Origin": "https://school.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == "https://school.example"
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
    r = c.get("/api/v1/jobs", headers={**_h(tok), "Origin": "https://school.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://school.example"
    assert "ETag" in r.headers.get("Access-Control-Expose-Headers", "")
    r = c.get("/api/v1/jobs", headers={**_h(tok), "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
