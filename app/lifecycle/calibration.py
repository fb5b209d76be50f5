"""Calibration by example, the teacher's flow (docs/grading.md, "Calibration by example"):

    suggestions(who, job_id, n)       which graded essays to score first (workers/ml/grading/suggest.py)
    (the teacher scores them: POST .../results/{essay_id}/override)
    recalibrate(who, job_id)          a new grading job: the class again, graded with her scores
    calibration_for(s, job, ...)      a grading job's frozen calibration set at submission (scored_examples,
                                      and the stored rubric's accumulated examples)

Only the default grader is calibrated: a shipped ASAP grader or a fine-tuned model was trained on scored
essays of its rubric already.
"""
from __future__ import annotations

from sqlalchemy import insert, select

from app.errors import ApiError
from app.lifecycle import jobs as jobsvc
from app.store import calibration as calstore
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.overrides import latest as latest_overrides
from app.store.tables import Essay, GradingResult, Job, Rubric, ScoreOverride, new_id, utcnow
from workers.ml.grading.suggest import suggest

CALIBRATED_MODEL = "default"


def rubric_scoped(stmt, who: Principal):
    """Tenancy of stored rubrics, as of jobs: a teacher's own; a school admin's whole school."""
    if who.is_admin:
        return stmt.where(Rubric.school_id == who.school_id)
    return stmt.where(Rubric.teacher_id == who.teacher_id)


def get_rubric(s, who: Principal, rubric_id: str, status: int = 404, field: str | None = None) -> Rubric:
    r = s.scalar(rubric_scoped(select(Rubric).where(Rubric.id == rubric_id), who))
    if r is None:
        details = [{"field": field, "message": f"There is no rubric {rubric_id!r}."}] if field else None
        raise ApiError(status, f"No rubric {rubric_id!r} is visible to you.",
                       "validation_error" if status == 422 else "not_found", details)
    return r


def calibration_for(s, job: Job, rubric: dict, rubric_id: str | None, scored: list[dict], who: Principal) -> str | None:
    """At submission, inside the job's transaction: the job's scored examples join its stored rubric's,
    and the job is calibrated with all of them (None: nothing to calibrate with, or not the default grader)."""
    mine = [calstore.example(e["text"], e.get("score"), e.get("traits"), "scored_example") for e in scored]
    if rubric_id:
        job.rubric_id = rubric_id
        earlier = calstore.rubric_examples(s, rubric_id)
        if mine:
            calstore.add_scored_examples(s, rubric_id, mine, job.id, who.teacher_id)
    else:
        earlier = []
    examples = calstore.merge(earlier, mine)
    if not examples or job.model != CALIBRATED_MODEL:
        return None
    return calstore.freeze(s, job, rubric, examples, rubric_id)


def recalibrate(who: Principal, job_id: str) -> dict:
    """A new grading job (on the grading queue, batched like any other) with a copy of the class: each
    essay linked to the one it regrades (whose result stays readable), the teacher's scores carried over
    (her score wins wherever she gave one), and the calibration: her scores on this job, the examples the
    job was already calibrated with, and those of its stored rubric."""
    with session_scope() as s:
        job = jobsvc.get_job(s, job_id, who)
        if job.kind != "grading":
            raise ApiError(404, f"Job {job_id!r} is not a grading job; only a graded class can be recalibrated.", "not_found")
        if job.status not in jobsvc.FINISHED:
            raise ApiError(409, f"Job {job_id!r} is still {job.status}; recalibrate it when it has finished.", "job_running")
        if (job.model or CALIBRATED_MODEL) != CALIBRATED_MODEL:
            raise ApiError(409, f"Job {job_id!r} was graded by {job.model!r}; calibration by example teaches the default "
                                "grader (a fine-tuned or ASAP grader was trained on scored essays already).", "not_calibratable")
        essays = s.scalars(select(Essay).where(Essay.job_id == job.id).order_by(Essay.position)).all()
        overrides = latest_overrides(s, job_id=job.id)
        scored = [calstore.example(e.text, overrides[e.id].score, overrides[e.id].traits, "override", e.id)
                  for e in essays if e.id in overrides]
        if not scored:
            raise ApiError(409, "Score at least one essay of this job first (POST /api/v1/jobs/{id}/results/{essay_id}/"
                                "override; GET .../calibration-suggestions names the ones to start with).", "no_teacher_scores")
        earlier = calstore.examples_of_job(s, job.id)
        stored = calstore.rubric_examples(s, job.rubric_id) if job.rubric_id else []
        examples = calstore.merge(stored, earlier, scored)
        rubric, rubric_id, model = job.rubric, job.rubric_id, job.model or CALIBRATED_MODEL
        rows = [(e.id, e.client_id, e.student_ref, e.text) for e in essays]
        carried = {e.id: overrides[e.id] for e in essays if e.id in overrides}

    def fill(s, new):
        new.rubric_id = rubric_id
        ids = {old: new_id("ess") for old, *_ in rows}
        s.execute(insert(Essay), [{"id": ids[old], "job_id": new.id, "position": i, "client_id": cid, "text": text,
                                   "student_ref": ref, "status": "pending", "attempts": 0, "created_at": new.created_at,
                                   "previous_essay_id": old} for i, (old, cid, ref, text) in enumerate(rows)])
        now = utcnow()
        s.add_all(ScoreOverride(essay_id=ids[old], job_id=new.id, teacher_id=o.teacher_id, score=o.score,
                                traits=o.traits or {}, note=o.note, created_at=now) for old, o in carried.items())
        calstore.freeze(s, new, rubric, examples, rubric_id, recalibrates=job_id)

    body_hash = jobsvc.request_hash({"recalibrate": job_id, "at": utcnow().isoformat()})
    view, _ = jobsvc.create_job(who, "grading", body_hash=body_hash, idempotency_key=None, fill=fill, model=model,
                                rubric=rubric, total=len(rows))
    return view


def suggestions(who: Principal, job_id: str, n: int) -> dict:
    """The essays of a graded class the teacher should score first, with why (suggest.py)."""
    with session_scope() as s:
        job = jobsvc.get_job(s, job_id, who)
        if job.kind != "grading":
            raise ApiError(404, f"Job {job_id!r} is not a grading job; it has no essays to suggest.", "not_found")
        rows = s.execute(select(Essay.id, Essay.client_id, Essay.text, GradingResult.score, GradingResult.confidence)
                         .join(GradingResult, GradingResult.essay_id == Essay.id)
                         .where(Essay.job_id == job.id).order_by(Essay.position)).all()
        scored = set(latest_overrides(s, job_id=job.id))
        view = jobsvc.job_view(job)
    if not rows:
        raise ApiError(409, f"Job {job_id!r} has no graded essay yet; ask again when some are graded.", "not_graded")
    exclude = [i for i, r in enumerate(rows) if r.id in scored]
    picks = suggest([r.score for r in rows], [r.confidence for r in rows], [r.text for r in rows], n, exclude=exclude)
    return {"job": view, "scored": len(scored),
            "suggestions": [{"essay_id": rows[p.index].client_id, "why": p.why, "score": rows[p.index].score,
                             "confidence": rows[p.index].confidence} for p in picks]}
