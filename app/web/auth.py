"""Bearer-token auth. Tokens are random; only their SHA-256 is stored and looked up.

Lookup is by hash (an index probe that reveals nothing about the token), then the hash is
compared again with hmac.compare_digest so that no comparison short-circuits on a prefix.
"""
from __future__ import annotations

import hmac
import threading
from functools import wraps

from cachetools import TTLCache
from flask import g, request
from sqlalchemy import bindparam, select

from app.errors import ApiError
from app.settings import settings
from app.store.accounts import Principal, hash_token
from app.store.db import session_scope
from app.store.tables import ApiToken, Teacher


def _unauthorized(msg: str) -> ApiError:
    return ApiError(401, msg, "unauthorized", headers={"WWW-Authenticate": 'Bearer realm="eduq"'})


_LOOKUP = (select(ApiToken.token_hash, Teacher.id, Teacher.school_id, Teacher.role, Teacher.email)
           .join(Teacher, Teacher.id == ApiToken.teacher_id)
           .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None)))
_cache: TTLCache | None = None
_cache_lock = threading.Lock()


def _cached() -> TTLCache | None:
    """Token hash -> Principal for EDUQ_AUTH_CACHE_S seconds (0: look every request up): a poll or a submission
    then costs no database session for its token. A revoked token or a deleted teacher stops working within
    that time."""
    global _cache
    ttl = settings().auth_cache_s
    if ttl <= 0:
        return None
    if _cache is None or _cache.ttl != ttl:
        _cache = TTLCache(maxsize=10_000, ttl=ttl)
    return _cache


def authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("The request has no bearer token; send the header 'Authorization: Bearer <token>'.")
    digest = hash_token(token.strip())
    cache = _cached()
    if cache is not None:
        with _cache_lock:
            known = cache.get(digest)
        if known is not None:
            return known
    with session_scope() as s:
        row = s.execute(_LOOKUP, {"digest": digest}).first()
    if row is None or not hmac.compare_digest(row[0], digest):
        raise _unauthorized("The bearer token is not valid.")
    who = Principal(teacher_id=row[1], school_id=row[2], role=row[3], email=row[4])
    if cache is not None:
        with _cache_lock:
            cache[digest] = who
    return who


def forget_tokens() -> None:
    """Drop the remembered tokens of this process (tests, and after revoking a token by hand)."""
    with _cache_lock:
        if _cache is not None:
            _cache.clear()


def login_required(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        g.principal = authenticate()
        return fn(*args, **kwargs)

    return wrapper


def current() -> Principal:
    return g.principal
