"""Per-token rate limits (Flask-Limiter) and CORS (flask-cors).

Rate limits
- The key is the SHA-256 of the bearer token (no database look-up, and the token itself never
  reaches the limiter's storage); a request without a token is keyed by its remote address.
- Submissions (POST of grading, lesson and fine-tune jobs) count against EDUQ_SUBMIT_RATE_LIMIT;
  every other /api/ request (reads, polls, overrides, deletions) against EDUQ_RATE_LIMIT. Each is
  one budget per token across all its routes. An empty value disables that limit.
- Counters live in Redis when CELERY_BROKER_URL is redis:// (shared by every API process),
  otherwise in process memory. If the storage is down the request goes through (logged).
- A breach answers 429 in the contract's error format with Retry-After (seconds).
- /healthz, /readyz, /metrics, the teacher page and its static files, and CORS preflights are
  never limited.

Both can be set per app through create_app(test_config): EDUQ_RATE_LIMIT, EDUQ_SUBMIT_RATE_LIMIT,
EDUQ_RATE_LIMIT_STORAGE_URI, EDUQ_CORS_ORIGINS (a list or a comma-separated string).
"""
from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import Flask, request

from app.settings import settings
from app.web.errors import error_response

log = logging.getLogger("eduq.limits")

SUBMISSION_PATHS = ("/api/v1/grading-jobs", "/api/v1/lesson-jobs", "/api/v1/fine-tune-jobs")


def rate_key() -> str:
    """SHA-256 of the bearer token, or the remote address where there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "tok:" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    return "ip:" + (request.remote_addr or "unknown")


def _not_limited() -> bool:
    return request.method == "OPTIONS" or not request.path.startswith("/api/")


def _is_submission() -> bool:
    return request.method == "POST" and request.path.rstrip("/") in SUBMISSION_PATHS


def _storage_uri(app: Flask) -> str:
    explicit = app.config.get("EDUQ_RATE_LIMIT_STORAGE_URI")
    if explicit:
        return explicit
    broker = settings().broker_url
    if broker.startswith(("redis://", "rediss://")):
        return broker
    return "memory://"


def init_limits(app: Flask) -> None:
    from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

    cfg = settings()
    read_limit = app.config.get("EDUQ_RATE_LIMIT", cfg.rate_limit) or ""
    submit_limit = app.config.get("EDUQ_SUBMIT_RATE_LIMIT", cfg.submit_rate_limit) or ""
    limits = []
    if read_limit:
        limits.append(ApplicationLimit(read_limit, scope="api", exempt_when=lambda: _not_limited() or _is_submission()))
    if submit_limit:
        limits.append(ApplicationLimit(submit_limit, scope="submit",
                                       exempt_when=lambda: _not_limited() or not _is_submission()))
    if not limits:
        return
    limiter = Limiter(
        rate_key,
        app=app,
        application_limits=limits,
        storage_uri=_storage_uri(app),
        storage_options={"socket_connect_timeout": 2, "socket_timeout": 2}
        if _storage_uri(app).startswith("redis") else {},
        key_prefix="eduq-rl",
        strategy="fixed-window",
        headers_enabled=False,  # Retry-After goes on the 429 only
        swallow_errors=True,  # storage down: let the request through rather than fail it
    )
    app.extensions["eduq_limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(e: RateLimitExceeded):
        retry = 1
        try:
            current = limiter.current_limit
            if current is not None:
                reset = current.window[0]  # when the breached window ends (epoch seconds)
                retry = max(1, min(math.ceil(reset - time.time()), current.limit.get_expiry()))
        except Exception:  # noqa: BLE001 - storage hiccup: a short, honest guess
            log.warning("could not read the rate-limit window")
        return error_response(
            429, f"Too many requests: the limit is {e.description}. Try again in {retry} s.",
            "rate_limited", [{"field": "limit", "message": str(e.description)}],
            headers={"Retry-After": str(retry)})


def init_cors(app: Flask) -> None:
    origins = app.config.get("EDUQ_CORS_ORIGINS", settings().cors_origins)
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    origins = list(origins or [])
    if not origins:
        return  # default: no cross-origin access (the teacher page is served from the same origin)
    from flask_cors import CORS

    CORS(app, resources={r"/api/*": {"origins": origins}},
         allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match"],
         expose_headers=["ETag", "Retry-After", "Content-Disposition", "Location"],
         methods=["GET", "POST", "DELETE", "OPTIONS"], supports_credentials=False, max_age=600)
