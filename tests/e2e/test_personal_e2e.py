"""From a grade to learning end to end over HTTP: a real gunicorn API, a real grading worker (the real
grader) and a real lessons worker, real Postgres and Redis. A class submitted with "follow_up": true and
assignments; its follow-ups, insights, a re-teach lesson, the exports; a second draft linked to the first."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import requests

from tests.conftest import make_teacher, start_worker
from tests.e2e.test_grading_e2e import all_results, wait_finished

pytestmark = pytest.mark.e2e
DEMO = json.loads((Path(__file__).resolve().parents[2] / "app" / "demo" / "class_8b.json").read_text())


@pytest.fixture(scope="module")
def lessons_worker(pg_url, redis_client, log_dir):
    proc = start_worker(log_dir, "lessons", "personal")
    yield proc
    proc.stop()


def test_follow_ups_insights_reteach_and_a_second_draft(live_api, grading_worker, lessons_worker):
    base = live_api
    _, token = make_teacher()
    h = {"Authorization": f"Bearer {token}"}
    essays = [{**e, "assignment": "community-service-letter"} for e in DEMO["essays"][:8]]
    r = requests.post(base + "/api/v1/grading-jobs", json={"rubric": DEMO["rubric"], "essays": essays, "follow_up": True},
                      headers=h, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_finished(base, r.json()["job"], h)
    assert job["status"] == "succeeded" and "follow_ups" in job["links"]
    graded = {x["essay_id"]: x for x in all_results(base, job, h)}
    fu_job = requests.get(base + job["links"]["follow_ups"], headers=h, timeout=30).json()["job"]
    fu_job = wait_finished(base, fu_job, h)
    assert fu_job["status"] == "succeeded" and fu_job["kind"] == "follow_up"
    fus = all_results(base, fu_job, h)
    texts = {e["id"]: e["text"] for e in essays}
    assert {x["essay_id"] for x in fus} == {e for e, x in graded.items() if x["status"] == "graded"}
    for x in fus:
        fu, text = x["follow_up"], texts[x["essay_id"]]
        assert x["model_version"].startswith("followup-") and x["student_ref"] == graded[x["essay_id"]]["student_ref"]
        for item in fu["strengths"] + fu["next_steps"]:
            assert item["evidence"] in text
        assert all(e["source"] in text for e in fu["exercises"])
        others = [t for k, t in texts.items() if k != x["essay_id"]]
        assert not any(o[:60] in json.dumps(fu) for o in others if o[:60] not in text)
        assert x["scores"]["score"] == graded[x["essay_id"]]["score"]  # never invented or changed

    ins = requests.get(base + job["links"]["insights"], headers=h, timeout=30).json()
    assert ins["graded"] == len(fus) and sum(ins["holistic"]["distribution"].values()) == sum(
        1 for x in graded.values() if x["score"] is not None)
    assert ins["weakest"] and ins["groups"][0]["source"] == "follow_ups"
    r = requests.post(base + job["links"]["reteach"], headers=h, timeout=30)
    assert r.status_code == 202, r.text
    lesson = wait_finished(base, r.json()["job"], h, timeout=600)
    assert lesson["status"] == "succeeded"
    plan = requests.get(base + lesson["links"]["results"], headers=h, timeout=30).json()["results"][0]["lesson"]
    assert plan["title"] and sum(s["minutes"] for s in plan["sections"]) == 45

    canvas = list(csv.reader(io.StringIO(requests.get(base + job["links"]["results"] + "?format=canvas", headers=h,
                                                      timeout=30).text)))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and canvas[1][0] == "Points Possible"
    sheets = requests.get(base + job["links"]["feedback_sheets"], headers=h, timeout=30)
    assert sheets.status_code == 200 and sheets.content[:2] == b"PK"

    # the second draft of one student: linked, with the change since and whether the target improved
    e = essays[1]
    r = requests.post(base + "/api/v1/grading-jobs", headers=h, timeout=30, json={"rubric": DEMO["rubric"], "essays": [
        {**e, "text": e["text"] + " In conclusion, community service helps people, and that is why I support it."}]})
    second = wait_finished(base, r.json()["job"], h)
    res = all_results(base, second, h)[0]
    assert res["previous_draft"]["job_id"] == job["id"] and res["previous_draft"]["essay_id"] == e["id"]
    assert res["previous_draft"]["target_trait"] in ("organization", "conventions")
    assert isinstance(res["previous_draft"]["target_improved"], bool)
    prog = requests.get(base + f"/api/v1/students/{e['student_ref']}/progress", headers=h, timeout=30).json()
    assert [len(a["drafts"]) for a in prog["assignments"]] == [2]
