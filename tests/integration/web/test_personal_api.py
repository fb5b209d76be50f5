"""From a grade to learning, below the worker processes (real Postgres; grading results and follow-ups
written as workers write them): follow-up jobs and their 409s, `"follow_up": true`, the revision loop
and progress (tenancy), insights, re-teach, the Canvas and Classroom exports, the feedback sheets."""
from __future__ import annotations

import csv
import io

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import Essay
from tests.conftest import RUBRIC
from workers.runtime.followups import follow_up

TEXTS = [
    "Dear Editor, I think our school should keep uniforms because they save families money. My mother says a "
    "uniform costs less than new clothes every month. Also, nobody is teased about brands. In conclusion, "
    "uniforms help everyone feel equal at school.",
    "uniforms are bad i dont like them becuase they are itchy and boring and everyone looks the same and you cant "
    "show who you are and teachers dont care about that at all and it is not fair to us",
    "Uniforms are a good idea. First, they are cheap. Second, they make mornings fast. However, some students "
    "want to show their style. A school could allow one free dress day each week. That is a fair answer.",
    "I am not sure about uniforms. Some days I like them and some days I do not. My friend has a uniform at her "
    "school and she says it is ok. I think it depends on the school and the students.",
]


def essays(assignment="letter-1", refs=("s1", "s2", "s3", "s4")):
    return [{"id": f"e{i}", "text": t, "student_ref": r, "assignment": assignment} for i, (t, r) in enumerate(zip(TEXTS, refs))]


def grade_all(scores):
    """Claim and write every pending essay as a grading worker would: scores[i] -> (holistic, organization)."""
    batch = claims.claim("grading", 100, 60, 3, worker="W")
    res = {}
    with session_scope() as s:
        for it in batch.items:
            e = s.get(Essay, it.id)
            h, o = scores[e.position]
            res[it.id] = {"score": h, "traits": {"organization": o}, "confidence": 0.5, "needs_review": e.position == 1,
                          "review_reasons": ["low confidence: 0.20"] if e.position == 1 else [],
                          "feedback": [{"trait": "organization", "comment": "ok", "evidence": None}], "model_version": "unit"}
    claims.write_grading_results(batch.items, res, worker="W")


def run_follow_ups():
    batch = claims.claim("follow_up", 100, 60, 3, worker="F")
    claims.write_lesson_results(batch.items, {it.id: follow_up(it.payload) for it in batch.items}, worker="F",
                                kind="follow_up")
    return batch


def test_follow_ups_insights_reteach_exports(client, teacher, other_teacher, clean_queue):
    h = teacher["headers"]
    job = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays()}, headers=h).get_json()["job"]
    r = client.post(f"/api/v1/jobs/{job['id']}/follow-ups", headers=h)
    assert r.status_code == 409 and "still queued" in r.get_json()["error"]["message"]
    grade_all([(5, 5), (2, 1), (4, 3), (3, 2)])
    assert client.post(f"/api/v1/jobs/{job['id']}/follow-ups", headers=other_teacher["headers"]).status_code == 404
    r = client.post(f"/api/v1/jobs/{job['id']}/results/e3/override", json={"score": 4, "traits": {"organization": 4}},
                    headers=h)
    assert r.status_code == 201
    r = client.post(f"/api/v1/jobs/{job['id']}/follow-ups", headers=h)
    assert r.status_code == 202, r.get_json()
    fu_job = r.get_json()["job"]
    assert fu_job["kind"] == "follow_up" and fu_job["progress"]["total"] == 4 and fu_job["grading_job"] == job["id"]
    assert client.post(f"/api/v1/jobs/{fu_job['id']}/follow-ups", headers=h).status_code == 409  # not a grading job
    batch = run_follow_ups()
    assert len(batch.items) == 4
    payloads = {it.payload["essay_id"]: it.payload for it in batch.items}
    assert payloads["e3"]["scores"] == {"score": 4.0, "traits": {"organization": 4.0}, "source": "teacher"}
    page = client.get(fu_job["links"]["results"], headers=h).get_json()
    assert page["job"]["status"] == "succeeded"
    res = {x["essay_id"]: x for x in page["results"]}
    for i, t in enumerate(TEXTS):
        x = res[f"e{i}"]
        assert x["student_ref"] == f"s{i + 1}" and x["model_version"].startswith("followup-")
        fu = x["follow_up"]
        assert fu["next_steps"] and all(s["evidence"] in t for s in fu["next_steps"] + fu["strengths"])
        assert all(e["source"] in t and e["trait"] == "organization" for e in fu["exercises"])
        assert isinstance(x["needs_review"], bool) and x["checks"]["passed"] == (not x["needs_review"])

    ins = client.get(f"/api/v1/jobs/{job['id']}/insights", headers=h).get_json()
    assert ins["graded"] == 4 and ins["holistic"]["distribution"] == {"2": 1, "4": 2, "5": 1}  # e3: the teacher's 4
    assert ins["traits"]["organization"]["distribution"] == {"1": 1, "3": 1, "4": 1, "5": 1}
    assert ins["weakest"][0]["trait"] == "organization" and ins["weakest"][0]["students"] == 2  # 1 and 3 of 1-6
    assert {g["next_step"] for g in ins["groups"]} == {"organization"} and ins["groups"][0]["source"] == "follow_ups"
    assert ins["review"]["needs_review"] == 1 and ins["review"]["reasons"] == {"low confidence": 1}
    assert ins["review"]["overridden"] == 1
    assert client.get(f"/api/v1/jobs/{job['id']}/insights", headers=other_teacher["headers"]).status_code == 404
    assert client.get(f"/api/v1/jobs/{fu_job['id']}/insights", headers=h).status_code == 409

    r = client.post(f"/api/v1/jobs/{job['id']}/reteach", headers=h)
    assert r.status_code == 202, r.get_json()
    lesson = r.get_json()["job"]
    assert lesson["kind"] == "lesson"
    plan = claims.claim("lesson", 10, 60, 3, worker="L").items[0].payload
    assert plan["topic"] == "Improving organization in our writing" and 3 <= int(plan["grade_level"]) <= 12
    assert "Weakest trait: organization" in plan["notes"] and "s1" not in plan["notes"]
    assert not any(t[:40] in plan["notes"] for t in TEXTS)  # patterns, never a student's sentence

    def export(fmt):
        return list(csv.reader(io.StringIO(client.get(job["links"]["results"] + f"?format={fmt}", headers=h)
                                           .get_data(as_text=True))))

    canvas = export("canvas")
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{RUBRIC['name']} ({job['id']})"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "6"]
    assert canvas[2:] == [["s1", "", "s1", "", "", "5"], ["s2", "", "s2", "", "", "2"], ["s3", "", "s3", "", "", "4"],
                          ["s4", "", "s4", "", "", "4"]]  # e3 (s4): the teacher's 4, not the model's 3
    room = export("classroom")
    assert room[0] == ["Last Name", "First Name", "Email Address", RUBRIC["name"]] and room[1] == ["Points", "", "", "6"]
    assert room[2] == ["s1", "", "", "5"] and room[5] == ["s4", "", "", "4"]
    r = client.get(f"/api/v1/jobs/{job['id']}/feedback-sheets", headers=h)
    assert r.status_code == 200 and r.mimetype.endswith("wordprocessingml.document")
    from docx import Document

    doc = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
    assert doc.count("feedback for s") == 4 and "Your next steps" in doc and "Answer key" in doc
    assert "Score: 4 (scale 1-6); given by your teacher" in doc


def test_follow_up_true_makes_the_job_when_grading_finishes(client, teacher, clean_queue):
    h = teacher["headers"]
    job = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays(), "follow_up": True},
                      headers=h).get_json()["job"]
    grade_all([(5, 5), (2, 1), (4, 3), (3, 2)])
    view = client.get(job["links"]["self"], headers=h).get_json()["job"]
    assert view["status"] == "succeeded" and "follow_ups" in view["links"]
    fu = client.get(view["links"]["follow_ups"], headers=h).get_json()["job"]
    assert fu["kind"] == "follow_up" and fu["progress"]["total"] == 4
    assert len(run_follow_ups().items) == 4
    assert client.get(view["links"]["follow_ups"], headers=h).get_json()["job"]["status"] == "succeeded"


def test_drafts_progress_and_their_limits(client, teacher, other_teacher, clean_queue):
    h = teacher["headers"]
    first = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays(refs=("p1", "p2", "p3", "p4"))},
                        headers=h).get_json()["job"]
    grade_all([(2, 1), (3, 2), (4, 3), (5, 4)])
    client.post(f"/api/v1/jobs/{first['id']}/follow-ups", headers=h)
    run_follow_ups()
    second = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays(refs=("p1", "p2", "p3", "p4"))},
                         headers=h).get_json()["job"]
    grade_all([(3, 3), (3, 1), (4, 3), (5, 4)])
    res = {x["essay_id"]: x for x in client.get(second["links"]["results"], headers=h).get_json()["results"]}
    d0 = res["e0"]["previous_draft"]
    assert d0["job_id"] == first["id"] and d0["essay_id"] == "e0" and d0["score"] == 2.0
    assert d0["change"] == {"organization": 2.0, "score": 1.0}
    assert d0["target_trait"] == "organization" and d0["target_improved"] is True
    assert res["e1"]["previous_draft"]["target_improved"] is False
    prog = client.get("/api/v1/students/p1/progress", headers=h).get_json()
    assert prog["student_ref"] == "p1" and len(prog["assignments"]) == 1
    drafts = prog["assignments"][0]["drafts"]
    assert prog["assignments"][0]["assignment"] == "letter-1" and [d["score"] for d in drafts] == [2.0, 3.0]
    assert [d["job_id"] for d in drafts] == [first["id"], second["id"]]
    assert client.get("/api/v1/students/p1/progress", headers=other_teacher["headers"]).get_json()["assignments"] == []
    assert client.get("/api/v1/students/nobody-here/progress", headers=h).get_json() == {"student_ref": "nobody-here",
                                                                                         "assignments": []}
    long = {"id": "x", "text": "Some text here for the essay.", "student_ref": "r", "assignment": "a" * 201}
    r = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": [long]}, headers=h)
    assert r.status_code == 422 and "assignment" in str(r.get_json()["error"]["details"])
    bad_ref = {**long, "assignment": "ok", "student_ref": "s" * 201}
    r = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": [bad_ref]}, headers=h)
    assert r.status_code == 422
