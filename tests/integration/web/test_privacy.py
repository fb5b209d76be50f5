"""Overrides, the audit trail, deleting a student's data and the retention purge, against the real
Postgres (results are written straight into the tables here: no worker runs in unit tests)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import RUBRIC, make_teacher

HALF_RUBRIC = {"name": "Half points", "prompt": "Describe a place.", "scale": {"min": 1, "max": 5, "step": 0.5},
               "traits": [{"name": "ideas"}, {"name": "voice", "scale": {"min": 0, "max": 3, "step": 1}}]}


def essays(*refs):
    return [{"id": f"e{i}", "text": f"Essay {i}: uniforms make mornings simpler and school calmer.",
             **({"student_ref": r} if r else {})} for i, r in enumerate(refs)]


def graded_job(client, headers, rubric=RUBRIC, refs=(None, None), grade=True) -> dict:
    """Submit through the API, then write results as a worker would."""
    from app.store.db import session_scope
    from app.store.tables import Essay, GradingResult, Job, utcnow

    r = client.post("/api/v1/grading-jobs", json={"rubric": rubric, "essays": essays(*refs)}, headers=headers)
    assert r.status_code == 202, r.get_data(as_text=True)
    job = r.get_json()["job"]
    if grade:
        with session_scope() as s:
            for e in s.scalars(select(Essay).where(Essay.job_id == job["id"])):
                e.status = "done"
                traits = {t["name"]: 3 for t in rubric.get("traits") or []}
                s.add(GradingResult(essay_id=e.id, job_id=e.job_id, position=e.position, score=3.0, traits=traits,
                                    confidence=0.8, needs_review=False, review_reasons=[], feedback=[],
                                    model_version="test"))
            s.execute(update(Job).where(Job.id == job["id"]).values(
                status="succeeded", done=len(refs), finished_at=utcnow(), version=Job.version + 1))
    return job


def override(client, headers, job, essay_id, body):
    return client.post(f"/api/v1/jobs/{job['id']}/results/{essay_id}/override", json=body, headers=headers)


def audit_actions(job_id=None, teacher_id=None):
    from app.store.db import session_scope
    from app.store.tables import AuditEvent

    with session_scope() as s:
        stmt = select(AuditEvent).order_by(AuditEvent.created_at, AuditEvent.id)
        if job_id:
            stmt = stmt.where(AuditEvent.job_id == job_id)
        if teacher_id:
            stmt = stmt.where(AuditEvent.teacher_id == teacher_id)
        return [(a.action, a.teacher_id, a.detail) for a in s.scalars(stmt)]


# ------------------------------------------------------------------------------ overrides

def test_override_is_kept_beside_the_model_score_in_json_and_csv(client, teacher):
    job = graded_job(client, teacher["headers"])
    r = override(client, teacher["headers"], job, "e1", {"score": 5, "traits": {"organization": 4}, "note": "Strong close."})
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert body["override"]["score"] == 5 and body["override"]["by_id"] == teacher["id"]
    assert body["result"]["score"] == 3  # the model's score is untouched

    res = client.get(job["links"]["results"], headers=teacher["headers"]).get_json()["results"]
    by_id = {x["essay_id"]: x for x in res}
    assert by_id["e0"]["override"] is None
    o = by_id["e1"]["override"]
    assert by_id["e1"]["score"] == 3
    assert o["score"] == 5 and o["traits"] == {"organization": 4} and o["note"] == "Strong close."
    assert o["by"].endswith("@example.org") and o["by_id"] == teacher["id"] and o["at"].endswith("Z")

    # a second override wins; the first stays stored
    assert override(client, teacher["headers"], job, "e1", {"score": 6}).status_code == 201
    res = client.get(job["links"]["results"], headers=teacher["headers"]).get_json()["results"]
    assert res[1]["override"]["score"] == 6 and res[1]["override"]["note"] is None

    r = client.get(job["links"]["results"] + "?format=csv", headers=teacher["headers"])
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert {"override_score", "override_by", "override_at"} <= set(rows[0])
    assert rows[0]["override_score"] == "" and rows[0]["override_by"] == ""
    assert rows[1]["score"] == "3" and rows[1]["override_score"] == "6"
    assert rows[1]["override_by"] == o["by"] and rows[1]["override_at"].endswith("Z")

    actions = [a for a, *_ in audit_actions(job["id"])]
    assert actions.count("result.override") == 2
    assert "results.read" in actions and "results.export" in actions


@pytest.mark.parametrize("body,field", [
    ({"score": 3.5}, "score"),  # off the step
    ({"score": 7}, "score"),  # above max
    ({"score": 0}, "score"),  # below min
    ({"score": 3, "traits": {"style": 3}}, "traits.style"),  # not a rubric trait
    ({"score": 3, "traits": {"organization": 9}}, "traits.organization"),
    ({"traits": {}}, "score"),  # score is required
    ({"score": "high"}, "score"),
    ({"score": 3, "extra": 1}, "extra"),
])
def test_override_off_the_rubric_is_422_naming_the_field(client, teacher, body, field):
    job = graded_job(client, teacher["headers"])
    r = override(client, teacher["headers"], job, "e0", body)
    assert r.status_code == 422, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["code"] == "validation_error"
    assert field in {d["field"] for d in err["details"]}


def test_override_on_half_point_and_trait_scales(client, teacher):
    job = graded_job(client, teacher["headers"], rubric=HALF_RUBRIC)
    r = override(client, teacher["headers"], job, "e0", {"score": 3.5, "traits": {"ideas": 4.5, "voice": 0}})
    assert r.status_code == 201
    r = override(client, teacher["headers"], job, "e0", {"score": 3.5, "traits": {"voice": 4}})
    assert r.status_code == 422 and r.get_json()["error"]["details"][0]["field"] == "traits.voice"
    assert override(client, teacher["headers"], job, "e0", {"score": 3.25}).status_code == 422


def test_override_tenancy_and_state(client, teacher, other_teacher):
    job = graded_job(client, teacher["headers"])
    r = override(client, other_teacher["headers"], job, "e0", {"score": 4})
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert override(client, teacher["headers"], job, "nope", {"score": 4}).status_code == 404
    assert override(client, {}, job, "e0", {"score": 4}).status_code == 401
    r = client.post(f"/api/v1/jobs/{job['id']}/results/e0/override", data="score=4", headers=teacher["headers"],
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415
    pending = graded_job(client, teacher["headers"], grade=False)
    r = override(client, teacher["headers"], pending, "e0", {"score": 4})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_graded"
    # an admin of the school may override; an admin of another school may not
    _, admin = make_teacher(school="Test School", role="admin")
    assert override(client, {"Authorization": f"Bearer {admin}"}, job, "e0", {"score": 2}).status_code == 201
    _, stranger = make_teacher(school="Other School", role="admin")
    assert override(client, {"Authorization": f"Bearer {stranger}"}, job, "e0", {"score": 2}).status_code == 404


def test_reads_are_audited_with_who(client, teacher):
    job = graded_job(client, teacher["headers"])
    client.get(job["links"]["results"] + "?limit=1", headers=teacher["headers"])
    client.get(job["links"]["results"] + "?format=csv", headers=teacher["headers"])
    events = audit_actions(job["id"])
    assert [(a, t) for a, t, _ in events] == [("results.read", teacher["id"]), ("results.export", teacher["id"])]
    assert events[0][2]["count"] == 1 and events[1][2] == {"format": "csv", "rows": 2}


# ------------------------------------------------------------------------------ deleting a student

def test_delete_student_removes_essays_results_overrides_within_tenancy(client, teacher, other_teacher):
    from app.store.db import session_scope
    from app.store.tables import Essay, GradingResult, Job, ScoreOverride

    mine = graded_job(client, teacher["headers"], refs=("stu-42", "stu-7"))
    mine2 = graded_job(client, teacher["headers"], refs=("stu-42",))
    theirs = graded_job(client, other_teacher["headers"], refs=("stu-42",))
    assert override(client, teacher["headers"], mine, "e0", {"score": 4}).status_code == 201

    r = client.delete("/api/v1/students/stu-42", headers=teacher["headers"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {"student_ref": "stu-42",
                            "deleted": {"essays": 2, "results": 2, "overrides": 1, "calibration_examples": 0, "jobs_affected": 2}}
    with session_scope() as s:
        refs = s.scalars(select(Essay.student_ref).where(Essay.job_id.in_([mine["id"], mine2["id"]]))).all()
        assert refs == ["stu-7"]
        assert s.scalar(select(func.count()).select_from(ScoreOverride).where(ScoreOverride.job_id == mine["id"])) == 0
        assert s.scalar(select(func.count()).select_from(GradingResult).where(GradingResult.job_id == theirs["id"])) == 1
        j = s.get(Job, mine["id"])
        assert (j.total, j.done) == (1, 1)
    res = client.get(mine["links"]["results"], headers=teacher["headers"]).get_json()
    assert [x["essay_id"] for x in res["results"]] == ["e1"]
    assert res["job"]["progress"]["total"] == 1

    # the other teacher's student with the same ref is untouched; deleting again answers zeros
    again = client.delete("/api/v1/students/stu-42", headers=teacher["headers"]).get_json()
    assert again["deleted"] == {"essays": 0, "results": 0, "overrides": 0, "calibration_examples": 0, "jobs_affected": 0}
    ev = [e for e in audit_actions(teacher_id=teacher["id"]) if e[0] == "student.delete"]
    assert len(ev) == 2 and ev[0][2]["essays"] == 2
    assert "stu-42" not in str(ev)  # only a hash of the ref is kept


def test_admin_deletes_school_wide_and_auth_is_required(client, other_teacher):
    from app.store.db import session_scope
    from app.store.tables import Essay

    _, colleague = make_teacher(school="Other School")
    ch = {"Authorization": f"Bearer {colleague}"}
    a = graded_job(client, other_teacher["headers"], refs=("kid-1",))
    b = graded_job(client, ch, refs=("kid-1",))
    _, outsider_admin = make_teacher(school="Elsewhere", role="admin")
    outsider = graded_job(client, {"Authorization": f"Bearer {outsider_admin}"}, refs=("kid-1",))
    assert client.delete("/api/v1/students/kid-1").status_code == 401
    _, admin = make_teacher(school="Other School", role="admin")
    r = client.delete("/api/v1/students/kid-1", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200 and r.get_json()["deleted"]["essays"] == 2
    with session_scope() as s:
        left = s.scalars(select(Essay.job_id).where(Essay.student_ref == "kid-1")).all()
    assert outsider["id"] in left and a["id"] not in left and b["id"] not in left


# ------------------------------------------------------------------------------ retention purge

def test_purge_deletes_content_of_old_finished_jobs_and_keeps_tombstones(client, teacher):
    from app.lifecycle.retention import purge_expired
    from app.store.db import session_scope
    from app.store.tables import Essay, GradingResult, Job, LessonPlan, ScoreOverride, utcnow

    old = graded_job(client, teacher["headers"], refs=("s1", "s2"))
    assert override(client, teacher["headers"], old, "e0", {"score": 2}).status_code == 201
    recent = graded_job(client, teacher["headers"])
    lesson = client.post("/api/v1/lesson-jobs", headers=teacher["headers"], json={
        "topic": "Fractions", "subject": "Math", "grade_level": "4", "duration_minutes": 40}).get_json()["job"]
    old_running = graded_job(client, teacher["headers"], grade=False)
    long_ago = utcnow() - timedelta(days=400)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id.in_([old["id"], lesson["id"], old_running["id"]]))
                  .values(created_at=long_ago))
        s.execute(update(Job).where(Job.id == lesson["id"]).values(status="succeeded"))

    assert purge_expired(retention_days=0) == {"disabled": True, "jobs": 0, "essays": 0, "results": 0,
                                               "overrides": 0, "lesson_plans": 0, "training_examples": 0,
                                               "calibration_sets": 0}
    totals = purge_expired(retention_days=365)
    assert totals["jobs"] >= 2 and totals["essays"] >= 2 and totals["results"] >= 2
    assert totals["overrides"] >= 1 and totals["lesson_plans"] >= 1
    with session_scope() as s:
        for jid in (old["id"], lesson["id"]):
            job = s.get(Job, jid)
            assert job is not None and job.params["purged_at"]  # a tombstone stays
        assert s.scalar(select(func.count()).select_from(Essay).where(Essay.job_id == old["id"])) == 0
        assert s.scalar(select(func.count()).select_from(GradingResult).where(GradingResult.job_id == old["id"])) == 0
        assert s.scalar(select(func.count()).select_from(ScoreOverride).where(ScoreOverride.job_id == old["id"])) == 0
        assert s.scalar(select(func.count()).select_from(LessonPlan).where(LessonPlan.job_id == lesson["id"])) == 0
        # recent jobs and unfinished ones keep everything
        assert s.scalar(select(func.count()).select_from(Essay).where(Essay.job_id == recent["id"])) == 2
        assert s.scalar(select(func.count()).select_from(Essay).where(Essay.job_id == old_running["id"])) == 2
    r = client.get(old["links"]["results"], headers=teacher["headers"])
    assert r.status_code == 200 and r.get_json()["results"] == []
    assert purge_expired(retention_days=365)["jobs"] == 0  # nothing twice
    assert any(a == "retention.purge" for a, *_ in audit_actions())


def test_purge_task_is_scheduled_on_the_maintenance_queue():
    from app.lifecycle.broker import celery_app
    from workers.tasks.maintenance import purge

    assert purge.name == "eduq.purge"
    entry = [e for e in celery_app.conf.beat_schedule.values() if e["task"] == "eduq.purge"]
    assert entry and entry[0]["options"]["queue"] == "maintenance"
    assert celery_app.conf.task_routes["eduq.purge"]["queue"] == "maintenance"
