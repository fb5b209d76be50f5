"""Calibration by example on a graded class: which essays to score first, and regrade the rest with them.

    GET  /api/v1/jobs/{id}/calibration-suggestions?n=10   -> {"suggestions": [{"essay_id", "why", ...}]}
    POST /api/v1/jobs/{id}/recalibrate                    -> 202 {"job": JobView} (a new grading job)
"""
from __future__ import annotations

from flask_smorest import Blueprint

from app.lifecycle import calibration as calsvc
from app.web.auth import current, login_required
from app.web.schemas import JobEnvelopeSchema, SuggestionQuerySchema, SuggestionsSchema

blp = Blueprint("calibration", __name__, url_prefix="/api/v1",
                description="Calibrate the default grader with a teacher's own scores of a class.")
SECURITY = [{"bearerAuth": []}]


@blp.route("/jobs/<job_id>/calibration-suggestions", methods=["GET"])
@login_required
@blp.arguments(SuggestionQuerySchema, location="query")
@blp.response(200, SuggestionsSchema)
@blp.alt_response(404, description="No such grading job visible to you.")
@blp.alt_response(409, description="No essay of the job is graded yet.")
@blp.doc(summary="The essays of a graded class to score first (spread over the predicted range, unsure ones "
                 "favoured, never two near-duplicates, ones you scored left out)", security=SECURITY)
def calibration_suggestions(query, job_id: str):
    return calsvc.suggestions(current(), job_id, query["n"])


@blp.route("/jobs/<job_id>/recalibrate", methods=["POST"])
@login_required
@blp.response(202, JobEnvelopeSchema, description="A new grading job: the class regraded with your scores as "
                                                  "calibration; each result links the earlier one (previous).")
@blp.alt_response(404, description="No such grading job visible to you.")
@blp.alt_response(409, description="The job is still running, was not graded by the default grader, or none of its "
                                   "essays has a score of yours yet.")
@blp.doc(summary="Regrade a class with the scores you gave some of its essays", security=SECURITY)
def recalibrate(job_id: str):
    return {"job": calsvc.recalibrate(current(), job_id)}, 202


def init_app(api) -> None:
    api.register_blueprint(blp)
