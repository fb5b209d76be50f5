"""The HTTP contract of grading and jobs, through the Flask app against the real Postgres and Redis.
(No worker runs here: these check validation, auth, tenancy, idempotency and the error format.)"""
from __future__ import annotations

import io
import json

import pytest

from tests.conftest import RUBRIC, make_teacher


def _essays(n=2):
    return [{"id": f"e{i}", "text": f"My essay number {i} says that uniforms are a good idea because they help."}
            for i in range(n)]


def submit(client, headers, body=None, **kw):
    return client.post("/api/v1/grading-jobs", json=body if body is not None else {"rubric": RUBRIC, "essays": _essays()},
                       headers=headers, **kw)


def assert_error(resp, status, code=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_submit_json_returns_202_and_queued_job(client, teacher, redis_client):
    r = submit(client, teacher["headers"])
    assert r.status_code == 202
    job = r.get_json()["job"]
    assert job["kind"] == "grading" and job["status"] == "queued"
    assert job["progress"] == {"done": 0, "total": 2, "failed": 0}
    assert job["links"]["self"] == f"/api/v1/jobs/{job['id']}"
    assert job["created_at"].endswith("Z")
    # the id was published after the rows were committed (a failed publish leaves published_at NULL
    # for the sweeper; a worker of another test may already have taken the message off the queue)
    from app.store.db import session_scope
    from app.store.tables import Job

    with session_scope() as s:
        row = s.get(Job, job["id"])
        assert row.published_at is not None and row.publish_count == 1


def test_status_etag_and_304(client, teacher):
    job = submit(client, teacher["headers"]).get_json()["job"]
    r = client.get(job["links"]["self"], headers=teacher["headers"])
    assert r.status_code == 200 and r.headers["ETag"]
    r2 = client.get(job["links"]["self"], headers={**teacher["headers"], "If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304
    r3 = client.get(job["links"]["self"], headers={**teacher["headers"], "If-None-Match": '"other"'})
    assert r3.status_code == 200


def test_long_poll_returns_when_job_changes(client, teacher):
    import threading
    import time

    # a lesson job: no lessons worker runs during these tests, so only the cancel below changes it
    job = client.post("/api/v1/lesson-jobs", json=LESSON, headers=teacher["headers"]).get_json()["job"]

    def cancel_soon():
        time.sleep(0.7)
        client.delete(job["links"]["self"], headers=teacher["headers"])

    t = threading.Thread(target=cancel_soon)
    t.start()
    t0 = time.monotonic()
    r = client.get(job["links"]["self"] + "?wait=10", headers=teacher["headers"])
    t.join()
    assert r.status_code == 200
    assert r.get_json()["job"]["status"] == "cancelled"
    assert time.monotonic() - t0 < 9


def test_long_wait_on_a_finished_job_answers_at_once(client, teacher):
    import time

    job = client.post("/api/v1/lesson-jobs", json=LESSON, headers=teacher["headers"]).get_json()["job"]
    assert client.delete(job["links"]["self"], headers=teacher["headers"]).status_code == 200
    t0 = time.monotonic()
    r = client.get(job["links"]["self"] + "?wait=999", headers=teacher["headers"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["job"]["status"] == "cancelled"
    assert time.monotonic() - t0 < 2


def test_long_wait_is_capped_at_the_setting(client, teacher, monkeypatch):
    import time

    monkeypatch.setenv("EDUQ_LONG_POLL_MAX_S", "1")
    # a lesson job: no lessons worker runs during these tests, so it stays queued
    job = client.post("/api/v1/lesson-jobs", json=LESSON, headers=teacher["headers"]).get_json()["job"]
    t0 = time.monotonic()
    r = client.get(job["links"]["self"] + "?wait=999", headers=teacher["headers"])
    assert r.status_code == 200 and r.get_json()["job"]["status"] == "queued"
    assert 0.8 < time.monotonic() - t0 < 5


@pytest.mark.parametrize("wait", ["-1", "abc", "nan", "inf"])
def test_bad_wait_is_422_naming_wait(client, teacher, wait):
    job = client.post("/api/v1/lesson-jobs", json=LESSON, headers=teacher["headers"]).get_json()["job"]
    err = assert_error(client.get(job["links"]["self"] + f"?wait={wait}", headers=teacher["headers"]), 422,
                       "validation_error")
    assert [d["field"] for d in err["details"]] == ["wait"], err


def test_missing_and_bad_token_401(client, teacher):
    assert_error(client.get("/api/v1/jobs"), 401, "unauthorized")
    assert_error(client.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert_error(client.get("/api/v1/jobs", headers={"Authorization": "Basic abc"}), 401)


def test_tenancy_other_teacher_gets_404(client, teacher, other_teacher):
    job = submit(client, teacher["headers"]).get_json()["job"]
    for method, url in [("get", job["links"]["self"]), ("get", job["links"]["results"]),
                        ("delete", job["links"]["self"]), ("get", job["links"]["results"] + "?format=csv")]:
        err = assert_error(getattr(client, method)(url, headers=other_teacher["headers"]), 404, "not_found")
        assert job["id"] not in json.dumps(err) or "visible" in err["message"]
    listed = client.get("/api/v1/jobs", headers=other_teacher["headers"]).get_json()["jobs"]
    assert job["id"] not in [j["id"] for j in listed]


def test_school_admin_sees_school_jobs(client, teacher):
    # teacher fixture is in "Test School"; an admin of that school sees the job, another school's admin does not
    job = submit(client, teacher["headers"]).get_json()["job"]
    _, admin_token = make_teacher(school="Test School", role="admin")
    _, far_token = make_teacher(school="Far School", role="admin")
    assert client.get(job["links"]["self"], headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200
    assert client.get(job["links"]["self"], headers={"Authorization": f"Bearer {far_token}"}).status_code == 404


def test_idempotency_replay_and_conflict(client, teacher):
    h = {**teacher["headers"], "Idempotency-Key": "class-8b-monday"}
    r1 = submit(client, h)
    r2 = submit(client, h)
    assert r1.status_code == 202 and r2.status_code == 200
    assert r1.get_json()["job"]["id"] == r2.get_json()["job"]["id"]
    other = {"rubric": RUBRIC, "essays": _essays(3)}
    assert_error(submit(client, h, other), 409, "idempotency_conflict")
    # the same key belongs to each teacher separately
    _, tok = make_teacher()
    r3 = submit(client, {"Authorization": f"Bearer {tok}", "Idempotency-Key": "class-8b-monday"}, other)
    assert r3.status_code == 202


def test_list_newest_first_with_cursor(client, pg_url):
    _, tok = make_teacher()
    h = {"Authorization": f"Bearer {tok}"}
    ids = [submit(client, h).get_json()["job"]["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        url = "/api/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=h).get_json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert client.get("/api/v1/jobs?kind=lesson", headers=h).get_json()["jobs"] == []
    for job_id in ids[:2]:
        assert client.delete(f"/api/v1/jobs/{job_id}", headers=h).status_code in (200, 409)
    cancelled = {j["id"] for j in client.get("/api/v1/jobs?status=cancelled", headers=h).get_json()["jobs"]}
    finished = {j["id"] for j in client.get("/api/v1/jobs?status=succeeded", headers=h).get_json()["jobs"]}
    assert set(ids[:2]) <= cancelled | finished and not cancelled - set(ids[:2])
    assert_error(client.get("/api/v1/jobs?cursor=%%%", headers=h), 422)
    assert_error(client.get("/api/v1/jobs?limit=0", headers=h), 422, "validation_error")


def test_cancel_then_409(client, teacher):
    job = submit(client, teacher["headers"]).get_json()["job"]
    r = client.delete(job["links"]["self"], headers=teacher["headers"])
    assert r.status_code == 200 and r.get_json()["job"]["status"] == "cancelled"
    assert r.get_json()["job"]["finished_at"]
    assert_error(client.delete(job["links"]["self"], headers=teacher["headers"]), 409, "job_finished")


@pytest.mark.parametrize("body,field", [
    ({"essays": [{"id": "a", "text": "x"}]}, "rubric"),
    ({"rubric": RUBRIC, "essays": []}, "essays"),
    ({"rubric": RUBRIC}, "essays"),
    ({"rubric": {**RUBRIC, "scale": {"min": 6, "max": 1}}, "essays": [{"id": "a", "text": "x"}]}, "rubric.scale.max"),
    ({"rubric": {**RUBRIC, "scale": {"min": 1, "max": 6, "step": 0.7}}, "essays": [{"id": "a", "text": "x"}]},
     "rubric.scale.step"),
    ({"rubric": {**RUBRIC, "scale": {"min": 1, "max": 6, "step": 0}}, "essays": [{"id": "a", "text": "x"}]}, "rubric.scale.step"),
    ({"rubric": RUBRIC, "essays": [{"id": "a"}]}, "essays[0].text"),
    ({"rubric": RUBRIC, "essays": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "essays"),
    ({"rubric": RUBRIC, "essays": [{"id": "a", "text": 5}]}, "essays[0].text"),
    ({"rubric": RUBRIC, "essays": [{"id": "a", "text": "x"}], "model": "nope"}, "model"),
    ({"rubric": RUBRIC, "essays": [{"id": "a", "text": "x"}], "surprise": 1}, "surprise"),
    ({"rubric": RUBRIC, "essays": [{"id": "a", "text": "x"}], "callback_url": "not a url"}, "callback_url"),
])
def test_422_names_each_bad_field(client, teacher, body, field):
    err = assert_error(submit(client, teacher["headers"], body), 422, "validation_error")
    assert field in [d["field"] for d in err["details"]], err


def test_essay_over_the_character_limit_is_422_not_cut(client, teacher, flask_app):
    from app.settings import settings

    limit = settings().max_essay_chars
    err = assert_error(submit(client, teacher["headers"], {"rubric": RUBRIC, "essays": [{"id": "a", "text": "w " * limit}]}), 422)
    assert err["details"][0]["field"] == "essays[0].text" and str(limit) in err["details"][0]["message"]


def test_malformed_json_400_and_media_type_415(client, teacher):
    r = client.post("/api/v1/grading-jobs", data="{not json", headers={**teacher["headers"], "Content-Type": "application/json"})
    assert_error(r, 400)
    r = client.post("/api/v1/grading-jobs", data="hello", headers={**teacher["headers"], "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")


def test_body_too_large_413(client, teacher, flask_app):
    big = b'{"essays": "' + b"x" * (flask_app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    r = client.post("/api/v1/grading-jobs", data=big, headers={**teacher["headers"], "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


def test_unknown_job_404_and_unknown_route_json(client, teacher):
    assert_error(client.get("/api/v1/jobs/job_doesnotexist", headers=teacher["headers"]), 404, "not_found")
    assert_error(client.get("/api/v1/nothing-here", headers=teacher["headers"]), 404)


def _csv_upload(client, headers, content: bytes, rubric=RUBRIC):
    return client.post("/api/v1/grading-jobs", headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), "class.csv"), "rubric": json.dumps(rubric)})


def test_csv_upload_accepted(client, teacher):
    csv_bytes = ('id,text,student_ref\n'
                 's-1,"I think uniforms, on the whole, are fine.\n\nThey save time.",Ana\n'
                 's-2,Uniforms cost money that families do not have.,\n').encode()
    r = _csv_upload(client, teacher["headers"], csv_bytes)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["job"]["progress"]["total"] == 2


@pytest.mark.parametrize("content,line", [
    (b"id,text\ns-1,fine\ns-2,\"never closed\n", 3),
    (b"id,text\ns-1,fine\ns-2,too,many,fields\n", 3),
    (b"id,text\ns-1,fine\n,missing id\n", 3),
    (b"name,text\ns-1,fine\n", 1),
    (b"id,text\ns-1,ok\ns-1,again\n", 3),
    (b"id,text\ns-1,\xff\xfe bad bytes\n", 2),
])
def test_csv_bad_row_reported_by_line_and_nothing_queued(client, teacher, content, line):
    before = client.get("/api/v1/jobs?limit=200", headers=teacher["headers"]).get_json()["jobs"]
    err = assert_error(_csv_upload(client, teacher["headers"], content), 422)
    assert line in [d.get("line") for d in err["details"]], err
    after = client.get("/api/v1/jobs?limit=200", headers=teacher["headers"]).get_json()["jobs"]
    assert len(after) == len(before)


def test_csv_bad_rubric_json(client, teacher):
    r = client.post("/api/v1/grading-jobs", headers=teacher["headers"], content_type="multipart/form-data",
                    data={"file": (io.BytesIO(b"id,text\na,b\n"), "c.csv"), "rubric": "{oops"})
    err = assert_error(r, 422)
    assert err["details"][0]["field"] == "rubric"


def test_results_of_queued_job_are_empty_page(client, teacher):
    job = submit(client, teacher["headers"]).get_json()["job"]
    page = client.get(job["links"]["results"], headers=teacher["headers"]).get_json()
    assert page["results"] == [] and page["next_cursor"] is None and page["job"]["id"] == job["id"]
    csv_text = client.get(job["links"]["results"] + "?format=csv", headers=teacher["headers"]).get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("essay_id,student_ref,status,score,trait_organization")


def test_service_endpoints(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.get_json()["database"] == "ok"
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/grading-jobs" in spec["paths"]
    assert "GradingJobRequest" in spec["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200
    assert b"eduq_http_request_duration_seconds" in client.get("/metrics").data


LESSON = {"topic": "Photosynthesis", "subject": "Science", "grade_level": "5", "duration_minutes": 45}


def test_lesson_job_accepted_single_and_several(client, teacher):
    r = client.post("/api/v1/lesson-jobs", json=LESSON, headers=teacher["headers"])
    assert r.status_code == 202 and r.get_json()["job"]["kind"] == "lesson"
    assert r.get_json()["job"]["progress"]["total"] == 1
    r = client.post("/api/v1/lesson-jobs", json={"lessons": [LESSON, {**LESSON, "grade_level": "K"}]},
                    headers=teacher["headers"])
    assert r.status_code == 202 and r.get_json()["job"]["progress"]["total"] == 2


@pytest.mark.parametrize("body,field", [
    ({**LESSON, "topic": "  "}, "topic"),
    ({**LESSON, "topic": ""}, "topic"),
    ({**LESSON, "grade_level": "13"}, "grade_level"),
    ({**LESSON, "grade_level": "college"}, "grade_level"),
    ({**LESSON, "duration_minutes": 5}, "duration_minutes"),
    ({**LESSON, "duration_minutes": 241}, "duration_minutes"),
    ({**LESSON, "language": "xx"}, "language"),
    ({"lessons": [LESSON] * 21}, "lessons"),
    ({"lessons": [LESSON, {**LESSON, "duration_minutes": 2}]}, "lessons[1].duration_minutes"),
    ({"lessons": []}, "lessons"),
])
def test_lesson_validation_422(client, teacher, body, field):
    err = assert_error(client.post("/api/v1/lesson-jobs", json=body, headers=teacher["headers"]), 422, "validation_error")
    assert field in [d["field"] for d in err["details"]], err
