"""Jobs: status (ETag, 304, ?wait= long-poll), list with cursor, cancel, results (JSON, CSV)."""
from __future__ import annotations

import time

from flask import Response, request
from flask_smorest import Blueprint
from sqlalchemy import select

from app.errors import ApiError
from app.lifecycle import jobs as jobsvc
from app.settings import settings
from app.store import views
from app.store.db import session_scope
from app.store.tables import Job
from app.web import personal
from app.web import results as resultsvc
from app.web.auth import current, login_required
from app.web.schemas import (
    JobEnvelopeSchema,
    JobGetQuerySchema,
    JobListQuerySchema,
    JobListSchema,
    ResultsPageSchema,
    ResultsQuerySchema,
)

blp = Blueprint("jobs", __name__, url_prefix="/api/v1", description="Follow, list, cancel jobs and read their results.")
SECURITY = [{"bearerAuth": []}]
LONG_POLL_INTERVAL_S = 0.2  # ?wait= re-reads the job row from Postgres this often (latency vs API CPU)


def _read(job_id: str):
    with session_scope() as s:
        job = jobsvc.get_job(s, job_id, current())
        return views.job_view(job), views.etag(job)


def _version(job_id: str) -> str | None:
    """The job's ETag from its version alone (a primary-key read of one column): what a long-poll checks every
    LONG_POLL_INTERVAL_S, building the view only once the job has changed."""
    with session_scope() as s:
        version = s.scalar(select(Job.version).where(Job.id == job_id))
    return None if version is None else views.etag_of(job_id, version)


def _not_modified(tag: str) -> bool:
    return tag in request.if_none_match or request.if_none_match.contains_weak(tag.strip('"'))


@blp.route("/jobs/<job_id>", methods=["GET"])
@login_required
@blp.arguments(JobGetQuerySchema, location="query", as_kwargs=True)
@blp.response(200, JobEnvelopeSchema)
@blp.alt_response(304, description="Not modified since the ETag sent in If-None-Match.")
@blp.doc(summary="A job's status and progress", security=SECURITY)
def get_job(job_id: str, wait: float | None = None):
    view, tag = _read(job_id)
    baseline = next(iter(request.if_none_match.as_set()), None) if request.if_none_match else None
    baseline = f'"{baseline}"' if baseline else tag
    if wait:
        deadline = time.monotonic() + min(float(wait), settings().long_poll_max_s)
        while tag == baseline and view["status"] not in jobsvc.FINISHED and time.monotonic() < deadline:
            time.sleep(min(LONG_POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
            if _version(job_id) != tag:  # the job (already shown to be visible) changed, or is gone: read it
                view, tag = _read(job_id)
    if _not_modified(tag):
        resp = Response(status=304)
        resp.headers["ETag"] = tag
        return resp
    return {"job": view}, 200, {"ETag": tag, "Cache-Control": "no-cache"}


@blp.route("/jobs", methods=["GET"])
@login_required
@blp.arguments(JobListQuerySchema, location="query", as_kwargs=True)
@blp.response(200, JobListSchema)
@blp.doc(summary="Your jobs, newest first", security=SECURITY)
def list_jobs(limit: int = 50, kind: str | None = None, status: str | None = None, cursor: str | None = None):
    jobs, nxt = jobsvc.list_jobs(current(), kind, status, limit, cursor)
    return {"jobs": jobs, "next_cursor": nxt}


@blp.route("/jobs/<job_id>", methods=["DELETE"])
@login_required
@blp.response(200, JobEnvelopeSchema)
@blp.alt_response(409, description="The job has already finished.")
@blp.doc(summary="Cancel a queued or running job; finished parts stay readable", security=SECURITY)
def cancel_job(job_id: str):
    return {"job": jobsvc.cancel(current(), job_id)}


@blp.route("/jobs/<job_id>/results", methods=["GET"])
@login_required
@blp.arguments(ResultsQuerySchema, location="query", as_kwargs=True)
@blp.response(200, ResultsPageSchema)
@blp.doc(summary="Results finished so far (JSON pages, or ?format=csv)", security=SECURITY,
         responses={"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}})
def job_results(job_id: str, limit: int = 100, cursor: str | None = None, format: str = "json"):
    who = current()
    if format == "csv":
        name, body = resultsvc.results_csv(who, job_id)
        return Response(body, mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    if format in ("canvas", "classroom"):
        name, body = (personal.canvas_csv if format == "canvas" else personal.classroom_csv)(who, job_id)
        return Response(body, mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    if format == "docx":
        name, body = resultsvc.results_docx(who, job_id)
        return Response(body, mimetype="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    after = None
    if cursor:
        parts = views.decode_cursor(cursor)
        if len(parts) != 1 or not isinstance(parts[0], int):
            raise ApiError(422, "The cursor is not valid; use next_cursor from a previous page.", "validation_error",
                           [{"field": "cursor", "message": "Not a valid cursor."}])
        after = parts[0]
    return resultsvc.results_page(who, job_id, limit, after)


def init_app(api) -> None:
    api.register_blueprint(blp)
