"""The worker runtime's task bodies, called directly against the real Postgres (no Celery worker
process): the result writer, grade_batch for a fine-tuned model with a poison essay, the lesson
batch with a refused request, and the process's model runtime (loaded once, warmed up)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import Essay, GraderModel, GradingResult, Job, LessonPlan, Teacher
from tests.conftest import make_teacher
from tests.finetuned_fixture import FT_RUBRIC, NORMAL, train_head

pytestmark = pytest.mark.timeout(600)

MARKER = "<<eduq-unit-poison-19c2>>"


@pytest.fixture()
def fresh_settings(monkeypatch):
    from app.settings import reset_settings

    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def make_grading_job(texts: list[str], rubric: dict, model: str = "default", teacher_id: str | None = None) -> str:
    tid = teacher_id or make_teacher()[0]
    with session_scope() as s:
        t = s.get(Teacher, tid)
        job = Job(kind="grading", teacher_id=tid, school_id=t.school_id, total=len(texts), rubric=rubric, model=model)
        s.add(job)
        s.flush()
        s.add_all(Essay(job_id=job.id, position=i, client_id=f"e{i}", text=x, created_at=job.created_at)
                  for i, x in enumerate(texts))
        return job.id


def job_row(job_id: str) -> dict:
    with session_scope() as s:
        j = s.get(Job, job_id)
        return {"status": j.status, "done": j.done, "failed": j.failed, "total": j.total, "error": j.error,
                "finished_at": j.finished_at}


def essays_of(job_id: str) -> list[dict]:
    with session_scope() as s:
        rows = s.scalars(select(Essay).where(Essay.job_id == job_id).order_by(Essay.position)).all()
        return [{"id": e.id, "text": e.text, "status": e.status, "attempts": e.attempts, "error": e.error,
                 "claimed_by": e.claimed_by} for e in rows]


def results_of(job_id: str) -> dict[int, dict]:
    with session_scope() as s:
        rows = s.scalars(select(GradingResult).where(GradingResult.job_id == job_id)).all()
        return {r.position: {"essay_id": r.essay_id, "score": r.score, "traits": r.traits, "confidence": r.confidence,
                             "needs_review": r.needs_review, "review_reasons": r.review_reasons,
                             "feedback": r.feedback, "model_version": r.model_version} for r in rows}


def a_result(score: float = 4.0) -> dict:
    return {"score": score, "traits": {"organization": 3.0}, "confidence": 0.7, "needs_review": True,
            "review_reasons": ["too short: 3 words (under 20), too little text to grade reliably"],
            "feedback": [{"trait": "organization", "comment": "Two paragraphs."}], "model_version": "unit-test"}


# ----------------------------------------------------------------------------- the model runtime

def test_grading_runtime_is_loaded_once_and_warmed_up(pg_url, monkeypatch):
    from workers.runtime import models

    before = models._service
    builds = []
    orig = models.build_service
    monkeypatch.setattr(models, "build_service", lambda *a, **kw: builds.append(1) or orig(*a, **kw))
    svc = models.grading()
    assert models.grading() is svc and models._service is svc
    assert len(builds) == (0 if before is not None else 1)
    assert {"grader", "asap"} <= set(models.LOAD_SECONDS)
    assert all(v > 0 for k, v in models.LOAD_SECONDS.items() if k in ("grader", "asap"))
    # what the warm-up ran through works: both shipped graders answer a full result
    svc.warmup("default")
    asap = svc.registry.get("asap-3")
    assert asap is svc.registry.get("asap-1") and asap.encoder is svc.encoder
    assert svc.registry.get("default").encoder is svc.encoder and svc.reviewer.encoder is svc.encoder


# ----------------------------------------------------------------------------- the result writer

def test_result_writer_is_idempotent_claim_checked_and_updates_the_job(clean_queue):
    job_id = make_grading_job([f"essay {i}" for i in range(3)], {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}})
    b = claims.claim("grading", 10, 60, 3, worker="A")
    assert len(b) == 3 and job_row(job_id)["status"] == "running"
    first = b.items[:2]
    res = {i.id: a_result(4.0 + n) for n, i in enumerate(b.items)}

    assert claims.write_grading_results(first, res, worker="A") == 2
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"]) == ("running", 2, 0) and j["finished_at"] is None
    rows = results_of(job_id)
    assert sorted(rows) == [0, 1]
    assert rows[0] == {"essay_id": first[0].id, **a_result(4.0)} and rows[1]["score"] == 5.0

    # the same items again (a redelivered batch): nothing written twice
    assert claims.write_grading_results(first, res, worker="A") == 0
    assert claims.write_grading_results(b.items, res, worker="A") == 1  # only the one not yet written
    # (that call wrote the last essay: the job is finished by the same call)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(GradingResult).where(GradingResult.job_id == job_id)) == 3
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"], j["total"]) == ("succeeded", 3, 0, 3) and j["finished_at"]
    assert [e["status"] for e in essays_of(job_id)] == ["done"] * 3
    assert all(e["claimed_by"] is None for e in essays_of(job_id))


def test_result_writer_ignores_a_worker_without_the_claim(clean_queue):
    job_id = make_grading_job(["one", "two"], {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}})
    b = claims.claim("grading", 10, 60, 3, worker="A")
    res = {i.id: a_result() for i in b.items}
    assert claims.write_grading_results(b.items, res, worker="B") == 0
    assert results_of(job_id) == {}
    assert [e["status"] for e in essays_of(job_id)] == ["claimed", "claimed"]
    j = job_row(job_id)
    assert (j["status"], j["done"]) == ("running", 0)
    assert claims.write_grading_results(b.items[:1], res, worker="A") == 1
    j = job_row(job_id)
    assert (j["status"], j["done"]) == ("running", 1)
    assert claims.write_grading_results(b.items[1:], res, worker="A") == 1
    assert job_row(job_id)["status"] == "succeeded"


def test_background_writer_counts_each_essay_once(clean_queue):
    from workers.runtime.grading import BackgroundWriter

    job_id = make_grading_job(["one", "two", "three"], {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}})
    b = claims.claim("grading", 10, 60, 3)  # this process's worker id, as the writer uses
    res = {i.id: a_result() for i in b.items}
    w = BackgroundWriter()
    w.submit(b.items, res)
    w.submit(b.items, res)  # the same batch twice
    w.close()
    assert w.written == 3 and len(results_of(job_id)) == 3 and job_row(job_id)["status"] == "succeeded"


# ----------------------------------------------------------------------------- grade_batch, fine-tuned

@pytest.fixture()
def finetuned_model(pg_url, tmp_path, fresh_settings):
    """A `head` version trained in-process, stored in a local model store, registered as a GraderModel."""
    from app.store import model_store
    from app.store.grader_models import rubric_key
    from app.store.tables import new_id
    from workers.runtime import models

    monkeypatch = fresh_settings
    monkeypatch.setenv("EDUQ_MODEL_STORE", str(tmp_path / "store"))
    enc = models.grading().encoder
    model_id = new_id("mdl")
    out = train_head(tmp_path / "build", enc, model_id=model_id)
    uri, checksum = model_store.put(model_id, out)
    assert uri.startswith("file://") and str(tmp_path / "store") in uri
    tid, _ = make_teacher()
    with session_scope() as s:
        t = s.get(Teacher, tid)
        s.add(GraderModel(id=model_id, teacher_id=tid, school_id=t.school_id, name="unit ft", status="active",
                          rubric=FT_RUBRIC, rubric_key=rubric_key(FT_RUBRIC), base_model="default", method="head",
                          metrics={"qwk": 0.5}, artifact_uri=uri, checksum=checksum))
    return {"id": model_id, "teacher_id": tid}


def test_grade_batch_for_a_finetuned_model_isolates_the_poison_essay(clean_queue, finetuned_model, fresh_settings):
    from app.settings import reset_settings, settings
    from workers.runtime import models
    from workers.runtime.grading import grade_batch

    monkeypatch = fresh_settings
    monkeypatch.setenv("EDUQ_FAULT_POISON_MARKER", MARKER)
    monkeypatch.setenv("EDUQ_GRADING_MAX_ATTEMPTS", "2")
    reset_settings()
    cfg = settings()
    assert cfg.grading_max_attempts == 2
    mid = finetuned_model["id"]
    texts = [NORMAL, "I like rivers.", f"{NORMAL} {MARKER}", NORMAL.replace("library", "park")]
    job_id = make_grading_job(texts, FT_RUBRIC, model=mid, teacher_id=finetuned_model["teacher_id"])

    batch = claims.claim_batch("grading", cfg.grading_max_batch, 0.05, cfg.grading_lease_s, cfg.grading_max_attempts)
    assert len(batch) == 4 and batch.jobs[job_id]["model"] == mid
    assert grade_batch(batch) == 3

    # the version was loaded by the process's fine-tuned cache, on the process's one encoder
    svc = models.grading()
    g = svc.registry.get(mid)
    assert g.version == mid and g.method == "head" and g.encoder is svc.encoder

    rows = results_of(job_id)
    assert sorted(rows) == [0, 1, 3]
    assert rows[1]["score"] is None and rows[1]["review_reasons"][0].startswith("too short")  # "I like rivers."
    for pos, r in rows.items():
        assert r["model_version"] == mid
        assert r["needs_review"] == bool(r["review_reasons"])
        assert set(r["traits"]) == {"organization", "conventions"}
        if pos != 1:
            assert FT_RUBRIC["scale"]["min"] <= r["score"] <= FT_RUBRIC["scale"]["max"]
        assert 0.0 <= r["confidence"] <= 1.0
        assert all("by the fine-tuned model" not in c["comment"] for c in r["feedback"])
    for pos in (0, 3):
        assert [c["trait"] for c in rows[pos]["feedback"]] == ["organization", "conventions"], rows[pos]["feedback"]
    assert rows[1]["needs_review"] and rows[1]["review_reasons"][0].startswith("too short: 3 words")

    es = essays_of(job_id)
    assert [e["status"] for e in es] == ["done", "done", "pending", "done"]
    assert es[2]["attempts"] == 1 and "PoisonEssay" in es[2]["error"] and "1 attempt" in es[2]["error"]
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"]) == ("running", 3, 0)

    # the poison essay again, up to EDUQ_GRADING_MAX_ATTEMPTS: it fails for good, the job finishes
    batch = claims.claim_batch("grading", cfg.grading_max_batch, 0.05, cfg.grading_lease_s, cfg.grading_max_attempts)
    assert [i.position for i in batch.items] == [2]
    assert grade_batch(batch) == 0
    es = essays_of(job_id)
    assert es[2]["status"] == "failed" and es[2]["attempts"] == 2
    assert "PoisonEssay" in es[2]["error"] and "after 2 attempt" in es[2]["error"], es[2]["error"]
    assert sorted(results_of(job_id)) == [0, 1, 3]
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"], j["total"]) == ("succeeded", 4, 1, 4)
    assert j["error"]["code"] == "items_failed"
    assert len(claims.claim("grading", 10, 60, 2)) == 0


def test_grade_batch_with_a_deleted_model_fails_its_essays_for_good(clean_queue, pg_url, fresh_settings):
    from workers.runtime.grading import grade_batch

    fresh_settings.delenv("EDUQ_FAULT_POISON_MARKER", raising=False)
    job_id = make_grading_job([NORMAL, NORMAL], FT_RUBRIC, model="mdl_gone000000")
    batch = claims.claim_batch("grading", 64, 0.05, 60, 3)
    assert grade_batch(batch) == 0
    es = essays_of(job_id)
    assert [e["status"] for e in es] == ["failed", "failed"] and all("no longer exists" in e["error"] for e in es)
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"]) == ("failed", 2, 2)


# ----------------------------------------------------------------------------- the lesson task body

class StubEngine:
    """A lesson engine: refuses requests whose topic is 'refuse me', plans the others."""

    def __init__(self):
        self.calls: list[list[dict]] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if r.get("topic") == "refuse me":
                out.append({"lesson": None, "markdown": "", "warnings": [], "checks": {"passed": False},
                            "errors": [{"field": "grade", "message": "must be between K and 12"}]})
            else:
                out.append({"lesson": {"title": f"Plan: {r['topic']}", "sections": []}, "markdown": "# Plan",
                            "warnings": [], "checks": {"passed": True}, "model_version": "stub"})
        return out


def test_lesson_batch_fails_a_refused_request_for_good_and_writes_the_plan(clean_queue, monkeypatch):
    from workers.runtime import lessons, models

    engine = StubEngine()
    monkeypatch.setattr(models, "_lessons", engine)
    tid, _ = make_teacher()
    reqs = [{"topic": "refuse me", "grade": "13"}, {"topic": "photosynthesis", "grade": "7", "duration_minutes": 45}]
    with session_scope() as s:
        t = s.get(Teacher, tid)
        job = Job(kind="lesson", teacher_id=tid, school_id=t.school_id, total=2)
        s.add(job)
        s.flush()
        job_id = job.id
        s.add_all(LessonPlan(job_id=job.id, position=i, request=r, created_at=job.created_at) for i, r in enumerate(reqs))
    batch = claims.claim_batch("lesson", 8, 0.05, 60, 3)
    assert len(batch) == 2
    assert lessons.generate_batch(batch) == 1
    assert len(engine.calls) == 1 and len(engine.calls[0]) == 2  # one call for the batch
    with session_scope() as s:
        plans = s.scalars(select(LessonPlan).where(LessonPlan.job_id == job_id).order_by(LessonPlan.position)).all()
        got = [(p.status, p.attempts, p.error, p.result, p.claimed_by) for p in plans]
    refused, planned = got
    assert refused[0] == "failed" and refused[1] == 1 and refused[4] is None
    assert "grade: must be between K and 12" in refused[2] and refused[3] is None
    assert planned[0] == "done" and planned[2] is None and planned[4] is None
    assert planned[3]["lesson"]["title"] == "Plan: photosynthesis"
    j = job_row(job_id)
    assert (j["status"], j["done"], j["failed"], j["total"]) == ("succeeded", 2, 1, 2)
    assert len(claims.claim("lesson", 8, 60, 3)) == 0  # the refused one is not retried
