"""POST /api/v1/lesson-jobs: one plan, or several as {"lessons": [...]}, on the lessons queue."""
from __future__ import annotations

from flask_smorest import Blueprint

from app.lifecycle import jobs as jobsvc
from app.store.tables import LessonPlan
from app.web.api.common import idempotency_key, json_body, validate
from app.web.auth import current, login_required
from app.web.schemas import JobEnvelopeSchema, LessonBatchJobSchema, SingleLessonJobSchema

blp = Blueprint("lessons", __name__, url_prefix="/api/v1", description="Write lesson plans.")


@blp.route("/lesson-jobs", methods=["POST"])
@login_required
@blp.doc(
    summary="Request one lesson plan or several",
    requestBody={"required": True, "content": {"application/json": {"schema": {
        "oneOf": [SingleLessonJobSchema, LessonBatchJobSchema]}}}},
    parameters=[{"in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200}}],
    security=[{"bearerAuth": []}],
)
@blp.response(202, JobEnvelopeSchema, description="Accepted and queued.")
@blp.alt_response(200, schema=JobEnvelopeSchema, description="Replay of an Idempotency-Key: the first job.")
def submit_lessons():
    who = current()
    raw = json_body()
    if isinstance(raw, dict) and "lessons" in raw:
        data = validate(LessonBatchJobSchema(), raw)
        plans = data["lessons"]
    else:
        data = validate(SingleLessonJobSchema(), raw)
        plans = [{k: v for k, v in data.items() if k != "callback_url"}]
    key = idempotency_key()

    def fill(s, job):
        job.total = len(plans)
        s.add_all(LessonPlan(job_id=job.id, position=i, request=p, created_at=job.created_at)
                  for i, p in enumerate(plans))

    view, created = jobsvc.create_job(who, "lesson", body_hash=jobsvc.request_hash(raw), idempotency_key=key,
                                      fill=fill, model="default", callback_url=data.get("callback_url"))
    return {"job": view}, (202 if created else 200)


def init_app(api) -> None:
    api.register_blueprint(blp)
