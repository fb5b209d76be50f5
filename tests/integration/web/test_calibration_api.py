"""Calibration by example below the model (real Postgres; results written as a worker writes them):
stored rubrics and their tenancy, scored examples and their 422s, the overrides that accumulate on a
rubric, suggestions, recalibrate's 409s and its copy of the class, a student's deletion reaching the
calibration copies."""
from __future__ import annotations

from sqlalchemy import func, select

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import CalibrationSet, Essay, RubricExample
from tests.conftest import RUBRIC

TEXTS = ["Uniforms save families money because parents buy two outfits instead of a new wardrobe every term.",
         "I think uniforms are boring and they stop us from showing who we are at school.",
         "Our school should keep its dress code; mornings are calmer when nobody argues about clothes.",
         "Uniforms itch in summer. The fabric is thick and the blazer is hot in June.",
         "When everyone dresses alike, bullying about brands and labels fades, teachers told our council.",
         "My cousin's school dropped uniforms last year and attendance did not change at all.",
         "A uniform makes a team: on trips strangers can see which children belong to our group.",
         "Cost matters most. A second-hand blazer sale would help poorer families far more than rules."]
ESSAYS = [{"id": f"e{i}", "student_ref": f"s{i}", "text": t} for i, t in enumerate(TEXTS)]


def finish(job_id: str, scores=None) -> None:
    """Grade every pending essay of the job as a worker would (score i % 6 + 1 unless given)."""
    batch = claims.claim("grading", 100, 60, 3, worker="W")
    results = {}
    with session_scope() as s:
        for item in batch.items:
            e = s.get(Essay, item.id)
            sc = (scores or {}).get(e.client_id, float(e.position % 6 + 1))
            results[item.id] = {"score": sc, "traits": {"organization": sc}, "confidence": 0.3 + 0.05 * e.position,
                                "needs_review": False, "review_reasons": [], "feedback": [], "model_version": "unit"}
    claims.write_grading_results(batch.items, results, worker="W")


def submit(client, headers, **body):
    return client.post("/api/v1/grading-jobs", json={"essays": ESSAYS, **body}, headers=headers)


def test_stored_rubrics_and_their_tenancy(client, teacher, other_teacher, clean_queue):
    h, o = teacher["headers"], other_teacher["headers"]
    r = client.post("/api/v1/rubrics", json={**RUBRIC, "scored_examples": [{"text": "A short letter.", "score": 3}]},
                    headers=h)
    assert r.status_code == 201, r.get_json()
    rub = r.get_json()["rubric"]
    assert rub["name"] == RUBRIC["name"] and rub["scale"]["max"] == 6 and rub["calibration"]["examples"] == 1
    assert any(x["id"] == rub["id"] for x in client.get("/api/v1/rubrics", headers=h).get_json()["rubrics"])
    assert not any(x["id"] == rub["id"] for x in client.get("/api/v1/rubrics", headers=o).get_json()["rubrics"])
    assert client.get(f"/api/v1/rubrics/{rub['id']}", headers=o).status_code == 404
    assert client.delete(f"/api/v1/rubrics/{rub['id']}", headers=o).status_code == 404
    r = submit(client, o, rubric_id=rub["id"])
    assert r.status_code == 422 and r.get_json()["error"]["details"][0]["field"] == "rubric_id"
    r = client.post("/api/v1/rubrics", json={**RUBRIC, "scored_examples": [{"text": "x", "score": 7}]}, headers=h)
    assert r.status_code == 422 and r.get_json()["error"]["details"][0]["field"] == "scored_examples.0.score"
    assert client.post("/api/v1/rubrics", json={"name": "no scale"}, headers=h).status_code == 422

    job = submit(client, h, rubric_id=rub["id"]).get_json()["job"]
    assert job["rubric_id"] == rub["id"] and job["calibration"]["examples"] == 1
    assert client.delete(f"/api/v1/rubrics/{rub['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/rubrics/{rub['id']}", headers=h).status_code == 404
    kept = client.get(job["links"]["self"], headers=h).get_json()["job"]
    assert kept["rubric_id"] is None and kept["calibration"]["examples"] == 1  # the job keeps its frozen copy


def test_scored_examples_are_checked_against_the_rubric(client, teacher, clean_queue):
    h = teacher["headers"]
    r = submit(client, h, rubric=RUBRIC, scored_examples=[{"text": "Fine.", "score": 4},
                                                          {"text": "Odd.", "score": 2.5, "traits": {"voice": 3}}])
    assert r.status_code == 422
    fields = [d["field"] for d in r.get_json()["error"]["details"]]
    assert fields == ["scored_examples.1.score", "scored_examples.1.traits.voice"], fields
    assert "scored example 1" in r.get_json()["error"]["message"]
    r = submit(client, h, rubric=RUBRIC, rubric_id="rub_x")
    assert r.status_code == 422
    r = submit(client, h, model="asap-1", scored_examples=[{"text": "Fine.", "score": 4}])
    assert r.status_code == 422 and "default grader" in r.get_json()["error"]["message"]
    ok = submit(client, h, rubric=RUBRIC, scored_examples=[{"text": "Fine letter.", "score": 4, "traits": {"organization": 5}}])
    assert ok.status_code == 202
    job = ok.get_json()["job"]
    assert job["calibration"]["examples"] == 1 and job["calibration"]["id"].startswith("cal_")
    with session_scope() as s:
        cal = s.get(CalibrationSet, job["calibration"]["id"])
        assert cal.examples[0]["score"] == 4.0 and cal.examples[0]["traits"] == {"organization": 5.0}
    batch = claims.claim("grading", 100, 60, 3, worker="W")
    assert {batch.jobs[j]["calibration"] for j in batch.jobs} == {job["calibration"]["id"]}


def test_overrides_accumulate_suggestions_and_recalibrate(client, teacher, other_teacher, clean_queue):
    h = teacher["headers"]
    rub = client.post("/api/v1/rubrics", json=RUBRIC, headers=h).get_json()["rubric"]
    job = submit(client, h, rubric_id=rub["id"]).get_json()["job"]
    assert client.post(job["links"]["recalibrate"], headers=h).status_code == 409  # still queued
    r = client.get(job["links"]["calibration_suggestions"], headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_graded"
    finish(job["id"])
    r = client.post(job["links"]["recalibrate"], headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "no_teacher_scores"
    assert client.post(job["links"]["recalibrate"], headers=other_teacher["headers"]).status_code == 404
    assert client.get(job["links"]["calibration_suggestions"] + "?n=0", headers=h).status_code == 422

    sug = client.get(job["links"]["calibration_suggestions"] + "?n=3", headers=h).get_json()
    assert len(sug["suggestions"]) == 3 and sug["scored"] == 0
    first = sug["suggestions"][0]["essay_id"]
    for score in (2, 3):  # scored twice: the newest counts, once
        r = client.post(f"/api/v1/jobs/{job['id']}/results/{first}/override", json={"score": score}, headers=h)
        assert r.status_code == 201
    with session_scope() as s:
        rows = s.scalars(select(RubricExample).where(RubricExample.rubric_id == rub["id"])).all()
        assert [(x.score, x.source) for x in rows] == [(3.0, "override")]
    assert client.get(rub["links"]["self"], headers=h).get_json()["rubric"]["calibration"]["examples"] == 1
    again = client.get(job["links"]["calibration_suggestions"] + "?n=3", headers=h).get_json()
    assert again["scored"] == 1 and first not in {x["essay_id"] for x in again["suggestions"]}

    r = client.post(job["links"]["recalibrate"], headers=h)
    assert r.status_code == 202, r.get_json()
    new = r.get_json()["job"]
    assert new["calibration"]["recalibrates"] == job["id"] and new["calibration"]["examples"] == 1
    assert new["progress"]["total"] == len(ESSAYS) and new["rubric_id"] == rub["id"]
    finish(new["id"], scores={e["id"]: 1.0 for e in ESSAYS})
    res = {x["essay_id"]: x for x in client.get(new["links"]["results"], headers=h).get_json()["results"]}
    assert res[first]["override"]["score"] == 3.0 and res[first]["final"]["source"] == "teacher"
    assert res[first]["final"]["score"] == 3.0 and res[first]["score"] == 1.0
    assert res["e4"]["previous"]["job_id"] == job["id"] and res["e4"]["previous"]["score"] == 5.0
    assert res["e4"]["final"] == {"score": 1.0, "traits": {"organization": 1.0}, "source": "model"}
    # scoring the same essay again in the regraded class replaces its example on the rubric (one per essay)
    r = client.post(f"/api/v1/jobs/{new['id']}/results/{first}/override", json={"score": 4}, headers=h)
    assert r.status_code == 201
    with session_scope() as s:
        rows = s.scalars(select(RubricExample).where(RubricExample.rubric_id == rub["id"])).all()
        assert [(x.score, x.job_id) for x in rows] == [(4.0, new["id"])]

    # a student's deletion reaches the copies of her essay in calibrations
    ref = next(e["student_ref"] for e in ESSAYS if e["id"] == first)
    out = client.delete(f"/api/v1/students/{ref}", headers=h).get_json()
    assert out["deleted"]["calibration_examples"] >= 2  # the rubric's example and the new job's frozen copy
    with session_scope() as s:
        cal = s.scalar(select(CalibrationSet).where(CalibrationSet.job_id == new["id"]))
        assert cal.examples == [] and cal.n == 0
        assert s.scalar(select(func.count()).select_from(RubricExample).where(RubricExample.rubric_id == rub["id"])) == 0


def test_a_rubric_suggests_and_starts_a_fine_tune(client, teacher, monkeypatch, clean_queue):
    monkeypatch.setenv("EDUQ_CALIBRATION_FINE_TUNE_AT", "3")
    monkeypatch.setenv("EDUQ_MIN_TRAINING_EXAMPLES", "3")
    h = teacher["headers"]
    two = [{"text": f"Letter {i} about uniforms and money.", "score": i + 1} for i in range(2)]
    rub = client.post("/api/v1/rubrics", json={**RUBRIC, "scored_examples": two}, headers=h).get_json()["rubric"]
    assert rub["calibration"]["fine_tune_suggested"] is False
    r = client.post(rub["links"]["fine_tune"], headers=h)
    assert r.status_code == 422 and "at least 3" in r.get_json()["error"]["message"]
    job = submit(client, h, rubric_id=rub["id"], scored_examples=[{"text": "A third scored letter.", "score": 5}])
    assert job.get_json()["job"]["calibration"]["examples"] == 3
    rub = client.get(rub["links"]["self"], headers=h).get_json()["rubric"]
    assert rub["calibration"] == {"examples": 3, "fine_tune_suggested": True, "fine_tune_at": 3}
    r = client.post(rub["links"]["fine_tune"], json={"method": "head"}, headers=h)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["job"]["kind"] == "fine_tune"
