"""The contract's error format: {"error": {"code", "message", "details"}}, never an HTML page."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from app.errors import _CODES, ApiError

log = logging.getLogger("eduq.api")

def error_response(status: int, message: str, code: str | None = None,
                   details: list | None = None, headers: dict | None = None):
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message,
                      "details": details or []}}
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _flatten_marshmallow(messages, prefix: str = "") -> list[dict]:
    """Turn marshmallow's nested {field: [msgs]} into [{"field": "essays[3].text", "message": ...}]."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, val in messages.items():
            if key == "_schema":
                name = prefix or "body"
            elif isinstance(key, int):
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(val, (dict, list)) and not (isinstance(val, list) and all(isinstance(v, str) for v in val)):
                out.extend(_flatten_marshmallow(val, name if key != "_schema" else prefix))
            else:
                for msg in (val if isinstance(val, list) else [val]):
                    out.append({"field": name, "message": str(msg)})
    elif isinstance(messages, list):
        for msg in messages:
            if isinstance(msg, (dict, list)):
                out.extend(_flatten_marshmallow(msg, prefix))
            else:
                out.append({"field": prefix or "body", "message": str(msg)})
    return out


def invalid_values_message(details: list[dict]) -> str:
    """The message of a 422 whose details name the bad fields."""
    names = sorted({d["field"] for d in details})
    if not names:
        return "The request has invalid values."
    return f"The request has invalid values in {', '.join(names)}; see the details."


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return error_response(e.status, e.message, e.code, e.details, e.headers)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        status = e.code or 500
        if status == 422:
            # flask-smorest / webargs validation: e.data["messages"] = {"json": {...}}
            messages = getattr(e, "data", {}).get("messages", {}) if hasattr(e, "data") else {}
            details = []
            for _location, msgs in (messages or {}).items():
                details.extend(_flatten_marshmallow(msgs))
            return error_response(422, invalid_values_message(details), "validation_error", details)
        if status == 413:
            return error_response(413, "The request body is larger than the configured limit.")
        if status == 400:
            return error_response(400, e.description or "The request is malformed.")
        if status == 405:
            return error_response(405, f"The method {request.method} is not allowed here; the allowed methods are "
                                       f"{', '.join(e.valid_methods or [])}.")
        if status == 404:
            return error_response(404, "There is nothing at this address.")
        headers = dict(e.get_headers()) if hasattr(e, "get_headers") else {}
        headers.pop("Content-Type", None)
        return error_response(status, e.description or "The request failed.", headers=headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _db_down(e):
        log.warning("database unavailable: %s", type(e).__name__)
        return error_response(503, "The database is not answering; try again shortly.",
                              "service_unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error")
        return error_response(500, "Something went wrong on the server; the error has been logged.")
