"""Lesson plans end to end: HTTP -> Postgres -> lessons queue -> a real worker with the real small model on
llama.cpp (the default engine)."""
from __future__ import annotations

import io
import zipfile

import pytest
import requests

from tests.conftest import make_teacher, start_worker
from tests.e2e.test_grading_e2e import wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lessons_worker(pg_url, redis_client, log_dir):
    proc = start_worker(log_dir, "lessons", "lessons")
    yield proc
    proc.stop()


# the worker also drains lesson jobs queued by earlier tests; a plan takes a few seconds on llama.cpp, more
# when the machine is shared: pytest's hang guard matches the job wait below
@pytest.mark.timeout(600)
def test_two_plans_in_one_job(live_api, lessons_worker):
    _, token = make_teacher()
    h = {"Authorization": f"Bearer {token}"}
    plans = [
        {"topic": "Photosynthesis", "subject": "Science", "grade_level": "5", "duration_minutes": 45,
         "standards": ["NGSS 5-LS1-1"], "notes": "Two English learners."},
        {"topic": "Adding fractions with unlike denominators", "subject": "Math", "grade_level": "6",
         "duration_minutes": 50, "objectives": ["Add fractions with unlike denominators"]},
    ]
    r = requests.post(live_api + "/api/v1/lesson-jobs", json={"lessons": plans}, headers=h, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_finished(live_api, r.json()["job"], h, timeout=540)
    assert job["status"] == "succeeded", job
    results = requests.get(live_api + job["links"]["results"], headers=h, timeout=30).json()["results"]
    assert len(results) == 2
    for req, res in zip(plans, results):
        lesson = res["lesson"]
        assert sum(s["minutes"] for s in lesson["sections"]) == req["duration_minutes"]
        assert all(s["activities"] for s in lesson["sections"])
        assert lesson["standards"] == req.get("standards", [])
        assert lesson["objectives"] and lesson["title"]
        assert res["markdown"].startswith("# ")
        assert "llama.cpp" in res["model_version"] and res["checks"]["engine"] == "llamacpp"
        assert isinstance(res["needs_review"], bool) and res["needs_review"] == (not res["checks"]["passed"])
        assert lesson["structure"] in ("5E", "gradual release", "workshop") and lesson["guiding_question"]
    assert results[0]["lesson"]["structure"] == "5E"  # a science lesson
    assert any("English learners" in d for d in results[0]["lesson"]["differentiation"])  # from the notes
    assert results[1]["lesson"]["objectives"] == ["Add fractions with unlike denominators"]
    docx = requests.get(live_api + job["links"]["results"] + "?format=docx", headers=h, timeout=30)
    assert docx.status_code == 200
    assert "wordprocessingml" in docx.headers["Content-Type"]
    with zipfile.ZipFile(io.BytesIO(docx.content)) as z:
        xml = z.read("word/document.xml").decode()
    assert results[0]["lesson"]["title"].split()[0] in xml
