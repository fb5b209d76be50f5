"""docs/api.md, the API reference, names exactly the operations of the app's OpenAPI spec: each
heading like  ### `GET /api/v1/jobs/{job_id}`  there is one endpoint, and every operation of the spec
has one. Headings outside the spec (the service endpoints) must be routes the app serves.
Fast: the app is built in process, with no database or broker."""
from __future__ import annotations

import re

from tests.paths import ROOT

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HEADING = re.compile(r"^#{2,4}\s+`(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/[^`\s]*)`\s*$", re.M)
REFERENCE = ROOT / "docs" / "api.md"
SPEC_ITSELF = "/api/v1/openapi.json"  # served beside the spec's operations, not one of them


def documented(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in HEADING.finditer(text)]


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method.upper() in METHODS}


def undocumented(spec: dict, text: str) -> list[str]:
    """The spec's operations that the reference has no heading for, as 'METHOD /path'."""
    return [f"{m} {p}" for m, p in sorted(spec_operations(spec) - set(documented(text)))]


def not_in_spec(spec: dict, text: str) -> list[str]:
    """The reference's /api/v1 endpoints that the spec does not have."""
    ops = spec_operations(spec)
    return [f"{m} {p}" for m, p in documented(text)
            if p.startswith("/api/v1/") and p != SPEC_ITSELF and (m, p) not in ops]


def test_every_spec_operation_is_in_the_reference(openapi_spec):
    missing = undocumented(openapi_spec, REFERENCE.read_text())
    assert not missing, ("docs/api.md does not document these endpoints of the OpenAPI spec (add a "
                         "### `METHOD /path` section for each): " + ", ".join(missing))


def test_every_api_endpoint_in_the_reference_is_in_the_spec(openapi_spec):
    stale = not_in_spec(openapi_spec, REFERENCE.read_text())
    assert not stale, "docs/api.md documents endpoints that the OpenAPI spec does not have: " + ", ".join(stale)


def test_each_endpoint_is_documented_once():
    seen = documented(REFERENCE.read_text())
    assert len(seen) >= 10, f"docs/api.md has few endpoint headings: {seen}"
    repeated = sorted({f"{m} {p}" for m, p in seen if seen.count((m, p)) > 1})
    assert not repeated, f"docs/api.md documents these endpoints more than once: {repeated}"


def test_service_endpoints_in_the_reference_are_served(web_app, openapi_spec):
    ops = spec_operations(openapi_spec)
    routes: dict[str, set[str]] = {}
    for rule in web_app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(rule.methods or ())
    absent = [f"{m} {p}" for m, p in documented(REFERENCE.read_text())
              if (m, p) not in ops and m not in routes.get(p, set())]
    assert not absent, "docs/api.md documents endpoints the app does not serve: " + ", ".join(absent)


def test_the_checks_name_the_endpoint():
    spec = {"paths": {"/api/v1/jobs/{job_id}": {"get": {}, "delete": {}, "parameters": []}}}
    text = "## Jobs\n### `GET /api/v1/jobs/{job_id}`\ntext\n### `POST /api/v1/rubrics`\nnot `PUT /api/v1/x`\n"
    assert documented(text) == [("GET", "/api/v1/jobs/{job_id}"), ("POST", "/api/v1/rubrics")]
    assert undocumented(spec, text) == ["DELETE /api/v1/jobs/{job_id}"]
    assert not_in_spec(spec, text) == ["POST /api/v1/rubrics"]
