"""Helpers shared by the resource handlers: body parsing by content type, validation."""
from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from app.errors import ApiError
from app.web.errors import _flatten_marshmallow, invalid_values_message


def _nul_paths(data: Any, path: str = "") -> list[str]:
    """Fields holding a NUL character, which Postgres text cannot store."""
    if isinstance(data, str):
        return [path or "body"] if "\x00" in data else []
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _nul_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _nul_paths(v, f"{path}[{i}]")]
    return []


def validate(schema: Schema, data: Any) -> dict:
    bad = _nul_paths(data)
    if bad:
        raise ApiError(422, f"Text may not contain NUL (\\u0000) characters: {', '.join(bad[:5])}.", "validation_error",
                       [{"field": f, "message": "The text contains a NUL character."} for f in bad])
    try:
        return schema.load(data)
    except ValidationError as e:
        details = _flatten_marshmallow(e.messages)
        raise ApiError(422, invalid_values_message(details), "validation_error", details) from e


def json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, f"Send JSON with the header Content-Type: application/json (this request has "
                            f"{request.mimetype or 'none'!r}).",
                       "unsupported_media_type")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"The body is not valid JSON: {e}.", "malformed_json") from e


def body_kind(multipart_ok: bool) -> str:
    """'json' or 'multipart'; anything else is a 415 that names what is accepted."""
    mt = request.mimetype or ""
    if request.is_json:
        return "json"
    if multipart_ok and mt == "multipart/form-data":
        return "multipart"
    accepted = "application/json or multipart/form-data" if multipart_ok else "application/json"
    raise ApiError(415, f"The Content-Type {mt or 'none'!r} is not supported; send {accepted}.", "unsupported_media_type")


def form_json(field: str) -> Any:
    raw = request.form.get(field)
    if raw is None:
        raise ApiError(422, f"The form field {field!r} is required.", "validation_error",
                       [{"field": field, "message": "Missing data for required field."}])
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ApiError(422, f"The form field {field!r} is not valid JSON: {e}.", "validation_error",
                       [{"field": field, "message": f"The value is not valid JSON: {e}."}]) from e


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header (1 to 200 characters), or None when it has none."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError(422, "Idempotency-Key must be 1 to 200 characters.", "validation_error",
                       [{"field": "Idempotency-Key", "message": "The key must be 1 to 200 characters long."}])
    return key
