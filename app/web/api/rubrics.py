"""Stored rubrics: a named rubric (prompt, scale, traits) kept with its calibration.

    POST   /api/v1/rubrics                  -> 201 {"rubric": RubricView}   (optionally with scored_examples)
    GET    /api/v1/rubrics                  -> {"rubrics": [RubricView]}, newest first
    GET    /api/v1/rubrics/{id}             -> {"rubric": RubricView}
    DELETE /api/v1/rubrics/{id}             -> 204 (its jobs keep their copy of the rubric; its examples go)
    POST   /api/v1/rubrics/{id}/fine-tune   -> 202 {"job": JobView}: a fine-tune job on its scored examples

Grading jobs name one with `rubric_id`: the rubric's scored examples calibrate the default grader from
the first essay, and the teacher's scores of the job's essays (overrides) join them.
"""
from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import delete, select

from app.errors import ApiError
from app.lifecycle import calibration as calsvc
from app.settings import settings
from app.store import audit
from app.store import calibration as calstore
from app.store.db import session_scope
from app.store.tables import Rubric, RubricExample, utcnow
from app.store.views import iso
from app.web.api.common import idempotency_key, json_body, validate
from app.web.api.finetune import queue_fine_tune
from app.web.api.overrides import check_against_rubric
from app.web.auth import current, login_required
from app.web.schemas import (
    JobEnvelopeSchema,
    RubricCreateSchema,
    RubricEnvelopeSchema,
    RubricFineTuneSchema,
    RubricListSchema,
)

blp = Blueprint("rubrics", __name__, url_prefix="/api/v1",
                description="Named rubrics kept with their calibration (a teacher's scored essays).")
SECURITY = [{"bearerAuth": []}]
RUBRIC_KEYS = ("name", "prompt", "scale", "traits", "always_score")
LIST_LIMIT = 200


def view(r: Rubric, n_examples: int) -> dict:
    at = settings().calibration_fine_tune_at
    base = f"/api/v1/rubrics/{r.id}"
    return {"id": r.id, **{k: r.rubric[k] for k in RUBRIC_KEYS if k in r.rubric},
            "calibration": {"examples": n_examples, "fine_tune_suggested": n_examples >= at, "fine_tune_at": at},
            "created_at": iso(r.created_at), "links": {"self": base, "fine_tune": f"{base}/fine-tune"}}


@blp.route("/rubrics", methods=["POST"])
@login_required
@blp.doc(summary="Store a named rubric (and, optionally, essays you scored on it)", security=SECURITY,
         requestBody={"required": True, "content": {"application/json": {"schema": RubricCreateSchema}}})
@blp.response(201, RubricEnvelopeSchema)
@blp.alt_response(422, description="A bad rubric, or a scored example off its scale (named in details).")
def create_rubric():
    who = current()
    data = validate(RubricCreateSchema(), json_body())
    scored = data.pop("scored_examples", []) or []
    rubric = {k: data[k] for k in RUBRIC_KEYS if k in data}
    problems = [{**p, "field": f"scored_examples.{i}.{p['field']}"}
                for i, e in enumerate(scored) for p in check_against_rubric(e, rubric)]
    if problems:
        raise ApiError(422, "A scored example does not fit the rubric: " + problems[0]["message"], "validation_error",
                       problems)
    with session_scope() as s:
        r = Rubric(teacher_id=who.teacher_id, school_id=who.school_id, name=rubric["name"], rubric=rubric,
                   created_at=utcnow())
        s.add(r)
        s.flush()
        calstore.add_scored_examples(s, r.id, [calstore.example(e["text"], e["score"], e.get("traits"), "scored_example")
                                               for e in scored], None, who.teacher_id)
        audit.record(s, who, "rubric.create", None, {"rubric_id": r.id, "scored_examples": len(scored)})
        out = view(r, len(scored))
    return {"rubric": out}, 201


@blp.route("/rubrics", methods=["GET"])
@login_required
@blp.doc(summary="Your stored rubrics (a school admin: the school's), newest first", security=SECURITY)
@blp.response(200, RubricListSchema)
def list_rubrics():
    who = current()
    with session_scope() as s:
        rows = s.scalars(calsvc.rubric_scoped(select(Rubric), who)
                         .order_by(Rubric.created_at.desc(), Rubric.id.desc()).limit(LIST_LIMIT)).all()
        counts = calstore.count_examples(s, [r.id for r in rows])
        return {"rubrics": [view(r, counts.get(r.id, 0)) for r in rows]}


@blp.route("/rubrics/<rubric_id>", methods=["GET"])
@login_required
@blp.doc(summary="A stored rubric with its calibration", security=SECURITY)
@blp.response(200, RubricEnvelopeSchema)
@blp.alt_response(404, description="No such rubric visible to you.")
def get_rubric(rubric_id: str):
    who = current()
    with session_scope() as s:
        r = calsvc.get_rubric(s, who, rubric_id)
        return {"rubric": view(r, calstore.count_examples(s, [r.id]).get(r.id, 0))}


@blp.route("/rubrics/<rubric_id>", methods=["DELETE"])
@login_required
@blp.doc(summary="Delete a stored rubric and its scored examples (jobs graded on it keep their copy)", security=SECURITY)
@blp.response(204)
@blp.alt_response(404, description="No such rubric visible to you.")
def delete_rubric(rubric_id: str):
    who = current()
    with session_scope() as s:
        r = calsvc.get_rubric(s, who, rubric_id)
        n = s.execute(delete(RubricExample).where(RubricExample.rubric_id == r.id)).rowcount
        s.delete(r)
        audit.record(s, who, "rubric.delete", None, {"rubric_id": rubric_id, "examples": n})
    return "", 204


@blp.route("/rubrics/<rubric_id>/fine-tune", methods=["POST"])
@login_required
@blp.doc(summary="Fine-tune a grader on the rubric's scored examples", security=SECURITY,
         requestBody={"required": False, "content": {"application/json": {"schema": RubricFineTuneSchema}}})
@blp.response(202, JobEnvelopeSchema)
@blp.alt_response(404, description="No such rubric visible to you.")
@blp.alt_response(422, description="Fewer scored examples than a fine-tune needs (EDUQ_MIN_TRAINING_EXAMPLES).")
def fine_tune_rubric(rubric_id: str):
    from flask import request

    who = current()
    with session_scope() as s:
        calsvc.get_rubric(s, who, rubric_id)  # another teacher's rubric: 404 before anything else
    body = validate(RubricFineTuneSchema(), json_body() if request.get_data() else {})
    with session_scope() as s:
        r = calsvc.get_rubric(s, who, rubric_id)
        rubric, name = dict(r.rubric), r.name
        examples = [{"text": e["text"], "score": e["score"], "traits": e.get("traits") or {}}
                    for e in calstore.rubric_examples(s, r.id) if e.get("score") is not None]
    need = settings().min_training_examples
    if len(examples) < need:
        raise ApiError(422, f"Rubric {rubric_id!r} has {len(examples)} scored examples; a fine-tune needs at least {need}. "
                            f"Grading stays calibrated by them until then.", "validation_error",
                       [{"field": "examples", "message": f"{len(examples)} scored examples; at least {need} needed."}])
    data = {"name": body.get("name") or f"{name} (from its scored examples)", "rubric": rubric, "examples": examples,
            "method": body["method"], "base_model": "default", "validation_fraction": body["validation_fraction"],
            "seed": 13, "hyperparameters": {}, "callback_url": None}
    view_, created = queue_fine_tune(who, data, {"rubric_fine_tune": rubric_id, "n": len(examples), **body},
                                     idempotency_key())
    return {"job": view_}, (202 if created else 200)


def init_app(api) -> None:
    api.register_blueprint(blp)
