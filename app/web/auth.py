"""Bearer-token auth. Tokens are random; only their SHA-256 is stored and looked up.

Lookup is by hash (an index probe that reveals nothing about the token), then the hash is
compared again with hmac.compare_digest so that no comparison short-circuits on a prefix.
"""
from __future__ import annotations

import hmac
from functools import wraps

from flask import g, request
from sqlalchemy import select

from app.errors import ApiError
from app.store.accounts import Principal, hash_token
from app.store.db import session_scope
from app.store.tables import ApiToken, Teacher


def _unauthorized(msg: str) -> ApiError:
    return ApiError(401, msg, "unauthorized", headers={"WWW-Authenticate": 'Bearer realm="eduq"'})


def authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("The request has no bearer token; send the header 'Authorization: Bearer <token>'.")
    digest = hash_token(token.strip())
    with session_scope() as s:
        row = s.execute(
            select(ApiToken.token_hash, Teacher.id, Teacher.school_id, Teacher.role, Teacher.email)
            .join(Teacher, Teacher.id == ApiToken.teacher_id)
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        ).first()
    if row is None or not hmac.compare_digest(row[0], digest):
        raise _unauthorized("The bearer token is not valid.")
    return Principal(teacher_id=row[1], school_id=row[2], role=row[3], email=row[4])


def login_required(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        g.principal = authenticate()
        return fn(*args, **kwargs)

    return wrapper


def current() -> Principal:
    return g.principal
