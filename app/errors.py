"""ApiError: a failure the client caused or must know about, raised anywhere in the platform and
turned into the contract's error format ({"error": {"code", "message", "details"}}) by app/web/errors.py."""
from __future__ import annotations

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def count_of(n: int, noun: str) -> str:
    """For messages: count_of(1, "problem") == "1 problem", count_of(3, "problem") == "3 problems"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def problems_message(what: str, problems: list[dict], at: str) -> str:
    """The message of a 422 that queued nothing: 'The CSV has 2 problems, so nothing was queued. The first is
    on line 3 (score): The score 'x' is not a number.' (`at` places the first problem; `what` ends in 's': 'have')."""
    first, n = problems[0], len(problems)
    verb = "have" if what.endswith("s") else "has"
    lead = "It is" if n == 1 else "The first is"
    return (f"{what} {verb} {count_of(n, 'problem')}, so nothing was queued. "
            f"{lead} {at} ({first['field']}): {first['message']}")


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 details: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details or []
        self.headers = headers or {}
