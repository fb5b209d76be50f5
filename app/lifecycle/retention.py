"""Privacy: deleting a student's data on request, and the periodic retention purge.

Student deletion (DELETE /api/v1/students/{student_ref})
- Within the caller's tenancy: a teacher's own jobs, an admin's whole school.
- Deletes every essay with that student_ref, their grading results and score overrides.
  The jobs stay; their counters (total, done, failed) are reduced so progress stays consistent.
- Audited as `student.delete` with only a hash of the ref, never the ref itself.

Retention purge (Celery beat task `eduq.purge`, maintenance queue, every EDUQ_PURGE_INTERVAL_S)
- Jobs that finished (succeeded, failed or cancelled) and were created more than
  EDUQ_RETENTION_DAYS days ago lose their content: essays (with their results and overrides),
  lesson plans and fine-tune training examples are deleted.
- The job rows stay as tombstones (id, kind, status, times, counters) so that lists, ETags and
  audit records keep their references; `params.purged_at` says when the content went, and their
  results read as empty. Fine-tuned models made from a purged job are kept.
- EDUQ_RETENTION_DAYS=0 disables the purge. The audit trail is not purged here.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.lifecycle.jobs import FINISHED, scoped
from app.settings import settings
from app.store import audit
from app.store import calibration as calstore
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.tables import (
    CalibrationSet,
    Essay,
    GradingResult,
    Job,
    LessonPlan,
    RubricExample,
    ScoreOverride,
    TrainingExample,
    utcnow,
)
from app.store.views import iso

log = logging.getLogger("eduq.retention")


def delete_student(who: Principal, student_ref: str) -> dict:
    with session_scope() as s:
        rows = s.execute(scoped(select(Essay.id, Essay.job_id, Essay.status).join(Job, Job.id == Essay.job_id), who)
                         .where(Essay.student_ref == student_ref)).all()
        essay_ids = [r[0] for r in rows]
        counts = {"essays": 0, "results": 0, "overrides": 0, "calibration_examples": 0, "jobs_affected": 0}
        if essay_ids:
            per_job: dict[str, dict[str, int]] = {}
            for _id, job_id, status in rows:
                c = per_job.setdefault(job_id, {"total": 0, "done": 0, "failed": 0})
                c["total"] += 1
                c["done"] += status in ("done", "failed")
                c["failed"] += status == "failed"
            counts["overrides"] = s.execute(delete(ScoreOverride).where(ScoreOverride.essay_id.in_(essay_ids))).rowcount
            counts["results"] = s.execute(delete(GradingResult).where(GradingResult.essay_id.in_(essay_ids))).rowcount
            # the essays' copies in calibration sets and a stored rubric's examples (the latter also cascade)
            counts["calibration_examples"] = calstore.scrub_essays(s, essay_ids, [who.school_id])
            counts["calibration_examples"] += s.execute(
                delete(RubricExample).where(RubricExample.essay_id.in_(essay_ids))).rowcount
            counts["essays"] = s.execute(delete(Essay).where(Essay.id.in_(essay_ids))).rowcount
            now = utcnow()
            for job in s.scalars(select(Job).where(Job.id.in_(list(per_job))).with_for_update()):
                c = per_job[job.id]
                job.total = max(0, job.total - c["total"])
                job.done = max(0, job.done - c["done"])
                job.failed = max(0, job.failed - c["failed"])
                job.version += 1
                job.updated_at = now
            counts["jobs_affected"] = len(per_job)
        audit.record(s, who, "student.delete", None,
                     {"student_ref_sha256": audit.ref_digest(student_ref), **counts})
    log.info("student data deleted", extra={"teacher_id": who.teacher_id, **counts})
    return {"student_ref": student_ref, "deleted": counts}


def purge_expired(retention_days: int | None = None, batch: int = 200, now=None) -> dict:
    """Delete the content of finished jobs created more than retention_days ago (0: nothing)."""
    days = settings().retention_days if retention_days is None else retention_days
    totals = {"jobs": 0, "essays": 0, "results": 0, "overrides": 0, "lesson_plans": 0, "training_examples": 0,
              "calibration_sets": 0}
    if days <= 0:
        return {"disabled": True, **totals}
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    while True:
        with session_scope() as s:
            jobs = s.scalars(select(Job).where(Job.created_at < cutoff, Job.status.in_(FINISHED),
                                               func.coalesce(Job.params["purged_at"].as_string(), "") == "")
                             .order_by(Job.created_at).limit(batch).with_for_update(skip_locked=True)).all()
            if not jobs:
                break
            ids = [j.id for j in jobs]
            totals["overrides"] += s.execute(delete(ScoreOverride).where(ScoreOverride.job_id.in_(ids))).rowcount
            totals["results"] += s.execute(delete(GradingResult).where(GradingResult.job_id.in_(ids))).rowcount
            totals["essays"] += s.execute(delete(Essay).where(Essay.job_id.in_(ids))).rowcount
            totals["lesson_plans"] += s.execute(delete(LessonPlan).where(LessonPlan.job_id.in_(ids))).rowcount
            totals["training_examples"] += s.execute(
                delete(TrainingExample).where(TrainingExample.job_id.in_(ids))).rowcount
            # the texts copied into the jobs' calibration sets (a stored rubric's examples taken from these
            # essays go with them: rubric_examples.essay_id cascades)
            totals["calibration_sets"] += s.execute(delete(CalibrationSet).where(CalibrationSet.job_id.in_(ids))).rowcount
            for j in jobs:
                j.params = {**(j.params or {}), "purged_at": iso(now)}
                j.version += 1
                j.updated_at = now
            totals["jobs"] += len(jobs)
    if totals["jobs"]:
        with session_scope() as s:
            audit.record(s, None, "retention.purge", None, {"cutoff": iso(cutoff), "retention_days": days, **totals})
        log.info("retention purge", extra=totals)
    return totals
