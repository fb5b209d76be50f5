"""Follow-up jobs: each student's next steps from a finished grading job (a job kind of its own, on the
lessons queue; the items are `follow_ups` rows, claimed and written like lesson plans).

    request_follow_ups(who, job_id)   POST /api/v1/jobs/{id}/follow-ups -> the new job's view
    spawn(s, grading_job)             inside the transaction that finishes a grading job submitted with
                                      "follow_up": true (claims.refresh_jobs); published once it commits

Each item carries what its worker needs (the essay, the rubric, the scores that count: the teacher's
override wherever she gave one), so the worker reads nothing else while it works.
"""
from __future__ import annotations

from sqlalchemy import insert, select

from app.errors import ApiError
from app.lifecycle import jobs as jobsvc
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.overrides import latest as latest_overrides
from app.store.tables import Essay, FollowUp, GradingResult, Job, ScoreOverride, new_id, utcnow

KIND = "follow_up"


def final_scores(res: GradingResult | None, override: ScoreOverride | None) -> dict:
    """The scores that count: the teacher's override (its traits over the model's), else the model's."""
    traits = dict((res.traits if res else None) or {})
    if override is not None:
        traits.update(override.traits or {})
        return {"score": override.score, "traits": traits, "source": "teacher"}
    return {"score": res.score if res else None, "traits": traits, "source": "model"}


def _requests(s, job: Job) -> list[tuple[str, dict]]:
    """(essay row id, item request) for every graded essay of the job, in its order."""
    rows = s.execute(select(Essay, GradingResult).join(GradingResult, GradingResult.essay_id == Essay.id)
                     .where(Essay.job_id == job.id, Essay.status == "done").order_by(Essay.position)).all()
    overrides = latest_overrides(s, job_id=job.id)
    return [(e.id, {"essay_id": e.client_id, "student_ref": e.student_ref, "assignment": e.assignment,
                    "text": e.text, "rubric": job.rubric or {}, "scores": final_scores(r, overrides.get(e.id)),
                    "review_reasons": r.review_reasons or []})
            for e, r in rows]


def _fill(s, new: Job, grading: Job) -> None:
    reqs = _requests(s, grading)
    new.total = len(reqs)
    new.params = {**(new.params or {}), "grading_job": grading.id}
    if reqs:
        s.execute(insert(FollowUp), [{"id": new_id("fup"), "job_id": new.id, "position": i, "essay_id": eid,
                                      "request": req, "status": "pending", "attempts": 0, "created_at": new.created_at}
                                     for i, (eid, req) in enumerate(reqs)])


def _why_not(job: Job) -> str | None:
    if job.kind != "grading":
        return f"Job {job.id!r} is a {job.kind.replace('_', '-')} job; follow-ups are made from a finished grading job."
    if job.status in ("queued", "running"):
        return f"Job {job.id!r} is still {job.status}; ask for follow-ups when it has finished."
    if job.status != "succeeded":
        return f"Job {job.id!r} {jobsvc.FINISHED_PHRASE.get(job.status, 'did not succeed')}; it has no grades to follow up."
    return None


def request_follow_ups(who: Principal, job_id: str) -> dict:
    with session_scope() as s:
        job = jobsvc.get_job(s, job_id, who)
        why = _why_not(job)
        if why:
            raise ApiError(409, why, "not_a_finished_grading_job")
        if not s.scalar(select(Essay.id).where(Essay.job_id == job.id, Essay.status == "done").limit(1)):
            raise ApiError(409, f"Job {job_id!r} has no graded essay to follow up.", "nothing_graded")

    def fill(s, new):
        grading = s.get(Job, job_id)
        _fill(s, new, grading)

    view, _ = jobsvc.create_job(who, KIND, body_hash=jobsvc.request_hash({"follow_ups": job_id, "at": utcnow().isoformat()}),
                                idempotency_key=None, fill=fill)
    return view


def spawn(s, grading: Job) -> str:
    """A follow-up job for a grading job that has just finished (its flag "follow_up"), in the caller's
    transaction; unpublished (published_at NULL) until claims.after_finish publishes it (or the sweeper does)."""
    now = utcnow()
    new = Job(kind=KIND, status="queued", teacher_id=grading.teacher_id, school_id=grading.school_id,
              params={"grading_job": grading.id}, created_at=now, updated_at=now, published_at=None, publish_count=0,
              total=0)
    s.add(new)
    s.flush()
    _fill(s, new, grading)
    if new.total == 0:  # nothing graded: finished at once, nothing to publish
        new.status, new.finished_at = "succeeded", now
    grading.params = {**(grading.params or {}), "follow_up_job": new.id}
    return new.id
