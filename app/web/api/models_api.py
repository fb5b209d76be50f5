"""The fine-tuned model registry: list, read, delete (artifacts too), activate (behind a gate)."""
from __future__ import annotations

from flask_smorest import Blueprint

from app.store import grader_models as reg
from app.web.api.common import json_body, validate
from app.web.auth import current, login_required
from app.web.schemas import ActivateSchema, ModelEnvelopeSchema, ModelListQuerySchema, ModelListSchema

blp = Blueprint("models", __name__, url_prefix="/api/v1", description="Fine-tuned grader versions.")


@blp.route("/models", methods=["GET"])
@login_required
@blp.arguments(ModelListQuerySchema, location="query", as_kwargs=True)
@blp.response(200, ModelListSchema)
@blp.doc(security=[{"bearerAuth": []}], summary="Your fine-tuned models (a school admin: the school's), newest first")
def list_models(limit: int = 50, status: str | None = None, cursor: str | None = None):
    models, nxt = reg.list_models(current(), status, limit, cursor)
    return {"models": models, "next_cursor": nxt}


@blp.route("/models/<model_id>", methods=["GET"])
@login_required
@blp.response(200, ModelEnvelopeSchema)
@blp.doc(security=[{"bearerAuth": []}], summary="One model version with its validation metrics")
def get_model(model_id: str):
    return {"model": reg.read(current(), model_id)}


@blp.route("/models/<model_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@blp.doc(security=[{"bearerAuth": []}], summary="Delete a model version and its artifacts")
def delete_model(model_id: str):
    reg.delete(current(), model_id)
    return ""


@blp.route("/models/<model_id>/activate", methods=["POST"])
@login_required
@blp.response(200, ModelEnvelopeSchema)
@blp.alt_response(409, description="Below the activation gate (QWK, |SMD|) and not forced.")
@blp.doc(security=[{"bearerAuth": []}], summary="Make this version the one its rubric's grading uses by default",
         requestBody={"required": False, "content": {"application/json": {"schema": ActivateSchema}}})
def activate_model(model_id: str):
    from flask import request

    body = validate(ActivateSchema(), json_body()) if request.get_data(cache=True) else {"force": False}
    return {"model": reg.activate(current(), model_id, bool(body.get("force")))}


def init_app(api) -> None:
    api.register_blueprint(blp)
