"""Security: token storage and comparison, tenant isolation over EVERY endpoint of the OpenAPI
spec, injection strings, body size and media type, secrets from the environment only."""
from __future__ import annotations

import hashlib
import inspect
import json
import re

import pytest
from sqlalchemy import select, text

from tests.conftest import RUBRIC, make_teacher
from tests.paths import ROOT as REPO

ROOT = REPO
SECRET_TEXT = "Tenant-A secret essay text 93b1e"
SECRET_RUBRIC = "Tenant-A private rubric 5c2d"


@pytest.fixture(scope="module")
def sec_app(pg_url, redis_client):
    from app.web import create_app

    return create_app({"TESTING": True, "EDUQ_RATE_LIMIT": "", "EDUQ_SUBMIT_RATE_LIMIT": ""})


@pytest.fixture()
def c(sec_app):
    return sec_app.test_client()


def hdr(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ----------------------------------------------------------------------------- tokens

def test_tokens_stored_only_as_sha256(pg_url):
    tid, token = make_teacher()
    from app.store.db import session_scope

    with session_scope() as s:
        dump = s.execute(text("SELECT row_to_json(t)::text FROM api_tokens t WHERE teacher_id = :t"), {"t": tid}).scalars().all()
        everything = s.execute(text("SELECT string_agg(row_to_json(t)::text, '') FROM teachers t")).scalar() or ""
    assert dump and all(token not in row for row in dump) and token not in everything
    assert any(hashlib.sha256(token.encode()).hexdigest() in row for row in dump)


def test_token_compared_in_constant_time(c, pg_url, monkeypatch):
    from app.web import auth

    src = inspect.getsource(auth.authenticate)
    assert "hmac.compare_digest" in src
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    _, token = make_teacher()
    assert c.get("/api/v1/jobs", headers=hdr(token)).status_code == 200
    assert calls, "the request's auth path did not use hmac.compare_digest"
    assert c.get("/api/v1/jobs", headers=hdr(token + "x")).status_code == 401
    assert c.get("/api/v1/jobs").status_code == 401


# ----------------------------------------------------------------------------- tenancy

@pytest.fixture()
def tenant_a(c, pg_url):
    """Teacher A with a grading job (one essay, one student_ref) and a model."""
    from app.store.db import session_scope
    from app.store.tables import GraderModel, Teacher

    tid, token = make_teacher(school="School A")
    rubric = {**RUBRIC, "name": SECRET_RUBRIC}
    r = c.post("/api/v1/grading-jobs", headers=hdr(token), json={
        "rubric": rubric, "essays": [{"id": "a-essay-1", "text": SECRET_TEXT, "student_ref": "a-student-77"}]})
    assert r.status_code == 202, r.get_json()
    with session_scope() as s:
        t = s.get(Teacher, tid)
        m = GraderModel(teacher_id=tid, school_id=t.school_id, name="A private model", rubric=rubric,
                        rubric_key="k" * 64, base_model="default", method="head", metrics={"qwk": 0.9})
        s.add(m)
        s.flush()
        model_id, email = m.id, t.email
    rub = c.post("/api/v1/rubrics", headers=hdr(token), json=rubric)
    assert rub.status_code == 201, rub.get_json()
    return {"token": token, "job_id": r.get_json()["job"]["id"], "model_id": model_id, "essay_id": "a-essay-1",
            "student_ref": "a-student-77", "email": email, "rubric_id": rub.get_json()["rubric"]["id"]}


def test_every_endpoint_answers_404_to_another_teacher(c, tenant_a):
    _, other = make_teacher(school="School B")
    spec = c.get("/api/v1/openapi.json").get_json()
    ids = {"job_id": tenant_a["job_id"], "model_id": tenant_a["model_id"], "essay_id": tenant_a["essay_id"],
           "student_ref": tenant_a["student_ref"], "rubric_id": tenant_a["rubric_id"]}
    def body_for(method, path):  # a valid body, so that only tenancy can refuse it
        if method != "post":
            return None
        return {"force": True} if path.endswith("/activate") else {"score": 3}
    checked = []
    for path, item in spec["paths"].items():
        params = re.findall(r"{(\w+)}", path)
        if not params:
            continue
        for method in ("get", "post", "delete", "put", "patch"):
            if method not in item:
                continue
            missing = [p for p in params if p not in ids]
            assert not missing, f"add an id of tenant A for {missing} ({method.upper()} {path})"
            url = path.format(**ids)
            r = c.open(url, method=method.upper(), headers=hdr(other), json=body_for(method, path))
            body = r.get_data(as_text=True)
            if path == "/api/v1/students/{student_ref}/progress":
                # a pseudonym unknown in the caller's tenancy: an empty progress, never A's drafts
                assert r.status_code == 200 and r.get_json()["assignments"] == [], body[:300]
                checked.append(f"{method.upper()} {path}")
                continue
            if path == "/api/v1/students/{student_ref}":
                # erasure is scoped to the caller's own data: it answers like an unknown pseudonym
                # (200, nothing deleted) and never touches or reveals A's essays
                assert r.status_code in (200, 404), (url, r.status_code, body[:300])
                if r.status_code == 200:
                    assert all(v == 0 for v in r.get_json()["deleted"].values()), body
                checked.append(f"{method.upper()} {path}")
                continue
            assert r.status_code == 404, (method, url, r.status_code, body[:300])
            assert r.get_json()["error"]["code"] == "not_found"
            for leak in (SECRET_TEXT, SECRET_RUBRIC, tenant_a["email"], "A private model", '"progress"', '"score"'):
                assert leak not in body, (method, url, leak)
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 8, checked
    # lists never show A's things either
    for url in ("/api/v1/jobs", "/api/v1/models"):
        body = c.get(url, headers=hdr(other)).get_data(as_text=True)
        assert tenant_a["job_id"] not in body and tenant_a["model_id"] not in body
    # and A still sees them (the 404s were tenancy, not absence; the student was not deleted)
    assert c.get(f"/api/v1/jobs/{tenant_a['job_id']}", headers=hdr(tenant_a["token"])).status_code == 200
    assert c.get(f"/api/v1/models/{tenant_a['model_id']}", headers=hdr(tenant_a["token"])).status_code == 200
    assert _stored(tenant_a["job_id"])[1] == [("a-essay-1", SECRET_TEXT, "a-student-77")]


# ----------------------------------------------------------------------------- injection

INJECTIONS = [
    "'; DROP TABLE jobs; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM essays WHERE ('1'='1",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %s %n",
    "\u202e\u200b\ufeff emoji \U0001F600 CJK 漢字 RTL مرحبا",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 2000,  # huge unicode (astral plane), under the essay limit
]
NUL = "before\x00after"


def _stored(job_id):
    from app.store.db import session_scope
    from app.store.tables import Essay, Job

    with session_scope() as s:
        job = s.get(Job, job_id)
        essays = s.scalars(select(Essay).where(Essay.job_id == job_id).order_by(Essay.position)).all()
        return job.rubric, [(e.client_id, e.text, e.student_ref) for e in essays]


@pytest.mark.parametrize("evil", INJECTIONS, ids=[f"inj{i}" for i in range(len(INJECTIONS))])
def test_injection_strings_accepted_verbatim_or_rejected_cleanly(c, evil, pg_url):
    _, token = make_teacher()
    short = evil[:200]
    rubric = {**RUBRIC, "name": short, "prompt": evil[:10_000],
              "traits": [{"name": evil[:80], "scale": {"min": 1, "max": 6, "step": 1}}]}
    body = {"rubric": rubric, "essays": [{"id": short, "text": evil, "student_ref": short}]}
    r = c.post("/api/v1/grading-jobs", headers=hdr(token), json=body)
    assert r.status_code in (202, 422), (r.status_code, r.get_data(as_text=True)[:300])
    assert r.is_json
    if r.status_code == 422:
        return
    stored_rubric, essays = _stored(r.get_json()["job"]["id"])
    assert essays == [(short, evil, short)]
    assert stored_rubric["name"] == short and stored_rubric["prompt"] == evil[:10_000]
    # CSV too
    csv_body = "id,text,student_ref\n" + ",".join(json.dumps(x) for x in (short, evil, short)).replace('\\"', '""') + "\n"
    r2 = c.post("/api/v1/grading-jobs", headers=hdr(token), content_type="multipart/form-data",
                data={"rubric": json.dumps(RUBRIC), "file": (__import__("io").BytesIO(csv_body.encode()), "x.csv")})
    assert r2.status_code in (202, 422), r2.get_data(as_text=True)[:300]


@pytest.mark.parametrize("where", ["essay_text", "student_ref", "rubric_name", "lesson_topic"])
def test_null_bytes_rejected_cleanly(c, where, pg_url):
    _, token = make_teacher()
    essay = {"id": "n1", "text": NUL if where == "essay_text" else "ok", "student_ref": NUL if where == "student_ref" else None}
    rubric = {**RUBRIC, "name": NUL if where == "rubric_name" else "ok"}
    if where == "lesson_topic":
        r = c.post("/api/v1/lesson-jobs", headers=hdr(token),
                   json={"topic": NUL, "subject": "Science", "grade_level": "5", "duration_minutes": 45})
    else:
        r = c.post("/api/v1/grading-jobs", headers=hdr(token), json={"rubric": rubric, "essays": [essay]})
    assert r.status_code == 422, r.status_code
    assert "NUL" in r.get_json()["error"]["message"]


# ----------------------------------------------------------------------------- size, media type

def test_oversize_body_413(c, sec_app, pg_url):
    _, token = make_teacher()
    limit = sec_app.config["MAX_CONTENT_LENGTH"]
    big = b'{"essays": [{"id": "x", "text": "' + b"a" * (limit + 10) + b'"}]}'
    r = c.post("/api/v1/grading-jobs", headers={**hdr(token), "Content-Type": "application/json"}, data=big)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("url", ["/api/v1/grading-jobs", "/api/v1/lesson-jobs", "/api/v1/fine-tune-jobs"])
@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_wrong_content_type_415(c, url, ctype, pg_url):
    _, token = make_teacher()
    r = c.post(url, headers={**hdr(token), "Content-Type": ctype}, data=json.dumps({"essays": []}))
    assert r.status_code == 415, (url, ctype, r.status_code)
    assert r.get_json()["error"]["code"] == "unsupported_media_type"


# ----------------------------------------------------------------------------- secrets

SECRET_RE = re.compile(r"""(?i)\b\w*(secret|password|passwd|api_?key|token|private_?key)\w*\s*[:=]\s*["'][^"'\s]{8,}["']""")
ALLOWED = {("app/lifecycle/webhooks.py", "DEFAULT_SECRET")}  # the documented dev webhook default


def test_no_hardcoded_secrets_in_app_code():
    hits = []
    for base in ("app", "workers"):
        for path in (ROOT / base).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if SECRET_RE.search(line) and not any(rel == f and name in line for f, name in ALLOWED):
                    hits.append(f"{rel}:{n}: {line.strip()[:120]}")
            if re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}", path.read_text(errors="replace")):
                hits.append(f"{rel}: private key or cloud key material")
    assert not hits, "\n".join(hits)


def test_webhook_secret_from_environment(monkeypatch):
    from app.lifecycle import webhooks

    monkeypatch.setenv("EDUQ_WEBHOOK_SECRET", "from-env-123")
    assert webhooks.secret() == b"from-env-123"
