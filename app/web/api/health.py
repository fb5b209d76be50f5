"""/healthz (the process lives), /readyz (database and broker answer), /metrics (Prometheus)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from app.lifecycle.broker import celery_app
from app.store.db import engine
from app.web import http_metrics as metrics
from app.web.errors import error_response

log = logging.getLogger("eduq.api")
bp = Blueprint("service", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


def _check_db() -> str | None:
    try:
        with engine().connect() as c:
            c.execute(text("SELECT 1"))
        return None
    except Exception as e:
        return type(e).__name__


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        return None
    except Exception as e:
        return type(e).__name__


@bp.get("/readyz")
def readyz():
    problems = [(what, why) for what, why in (("database", _check_db()), ("broker", _check_broker())) if why]
    if problems:
        down = " and the ".join(f"{what} ({why})" for what, why in problems)
        return error_response(503, f"The service is not ready: the {down} {'do' if len(problems) > 1 else 'does'} "
                                   "not answer.", "service_unavailable",
                              [{"field": what, "message": f"The {what} does not answer ({why})."} for what, why in problems],
                              headers={"Retry-After": "5"})
    return jsonify({"status": "ready", "database": "ok", "broker": "ok"})


@bp.get("/metrics")
def metrics_endpoint():
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


def init_app(app) -> None:
    app.register_blueprint(bp)
