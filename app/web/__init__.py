"""The Flask app factory: builds the app and calls each part's init_app."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from app.logs import configure
from app.settings import settings
from app.web import api_docs, errors, limits
from app.web import http_metrics as metrics
from app.web import page as web
from app.web.api import (
    calibration,
    finetune,
    grading,
    health,
    jobs,
    lessons,
    models_api,
    overrides,
    personal,
    privacy,
    rubrics,
)
from app.web.schemas import ErrorSchema


class EduqApi(Api):
    ERROR_SCHEMA = ErrorSchema


def create_app(test_config: dict | None = None) -> Flask:
    cfg = settings()
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=cfg.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=cfg.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="EduQueue API",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="api/v1/openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "Grade essays, write lesson plans and fine-tune graders, as jobs. "
                                    "The reference, with examples and every error: docs/api.md in the "
                                    "EduQueue repository."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False

    metrics.init_app(app)
    api = EduqApi(app)
    errors.init_app(app)  # after Api(): our error format replaces flask-smorest's
    limits.init_limits(app)  # per-token rate limits: 429 in the error format, with Retry-After
    limits.init_cors(app)  # EDUQ_CORS_ORIGINS; none by default
    grading.init_app(api)
    lessons.init_app(api)
    jobs.init_app(api)

    finetune.init_app(api)
    models_api.init_app(api)
    overrides.init_app(api)
    calibration.init_app(api)
    rubrics.init_app(api)
    personal.init_app(api)
    privacy.init_app(api)
    health.init_app(app)
    api_docs.init_app(app)  # Swagger UI at /api/docs, its files served from this origin
    web.init_app(app)  # the teacher page at / and /app

    configure()
    return app
