"""From a grade to learning: each student's next steps, class insights, a re-teach lesson, progress
across drafts, and the class's feedback sheets (the gradebook exports are ?format=canvas|classroom
on the results).

    POST /api/v1/jobs/{id}/follow-ups        -> 202 {"job": JobView} (kind follow_up, lessons queue)
    GET  /api/v1/jobs/{id}/insights          -> distributions, weakest traits, groups, review summary
    POST /api/v1/jobs/{id}/reteach           -> 202 {"job": JobView} (a lesson job on the weakest trait)
    GET  /api/v1/jobs/{id}/feedback-sheets   -> one .docx, a page per student
    GET  /api/v1/students/{student_ref}/progress
"""
from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from app.lifecycle import followups as fusvc
from app.lifecycle import jobs as jobsvc
from app.store.tables import LessonPlan
from app.web import personal
from app.web.api.common import validate
from app.web.auth import current, login_required
from app.web.schemas import InsightsSchema, JobEnvelopeSchema, LessonRequestSchema, ProgressSchema_

blp = Blueprint("personal", __name__, url_prefix="/api/v1",
                description="Each student's next steps, class insights, re-teach lessons, progress and feedback sheets.")
SECURITY = [{"bearerAuth": []}]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@blp.route("/jobs/<job_id>/follow-ups", methods=["POST"])
@login_required
@blp.response(202, JobEnvelopeSchema, description="A follow_up job: one result per graded essay.")
@blp.alt_response(404, description="No such job visible to you.")
@blp.alt_response(409, description="Not a finished grading job (the message says why), or nothing graded.")
@blp.doc(summary="Each student's next steps from a finished grading job", security=SECURITY)
def follow_ups(job_id: str):
    return {"job": fusvc.request_follow_ups(current(), job_id)}, 202


@blp.route("/jobs/<job_id>/insights", methods=["GET"])
@login_required
@blp.response(200, InsightsSchema)
@blp.alt_response(404, description="No such job visible to you.")
@blp.alt_response(409, description="Not a grading job.")
@blp.doc(summary="What the class needs: score and trait distributions, weakest traits, groups by next step",
         security=SECURITY)
def insights(job_id: str):
    return personal.insights(current(), job_id)


@blp.route("/jobs/<job_id>/reteach", methods=["POST"])
@login_required
@blp.response(202, JobEnvelopeSchema, description="A lesson job aimed at the class's weakest trait.")
@blp.alt_response(404, description="No such job visible to you.")
@blp.alt_response(409, description="Not a grading job, or nothing graded yet.")
@blp.doc(summary="A lesson plan that re-teaches what the class's essays show it needs", security=SECURITY)
def reteach(job_id: str):
    who = current()
    req = validate(LessonRequestSchema(), personal.reteach_request(who, job_id))

    def fill(s, job):
        job.total = 1
        job.params = {"reteach": job_id}
        s.add(LessonPlan(job_id=job.id, position=0, request=req, created_at=job.created_at))

    view, _ = jobsvc.create_job(who, "lesson", body_hash=jobsvc.request_hash({"reteach": job_id, **req}),
                                idempotency_key=None, fill=fill, model="default")
    return {"job": view}, 202


@blp.route("/jobs/<job_id>/feedback-sheets", methods=["GET"])
@login_required
@blp.doc(summary="The class's feedback sheets: one .docx, a page per student", security=SECURITY,
         responses={"200": {"description": "The .docx file.",
                            "content": {DOCX: {"schema": {"type": "string", "format": "binary"}}}},
                    "404": {"description": "No such job visible to you."}, "409": {"description": "Not a grading job."}})
def feedback_sheets(job_id: str):
    name, body = personal.feedback_sheets(current(), job_id)
    return Response(body, mimetype=DOCX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blp.route("/students/<path:student_ref>/progress", methods=["GET"])
@login_required
@blp.response(200, ProgressSchema_)
@blp.doc(summary="A student's scores over time, per assignment and draft (your jobs; an admin: the school's)",
         security=SECURITY)
def progress(student_ref: str):
    from app.errors import ApiError

    if not student_ref.strip() or len(student_ref) > 200:
        raise ApiError(422, "student_ref must be 1 to 200 characters.", "validation_error",
                       [{"field": "student_ref", "message": "A student_ref must be 1 to 200 characters long."}])
    return personal.progress(current(), student_ref)


def init_app(api) -> None:
    api.register_blueprint(blp)
