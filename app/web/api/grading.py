"""POST /api/v1/grading-jobs: JSON or a CSV upload; rows committed, then the job id queued."""
from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from app.errors import ApiError, problems_message
from app.lifecycle import calibration as calsvc
from app.lifecycle import jobs as jobsvc
from app.settings import settings
from app.store.db import copy_rows, session_scope
from app.store.grader_models import resolve_grading_model
from app.store.tables import Essay, new_id
from app.web.api.common import body_kind, form_json, idempotency_key, json_body, validate
from app.web.api.overrides import check_against_rubric
from app.web.auth import current, login_required
from app.web.csvio import decode_upload, read_rows
from app.web.personal import link_drafts
from app.web.schemas import EssaySchema, GradingJobRequestSchema, GradingMultipartSchema, JobEnvelopeSchema

blp = Blueprint("grading", __name__, url_prefix="/api/v1", description="Grade a class of essays against a rubric.")


def _from_csv() -> tuple[dict, dict]:
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "Upload the class as a CSV in the form field 'file'.", "validation_error",
                       [{"field": "file", "message": "Missing data for required field."}])
    raw = upload.read()
    text = decode_upload(raw)
    rows = read_rows(text, required=("id", "text"), optional=("student_ref", "assignment"))
    essays, errors = [], []
    schema = EssaySchema()
    for line, row in rows:
        item = {"id": row.get("id", "").strip(), "text": row.get("text", ""),
                "student_ref": (row.get("student_ref") or "").strip() or None,
                "assignment": (row.get("assignment") or "").strip() or None}
        msgs = schema.validate(item)
        for field, fm in msgs.items():
            for m in (fm if isinstance(fm, list) else [fm]):
                errors.append({"line": line, "field": field, "message": str(m)})
        essays.append(item)
    if errors:
        raise ApiError(422, problems_message("The CSV", errors, f"on line {errors[0]['line']}"), "invalid_csv", errors)
    seen: dict[str, int] = {}
    for (line, _), e in zip(rows, essays):
        if e["id"] in seen:
            raise ApiError(422, f"The essay id {e['id']!r} on line {line} repeats the one on line {seen[e['id']]}, so "
                                "nothing was queued.", "invalid_csv",
                           [{"line": line, "field": "id", "message": f"The id repeats the one on line {seen[e['id']]}."}])
        seen[e["id"]] = line
    if not essays:
        raise ApiError(422, "The CSV has a header but no essays.", "invalid_csv",
                       [{"field": "file", "line": 2, "message": "The CSV has no essay rows."}])
    rubric_id = (request.form.get("rubric_id") or "").strip() or None
    data = {"rubric": None if rubric_id and not request.form.get("rubric") else form_json("rubric"),
            "rubric_id": rubric_id, "model": request.form.get("model") or "default",
            "follow_up": (request.form.get("follow_up") or "").strip().lower() in ("1", "true", "yes", "on"),
            "essays": essays, "callback_url": request.form.get("callback_url") or None}
    hash_src = {"csv_sha256": jobsvc.request_hash(text), "rubric": data["rubric"], "rubric_id": rubric_id,
                "model": data["model"], "callback_url": data["callback_url"]}
    return data, hash_src


@blp.route("/grading-jobs", methods=["POST"])
@login_required
@blp.doc(
    summary="Submit a class of essays for grading",
    requestBody={"required": True, "content": {
        "application/json": {"schema": GradingJobRequestSchema},
        "multipart/form-data": {"schema": GradingMultipartSchema},
    }},
    parameters=[{"in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200},
                 "description": "The same key and body again returns the first job (200); another body is a 409."}],
    security=[{"bearerAuth": []}],
)
@blp.response(202, JobEnvelopeSchema, description="Accepted and queued.")
@blp.alt_response(200, schema=JobEnvelopeSchema, description="Replay of an Idempotency-Key: the first job.")
def submit_grading():
    who = current()
    kind = body_kind(multipart_ok=True)
    if kind == "json":
        raw = json_body()
        data = validate(GradingJobRequestSchema(), raw)
        hash_src = raw
    else:
        raw, hash_src = _from_csv()
        data = validate(GradingJobRequestSchema(), raw)
    key = idempotency_key()
    rubric_id = data.get("rubric_id")
    stored = None
    if rubric_id:
        with session_scope() as s:
            stored = dict(calsvc.get_rubric(s, who, rubric_id, status=422, field="rubric_id").rubric)
    model_id, rubric = resolve_grading_model(who, data["model"], stored or data.get("rubric"))
    scored = data.get("scored_examples") or []
    if scored:
        if data["model"] != calsvc.CALIBRATED_MODEL:
            raise ApiError(422, f"scored_examples calibrate the default grader; model {data['model']!r} was trained on "
                                "scored essays already. Leave them out, or grade with model 'default'.", "validation_error",
                           [{"field": "scored_examples", "message": "Only the default grader is calibrated."}])
        problems = [{**p, "field": f"scored_examples.{i}.{p['field']}", "index": i}
                    for i, e in enumerate(scored) for p in check_against_rubric(e, rubric)]
        if problems:
            raise ApiError(422, problems_message("The scored examples", problems, f"in scored example {problems[0]['index']}"),
                           "validation_error", problems)
    essays = data["essays"]

    def fill(s, job):
        drafts = link_drafts(s, who, essays)  # the revision loop: each student's earlier draft of the assignment
        copy_rows(s, Essay.__table__, [{"id": new_id("ess"), "job_id": job.id, "position": i, "client_id": e["id"],
                                   "text": e["text"], "student_ref": e.get("student_ref"), "status": "pending",
                                   "attempts": 0, "created_at": job.created_at, "assignment": e.get("assignment"),
                                   "previous_draft_id": drafts.get((e.get("student_ref"), e.get("assignment")))}
                                  for i, e in enumerate(essays)])
        calsvc.calibration_for(s, job, rubric, rubric_id, scored, who)
        if data.get("follow_up"):
            job.params = {**(job.params or {}), "follow_up": True}

    view, created = jobsvc.create_job(
        who, "grading", body_hash=jobsvc.request_hash(hash_src), idempotency_key=key, fill=fill,
        model=model_id, rubric=rubric, callback_url=data.get("callback_url"), total=len(essays))
    return {"job": view}, (202 if created else 200)


def init_app(api) -> None:
    api.register_blueprint(blp)
    _ = settings  # limits are read by the schemas at validation time
