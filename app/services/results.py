"""Reading results: JSON pages in essay order, the same rows as CSV."""
from __future__ import annotations

from sqlalchemy import select

from ..auth import Principal
from ..db import session_scope
from ..errors import ApiError
from ..models import Essay, GradingResult, LessonPlan
from .csvio import write_csv
from .jobs import decode_cursor, encode_cursor, get_job, job_view  # noqa: F401


def _grading_rows(s, job_id: str, after: int | None, limit: int | None):
    stmt = (select(Essay, GradingResult)
            .outerjoin(GradingResult, GradingResult.essay_id == Essay.id)
            .where(Essay.job_id == job_id, Essay.status.in_(("done", "failed")))
            .order_by(Essay.position))
    if after is not None:
        stmt = stmt.where(Essay.position > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return s.execute(stmt).all()


def grading_result(essay: Essay, res: GradingResult | None) -> dict:
    if res is None:
        return {"essay_id": essay.client_id, "student_ref": essay.student_ref, "status": "failed",
                "score": None, "traits": {}, "confidence": None, "needs_review": True,
                "review_reasons": ["could not be graded"], "feedback": [], "model_version": None,
                "error": essay.error}
    return {"essay_id": essay.client_id, "student_ref": essay.student_ref, "status": "graded",
            "score": res.score, "traits": res.traits or {}, "confidence": res.confidence,
            "needs_review": res.needs_review, "review_reasons": res.review_reasons or [],
            "feedback": res.feedback or [], "model_version": res.model_version, "error": None}


def _lesson_rows(s, job_id: str, after: int | None, limit: int | None):
    stmt = (select(LessonPlan).where(LessonPlan.job_id == job_id, LessonPlan.status.in_(("done", "failed")))
            .order_by(LessonPlan.position))
    if after is not None:
        stmt = stmt.where(LessonPlan.position > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return s.scalars(stmt).all()


def lesson_result(plan: LessonPlan) -> dict:
    out = {"index": plan.position, "status": "generated" if plan.status == "done" else "failed",
           "error": plan.error}
    out.update(plan.result or {})
    return out


def results_page(who: Principal, job_id: str, limit: int, after: int | None) -> dict:
    with session_scope() as s:
        job = get_job(s, job_id, who)
        view = job_view(job)
        if job.kind == "grading":
            rows = _grading_rows(s, job.id, after, limit)
            more = len(rows) > limit
            rows = rows[:limit]
            results = [grading_result(e, r) for e, r in rows]
            last = rows[-1][0].position if rows else None
        elif job.kind == "lesson":
            plans = _lesson_rows(s, job.id, after, limit)
            more = len(plans) > limit
            plans = plans[:limit]
            results = [lesson_result(p) for p in plans]
            last = plans[-1].position if plans else None
        else:
            results, more, last = ([job.params.get("result")] if job.params and job.params.get("result") else []), False, None
    return {"job": view, "results": results, "next_cursor": encode_cursor(last) if more else None}


def results_csv(who: Principal, job_id: str) -> tuple[str, str]:
    with session_scope() as s:
        job = get_job(s, job_id, who)
        if job.kind != "grading":
            raise ApiError(422, "CSV export is for grading jobs; use JSON or ?format=docx for lesson plans.",
                           "validation_error", [{"field": "format", "message": "csv is for grading jobs"}])
        rows = _grading_rows(s, job.id, None, None)
        traits = [t["name"] for t in (job.rubric or {}).get("traits") or []]
    header = (["essay_id", "student_ref", "status", "score"] + [f"trait_{t}" for t in traits]
              + ["confidence", "needs_review", "review_reasons", "feedback", "model_version", "error"])
    out = []
    for e, r in rows:
        d = grading_result(e, r)
        out.append([d["essay_id"], d["student_ref"] or "", d["status"], _num(d["score"])]
                   + [_num(d["traits"].get(t)) for t in traits]
                   + [_num(d["confidence"]), "true" if d["needs_review"] else "false",
                      "; ".join(d["review_reasons"]),
                      " | ".join(f"{f.get('trait')}: {f.get('comment')}" for f in d["feedback"]),
                      d["model_version"] or "", d["error"] or ""])
    return f"{job_id}-results.csv", write_csv(header, out)


def _num(v) -> str:
    if v is None:
        return ""
    return f"{v:g}" if isinstance(v, float) else str(v)


def results_docx(who: Principal, job_id: str) -> tuple[str, bytes]:
    with session_scope() as s:
        job = get_job(s, job_id, who)
        if job.kind != "lesson":
            raise ApiError(422, "Word export is for lesson jobs; use ?format=csv for grading results.",
                           "validation_error", [{"field": "format", "message": "docx is for lesson jobs"}])
        plans = [p.result["lesson"] for p in _lesson_rows(s, job.id, None, None) if p.result]
    from workers.lessons.render import lessons_to_docx  # python-docx; only lesson exports need it

    return f"{job_id}-lessons.docx", lessons_to_docx(plans)
