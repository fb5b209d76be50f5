"""Calibration by example end to end over HTTP: a real gunicorn API, a real Celery grading worker with the
real models, real Postgres and Redis. A teacher stores her rubric, grades a class, asks which essays to
score first, scores them (one point harsher than the grader), regrades the rest with her scores; the
earlier scores stay readable, her scores win, the rubric keeps her scores for the next class, and an
API client may send scored examples with a job instead."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import requests

from tests.conftest import make_teacher
from tests.e2e.test_grading_e2e import all_results, wait_finished

pytestmark = pytest.mark.e2e
DEMO = json.loads((Path(__file__).resolve().parents[2] / "app" / "demo" / "class_8b.json").read_text())
CLASSES = Path(__file__).resolve().parents[1] / "fixtures" / "classes"


@pytest.fixture()
def auth(pg_url):
    _, token = make_teacher()
    return {"Authorization": f"Bearer {token}"}


def post(base, path, headers, body=None):
    return requests.post(base + path, json=body, headers=headers, timeout=60)


def test_suggest_score_recalibrate_and_reuse_the_rubric(live_api, grading_worker, auth):
    base = live_api
    r = post(base, "/api/v1/rubrics", auth, DEMO["rubric"])
    assert r.status_code == 201, r.text
    rubric = r.json()["rubric"]
    assert rubric["calibration"] == {"examples": 0, "fine_tune_suggested": False, "fine_tune_at": 150}
    # tenancy: another school's teacher neither sees nor uses it
    _, other_token = make_teacher(school="Another School")
    other = {"Authorization": f"Bearer {other_token}"}
    assert requests.get(base + rubric["links"]["self"], headers=other, timeout=30).status_code == 404
    assert rubric["id"] not in {x["id"] for x in requests.get(base + "/api/v1/rubrics", headers=other, timeout=30)
                                .json()["rubrics"]}
    r = post(base, "/api/v1/grading-jobs", other, {"rubric_id": rubric["id"], "essays": DEMO["essays"][:1]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rubric_id"

    # a class graded on the stored rubric: nothing to calibrate with yet
    r = post(base, "/api/v1/grading-jobs", auth, {"rubric_id": rubric["id"], "essays": DEMO["essays"]})
    assert r.status_code == 202, r.text
    first = wait_finished(base, r.json()["job"], auth)
    assert first["status"] == "succeeded" and first["rubric_id"] == rubric["id"] and first["calibration"] is None
    before = {x["essay_id"]: x for x in all_results(base, first, auth)}

    # which essays to score first
    r = requests.get(base + first["links"]["calibration_suggestions"] + "?n=6", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    sug = r.json()["suggestions"]
    assert len(sug) == 6 and len({s["essay_id"] for s in sug}) == 6
    assert all(s["essay_id"] in before and s["why"] and before[s["essay_id"]]["score"] is not None for s in sug)
    scores = sorted(before[s["essay_id"]]["score"] for s in sug)
    assert scores[0] < scores[-1]  # spread over the predicted range

    # the teacher scores them, a point harsher than the grader
    mine = {}
    for s in sug:
        model = before[s["essay_id"]]
        mine[s["essay_id"]] = max(1.0, model["score"] - 1)
        r = post(base, f"/api/v1/jobs/{first['id']}/results/{s['essay_id']}/override", auth,
                 {"score": mine[s["essay_id"]], "traits": {"organization": mine[s["essay_id"]]}})
        assert r.status_code == 201, r.text
    again = requests.get(base + first["links"]["calibration_suggestions"] + "?n=6", headers=auth, timeout=30).json()
    assert again["scored"] == 6 and not {s["essay_id"] for s in again["suggestions"]} & set(mine)

    # regrade the rest with her scores: a job of its own, on the grading queue
    r = post(base, first["links"]["recalibrate"], auth)
    assert r.status_code == 202, r.text
    second = r.json()["job"]
    assert second["id"] != first["id"] and second["calibration"]["recalibrates"] == first["id"]
    assert second["calibration"]["examples"] == 6
    second = wait_finished(base, second, auth)
    assert second["status"] == "succeeded" and second["progress"]["total"] == len(DEMO["essays"])
    after = {x["essay_id"]: x for x in all_results(base, second, auth)}
    assert set(after) == set(before)
    cal_id = second["calibration"]["id"]
    for eid, x in after.items():
        assert x["previous"]["job_id"] == first["id"]  # the earlier score stays readable
        assert x["previous"]["score"] == before[eid]["score"]
        if x["score"] is not None:
            assert f":{cal_id}(k=6)" in x["model_version"], x["model_version"]
        if eid in mine:  # her score wins
            assert x["final"] == {"score": mine[eid], "traits": {**x["traits"], "organization": mine[eid]},
                                  "source": "teacher"}
        else:
            assert x["final"]["source"] == "model" and x["final"]["score"] == x["score"]
    graded = [(before[e]["score"], x["score"]) for e, x in after.items() if e not in mine and x["score"] is not None
              and before[e]["score"] is not None]
    assert sum(b for b, _ in graded) > sum(a for _, a in graded), graded  # the harsher teacher moved the class down
    rows = list(csv.DictReader(io.StringIO(requests.get(base + second["links"]["results"] + "?format=csv",
                                                        headers=auth, timeout=30).text)))
    for row in rows:
        if row["essay_id"] in mine:
            assert float(row["final_score"]) == mine[row["essay_id"]] and row["final_source"] == "teacher"
        assert row["previous_model_version"]

    # the rubric keeps her scores; the next class on it is calibrated from the start
    got = requests.get(base + rubric["links"]["self"], headers=auth, timeout=30).json()["rubric"]
    assert got["calibration"]["examples"] == 6
    skate = json.loads((CLASSES / "skate_park.json").read_text())["essays"]
    r = post(base, "/api/v1/grading-jobs", auth,
             {"rubric_id": rubric["id"], "essays": [{"id": e["id"], "text": e["text"]} for e in skate]})
    assert r.status_code == 202, r.text
    third = r.json()["job"]
    assert third["calibration"]["examples"] == 6 and "recalibrates" not in third["calibration"]
    third = wait_finished(base, third, auth)
    res = all_results(base, third, auth)
    assert third["status"] == "succeeded"
    assert all(f":{third['calibration']['id']}(k=6)" in x["model_version"] for x in res if x["score"] is not None)


def test_scored_examples_with_a_job(live_api, grading_worker, auth):
    base = live_api
    classes = [json.loads(p.read_text()) for p in sorted(CLASSES.glob("*.json"))]
    rubric = {**classes[0]["rubric"], "always_score": True}
    examples = [{"text": e["text"], "score": 2, "traits": {"conventions": 2}} for e in classes[1]["essays"][:4]]
    essays = [{"id": e["id"], "text": e["text"]} for e in classes[0]["essays"]]
    bad = post(base, "/api/v1/grading-jobs", auth,
               {"rubric": rubric, "essays": essays, "scored_examples": [*examples[:1], {"text": "x", "score": 9}]})
    assert bad.status_code == 422 and "scored_examples.1.score" in json.dumps(bad.json()["error"]["details"])
    r = post(base, "/api/v1/grading-jobs", auth, {"rubric": rubric, "essays": essays, "scored_examples": examples})
    assert r.status_code == 202, r.text
    job = wait_finished(base, r.json()["job"], auth)
    assert job["status"] == "succeeded" and job["calibration"]["examples"] == 4
    res = all_results(base, job, auth)
    assert len(res) == len(essays) and all(":cal_" in x["model_version"] and "(k=4)" in x["model_version"] for x in res)
