"""Reading results: JSON pages in essay order, the same rows as CSV."""
from __future__ import annotations

from sqlalchemy import select

from app.errors import ApiError
from app.lifecycle.jobs import get_job
from app.store import audit
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.tables import Essay, FollowUp, GradingResult, LessonPlan, ScoreOverride, Teacher
from app.store.views import decode_cursor, encode_cursor, iso, job_view  # noqa: F401
from app.web.csvio import write_csv


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
        return {"essay_id": essay.client_id, "student_ref": essay.student_ref, "text": essay.text, "status": "failed",
                "score": None, "traits": {}, "confidence": None, "needs_review": True,
                "review_reasons": ["could not be graded"], "feedback": [], "model_version": None,
                "error": essay.error}
    return {"essay_id": essay.client_id, "student_ref": essay.student_ref, "text": essay.text, "status": "graded",
            "score": res.score, "traits": res.traits or {}, "confidence": res.confidence,
            "needs_review": res.needs_review, "review_reasons": res.review_reasons or [],
            "feedback": res.feedback or [], "model_version": res.model_version, "error": None}


def latest_overrides(s, essay_ids: list[str]) -> dict[str, dict]:
    """essay row id -> the newest teacher override as {"score","traits","note","by","by_id","at"}."""
    if not essay_ids:
        return {}
    rows = s.execute(select(ScoreOverride, Teacher.email)
                     .join(Teacher, Teacher.id == ScoreOverride.teacher_id, isouter=True)
                     .where(ScoreOverride.essay_id.in_(essay_ids))
                     .order_by(ScoreOverride.created_at, ScoreOverride.id)).all()
    out: dict[str, dict] = {}
    for o, email in rows:  # oldest first: the newest wins
        out[o.essay_id] = {"score": o.score, "traits": o.traits or {}, "note": o.note,
                           "by": email or o.teacher_id, "by_id": o.teacher_id, "at": iso(o.created_at)}
    return out


def final(d: dict) -> dict:
    """What counts for a result: the teacher's own score wherever she gave one, else the model's."""
    o = d.get("override")
    if o:
        return {"score": o["score"], "traits": {**(d.get("traits") or {}), **(o.get("traits") or {})}, "source": "teacher"}
    return {"score": d.get("score"), "traits": d.get("traits") or {}, "source": "model"}


def _previous(s, rows) -> dict[str, dict]:
    """essay id -> the result its essay had in the job it was recalibrated from (the earlier score)."""
    prev_ids = {e.id: e.previous_essay_id for e, _ in rows if e.previous_essay_id}
    if not prev_ids:
        return {}
    got = {e.id: (e, r) for e, r in s.execute(
        select(Essay, GradingResult).outerjoin(GradingResult, GradingResult.essay_id == Essay.id)
        .where(Essay.id.in_(list(prev_ids.values())))).all()}
    out = {}
    for eid, pid in prev_ids.items():
        if pid in got:
            pe, pr = got[pid]
            out[eid] = {"job_id": pe.job_id, "score": pr.score if pr else None, "traits": (pr.traits if pr else None) or {},
                        "confidence": pr.confidence if pr else None, "model_version": pr.model_version if pr else None}
    return out


def _with_overrides(s, rows) -> list[dict]:
    from app.web.personal import previous_drafts

    ovr = latest_overrides(s, [e.id for e, _ in rows])
    prev = _previous(s, rows)
    drafts = previous_drafts(s, [e for e, _ in rows])
    out = []
    for e, r in rows:
        d = grading_result(e, r)
        d["override"] = ovr.get(e.id)
        d["final"] = final(d)
        if e.previous_essay_id:
            d["previous"] = prev.get(e.id)
        d["assignment"] = e.assignment
        if e.previous_draft_id:
            d["previous_draft"] = drafts.get(e.id)
        out.append(d)
    return out


def _item_rows(s, Item, job_id: str, after: int | None, limit: int | None):
    """A lesson or follow-up job's finished items in order, from position `after` on (one more than
    `limit`: the caller's sign of a next page)."""
    stmt = select(Item).where(Item.job_id == job_id, Item.status.in_(("done", "failed"))).order_by(Item.position)
    if after is not None:
        stmt = stmt.where(Item.position > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return s.scalars(stmt).all()


def follow_up_result(f: FollowUp) -> dict:
    req = f.request or {}
    out = {"essay_id": req.get("essay_id"), "student_ref": req.get("student_ref"),
           "status": "generated" if f.status == "done" else "failed", "error": f.error}
    out.update(f.result or {})
    return out


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
            results = _with_overrides(s, rows)
            last = rows[-1][0].position if rows else None
        elif job.kind == "follow_up":
            items = _item_rows(s, FollowUp, job.id, after, limit)
            more = len(items) > limit
            items = items[:limit]
            results = [follow_up_result(f) for f in items]
            last = items[-1].position if items else None
        elif job.kind == "lesson":
            plans = _item_rows(s, LessonPlan, job.id, after, limit)
            more = len(plans) > limit
            plans = plans[:limit]
            results = [lesson_result(p) for p in plans]
            last = plans[-1].position if plans else None
        else:
            results, more, last = ([job.params.get("result")] if job.params and job.params.get("result") else []), False, None
        audit.record(s, who, "results.read", job.id, {"count": len(results), "after": after})
    return {"job": view, "results": results, "next_cursor": encode_cursor(last) if more else None}


def results_csv(who: Principal, job_id: str) -> tuple[str, str]:
    with session_scope() as s:
        job = get_job(s, job_id, who)
        if job.kind != "grading":
            raise ApiError(422, "CSV export is for grading jobs; use JSON or ?format=docx for lesson plans.",
                           "validation_error", [{"field": "format", "message": "csv is for grading jobs"}])
        rows = _grading_rows(s, job.id, None, None)
        traits = [t["name"] for t in (job.rubric or {}).get("traits") or []]
        dicts = _with_overrides(s, rows)
        audit.record(s, who, "results.export", job.id, {"format": "csv", "rows": len(dicts)})
    header = (["essay_id", "student_ref", "status", "score"] + [f"trait_{t}" for t in traits]
              + ["confidence", "needs_review", "review_reasons", "feedback", "model_version", "error"]
              + ["override_score", "override_by", "override_at", "override_note"]
              + [f"override_trait_{t}" for t in traits]
              + ["final_score", "final_source"] + [f"final_trait_{t}" for t in traits]
              + ["previous_score", "previous_model_version"])
    out = []
    for d in dicts:
        o = d["override"] or {}
        out.append([d["essay_id"], d["student_ref"] or "", d["status"], _num(d["score"])]
                   + [_num(d["traits"].get(t)) for t in traits]
                   + [_num(d["confidence"]), "true" if d["needs_review"] else "false",
                      "; ".join(d["review_reasons"]),
                      " | ".join(f"{f.get('trait')}: {f.get('comment')}" for f in d["feedback"]),
                      d["model_version"] or "", d["error"] or ""]
                   + [_num(o.get("score")), o.get("by") or "", o.get("at") or "", o.get("note") or ""]
                   + [_num((o.get("traits") or {}).get(t)) for t in traits]
                   + [_num(d["final"]["score"]), d["final"]["source"]] + [_num(d["final"]["traits"].get(t)) for t in traits]
                   + [_num((d.get("previous") or {}).get("score")), (d.get("previous") or {}).get("model_version") or ""])
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
        plans = [p.result["lesson"] for p in _item_rows(s, LessonPlan, job.id, None, None) if p.result]
        audit.record(s, who, "results.export", job.id, {"format": "docx", "rows": len(plans)})
    from workers.ml.lessons.render import lessons_to_docx  # python-docx; only lesson exports need it

    return f"{job_id}-lessons.docx", lessons_to_docx(plans)
