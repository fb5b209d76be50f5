"""POST /api/v1/jobs/{job_id}/results/{essay_id}/override: a teacher's own score for an essay.

The override is stored beside the model's score (never replacing it), with who and when; the
newest one is what results JSON (`"override": {...}`; `final`: the teacher's score wins) and the CSV
export (`override_*` and `final_*` columns) show. On a job graded on a stored rubric it also joins that
rubric's scored examples (calibration by example, app/lifecycle/calibration.py). `essay_id` is the id
the essay was submitted with, as in the results.
"""
from __future__ import annotations

import math

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from app.errors import ApiError
from app.lifecycle import jobs as jobsvc
from app.store import audit
from app.store import calibration as calstore
from app.store.db import session_scope
from app.store.tables import Essay, GradingResult, ScoreOverride, utcnow
from app.web import results as resultsvc
from app.web.api.common import json_body
from app.web.api.common import validate as validate_body
from app.web.auth import current, login_required
from app.web.schemas import StrictSchema

blp = Blueprint("overrides", __name__, url_prefix="/api/v1",
                description="A teacher's own score for an essay, kept beside the model's.")


class OverrideRequestSchema(StrictSchema):
    score = fields.Float(required=True, allow_nan=False,
                         metadata={"description": "On the job rubric's scale and step."})
    traits = fields.Dict(keys=fields.String(), values=fields.Float(allow_nan=False), load_default=dict,
                         metadata={"description": "Trait name -> score on that trait's scale."})
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class OverrideViewSchema(Schema):
    score = fields.Float()
    traits = fields.Dict(keys=fields.String(), values=fields.Float())
    note = fields.String(allow_none=True)
    by = fields.String(metadata={"description": "The email of the teacher who made the override."})
    by_id = fields.String(metadata={"description": "That teacher's id."})
    at = fields.String(metadata={"format": "date-time"})


class OverrideResponseSchema(Schema):
    override = fields.Nested(OverrideViewSchema)
    result = fields.Dict(metadata={"description": "The grading result with its `override`."})


# "Essay 'e1' ..." for an essay the override endpoint refuses (app/store/tables.py: Essay.status)
UNGRADED_PHRASE = {"pending": "is still waiting to be graded", "claimed": "is being graded now",
                   "cancelled": "was cancelled before it was graded"}


def _on_scale(x: float, scale: dict) -> bool:
    lo, hi, step = float(scale["min"]), float(scale["max"]), float(scale.get("step") or 1)
    if not (lo - 1e-9 <= x <= hi + 1e-9):
        return False
    steps = (x - lo) / step
    return abs(steps - round(steps)) < 1e-6


def _scale_text(scale: dict) -> str:
    return f"{scale['min']:g} to {scale['max']:g} in steps of {float(scale.get('step') or 1):g}"


def check_against_rubric(data: dict, rubric: dict) -> list[dict]:
    """Each problem as {"field", "message"}; empty when the override fits the rubric."""
    problems = []
    scale = rubric.get("scale") or {}
    if scale and (not math.isfinite(data["score"]) or not _on_scale(data["score"], scale)):
        problems.append({"field": "score", "message": f"{data['score']:g} is not on the rubric's scale "
                                                       f"({_scale_text(scale)})."})
    traits = {t["name"]: (t.get("scale") or scale) for t in rubric.get("traits") or []}
    for name, value in (data.get("traits") or {}).items():
        if name not in traits:
            known = ", ".join(traits) or "none"
            problems.append({"field": f"traits.{name}", "message": f"The rubric has no trait {name!r} (traits: {known})."})
        elif traits[name] and not _on_scale(value, traits[name]):
            problems.append({"field": f"traits.{name}",
                             "message": f"{value:g} is not on the trait's scale ({_scale_text(traits[name])})."})
    return problems


@blp.route("/jobs/<job_id>/results/<path:essay_id>/override", methods=["POST"])
@login_required
@blp.doc(summary="Override the model's score for one essay (kept beside it, with who and when)",
         security=[{"bearerAuth": []}],
         requestBody={"required": True, "content": {"application/json": {"schema": OverrideRequestSchema}}})
@blp.response(201, OverrideResponseSchema, description="Stored; the newest override is the one shown.")
@blp.alt_response(404, description="No such job or essay visible to you.")
@blp.alt_response(409, description="The essay has not been graded yet.")
@blp.alt_response(422, description="The score or a trait is not on the rubric's scale.")
def override_result(job_id: str, essay_id: str):
    who = current()
    data = validate_body(OverrideRequestSchema(), json_body())
    with session_scope() as s:
        job = jobsvc.get_job(s, job_id, who)
        if job.kind != "grading":
            raise ApiError(404, f"Job {job_id!r} is not a grading job; it has no essays to override.", "not_found")
        essay = s.scalar(select(Essay).where(Essay.job_id == job.id, Essay.client_id == essay_id))
        if essay is None:
            raise ApiError(404, f"Job {job_id!r} has no essay {essay_id!r}.", "not_found")
        if essay.status not in ("done", "failed"):
            raise ApiError(409, f"Essay {essay_id!r} {UNGRADED_PHRASE.get(essay.status, 'has not been graded')}; only a "
                                "graded essay can be overridden.", "not_graded")
        problems = check_against_rubric(data, job.rubric or {})
        if problems:
            raise ApiError(422, "The override does not fit the rubric: " + " ".join(p["message"] for p in problems),
                           "validation_error", problems)
        s.add(ScoreOverride(essay_id=essay.id, job_id=job.id, teacher_id=who.teacher_id, score=data["score"],
                            traits=data.get("traits") or {}, note=data.get("note"), created_at=utcnow()))
        calstore.accumulate_override(s, job, essay, data["score"], data.get("traits") or {}, who.teacher_id)
        s.flush()
        res = s.scalar(select(GradingResult).where(GradingResult.essay_id == essay.id))
        result = resultsvc.grading_result(essay, res)
        result["override"] = resultsvc.latest_overrides(s, [essay.id]).get(essay.id)
        audit.record(s, who, "result.override", job.id,
                     {"essay_id": essay_id, "score": data["score"], "model_score": res.score if res else None})
    return {"override": result["override"], "result": result}, 201


def init_app(api) -> None:
    api.register_blueprint(blp)
