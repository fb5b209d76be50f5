"""The Flask app built in process, for the tests of what it serves without a database or a broker:
its OpenAPI spec, the /api/docs page and its files (nothing here reaches Postgres or Redis)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def web_app():
    from app.web import create_app

    return create_app({"TESTING": True, "EDUQ_RATE_LIMIT": "", "EDUQ_SUBMIT_RATE_LIMIT": ""})


@pytest.fixture(scope="module")
def openapi_spec(web_app) -> dict:
    r = web_app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.get_json()
