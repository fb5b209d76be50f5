"""The API remembers a token's teacher for EDUQ_AUTH_CACHE_S (app/web/auth.py): within it a request needs no
database lookup for its token; after it (or with 0) the token is looked up again, so a token removed from
the database stops working."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import delete

from app.settings import reset_settings
from app.store.db import session_scope
from app.store.tables import ApiToken
from app.web import auth
from tests.conftest import make_teacher


@pytest.fixture()
def cache_s(monkeypatch):
    def use(seconds: str) -> None:
        monkeypatch.setenv("EDUQ_AUTH_CACHE_S", seconds)
        reset_settings()
        auth.forget_tokens()

    yield use
    monkeypatch.undo()
    reset_settings()
    auth.forget_tokens()


def _used_then_removed(client) -> dict:
    """A new teacher's token, used once (200), then deleted from the database; returns its headers."""
    teacher_id, token = make_teacher()
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/jobs", headers=h).status_code == 200
    with session_scope() as s:
        s.execute(delete(ApiToken).where(ApiToken.teacher_id == teacher_id))
    return h


def test_a_removed_token_works_until_the_cache_expires_then_is_refused(client, cache_s):
    cache_s("0.5")
    h = _used_then_removed(client)
    assert client.get("/api/v1/jobs", headers=h).status_code == 200  # remembered
    time.sleep(0.6)
    assert client.get("/api/v1/jobs", headers=h).status_code == 401


def test_with_zero_every_request_is_looked_up(client, cache_s):
    cache_s("0")
    h = _used_then_removed(client)
    assert client.get("/api/v1/jobs", headers=h).status_code == 401


def test_a_wrong_token_is_never_remembered(client, cache_s):
    cache_s("5")
    h = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/jobs", headers=h).status_code == 401
    assert client.get("/api/v1/jobs", headers=h).status_code == 401
