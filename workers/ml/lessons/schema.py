"""Request validation, normalisation and the section-minutes arithmetic (no torch here)."""
from __future__ import annotations

import re
from typing import Any

from workers.ml.lessons import library

MIN_DURATION = 10
MAX_DURATION = 240
MAX_TOPIC_CHARS = 200
MAX_SUBJECT_CHARS = 100
MAX_NOTES_CHARS = 2000
MAX_OBJECTIVES = 10
MAX_STANDARDS = 30
MAX_ITEM_CHARS = 300
SECTIONS: tuple[tuple[str, float], ...] = tuple((p.name, p.share) for p in library.STRUCTURES["gradual release"].phases)
SUPPORTED_LANGUAGES = ("en",)  # the default model and the reading-level check are English-only


_GRADE_RE = re.compile(r"^(?:[kK]|0?[0-9]|1[0-2])$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def normalize_grade(grade: Any) -> str | None:
    """'K', 'k', '0' -> 'K'; '1'..'12' (also int, '05') -> '1'..'12'; anything else -> None."""
    if _is_int(grade):
        grade = str(grade)
    if not isinstance(grade, str):
        return None
    g = grade.strip()
    if g.lower().startswith("grade "):
        g = g[6:].strip()
    if not _GRADE_RE.match(g):
        return None
    if g.lower() == "k" or int(g) == 0:
        return "K"
    return str(int(g))


def grade_number(grade: str) -> int:
    """'K' -> 0, '5' -> 5 (expects a normalised grade)."""
    return 0 if grade == "K" else int(grade)


def normalize_language(lang: Any) -> str | None:
    if lang is None:
        return "en"
    if not isinstance(lang, str):
        return None
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in SUPPORTED_LANGUAGES else None


def _check_str_list(d: dict, key: str, max_items: int, errors: list[dict]) -> None:
    v = d.get(key)
    if v is None:
        return
    if not isinstance(v, list):
        errors.append({"field": key, "message": "must be a list of strings"})
        return
    if len(v) > max_items:
        errors.append({"field": key, "message": f"at most {max_items} items"})
    for i, item in enumerate(v):
        if not isinstance(item, str) or not item.strip():
            errors.append({"field": f"{key}[{i}]", "message": "must be a non-empty string"})
        elif len(item) > MAX_ITEM_CHARS:
            errors.append({"field": f"{key}[{i}]", "message": f"at most {MAX_ITEM_CHARS} characters"})


def validate_lesson_request(d: Any) -> list[dict]:
    """Value errors of a lesson request, as [{"field": ..., "message": ...}] (empty = valid)."""
    if not isinstance(d, dict):
        return [{"field": "", "message": "request must be a JSON object"}]
    errors: list[dict] = []
    topic = d.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        errors.append({"field": "topic", "message": "required, a non-empty string"})
    elif len(topic) > MAX_TOPIC_CHARS:
        errors.append({"field": "topic", "message": f"at most {MAX_TOPIC_CHARS} characters"})
    subject = d.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        errors.append({"field": "subject", "message": "required, a non-empty string"})
    elif len(subject) > MAX_SUBJECT_CHARS:
        errors.append({"field": "subject", "message": f"at most {MAX_SUBJECT_CHARS} characters"})
    if normalize_grade(d.get("grade_level")) is None:
        errors.append({"field": "grade_level", "message": "must be K or 0-12"})
    dur = d.get("duration_minutes")
    if not _is_int(dur):
        errors.append({"field": "duration_minutes", "message": "required, an integer"})
    elif not (MIN_DURATION <= dur <= MAX_DURATION):
        errors.append(
            {"field": "duration_minutes", "message": f"must be between {MIN_DURATION} and {MAX_DURATION}"}
        )
    _check_str_list(d, "objectives", MAX_OBJECTIVES, errors)
    _check_str_list(d, "standards", MAX_STANDARDS, errors)
    if normalize_language(d.get("language")) is None:
        errors.append(
            {"field": "language", "message": f"unsupported; supported: {', '.join(SUPPORTED_LANGUAGES)}"}
        )
    notes = d.get("notes")
    if notes is not None:
        if not isinstance(notes, str):
            errors.append({"field": "notes", "message": "must be a string"})
        elif len(notes) > MAX_NOTES_CHARS:
            errors.append({"field": "notes", "message": f"at most {MAX_NOTES_CHARS} characters"})
    return errors


def normalize_request(d: dict) -> dict:
    """A validated request with defaults filled in and values normalised."""
    return {
        "topic": " ".join(d["topic"].split()),
        "subject": " ".join(d["subject"].split()),
        "grade_level": normalize_grade(d["grade_level"]),
        "duration_minutes": int(d["duration_minutes"]),
        "objectives": [" ".join(o.split()) for o in (d.get("objectives") or [])],
        "standards": [s.strip() for s in (d.get("standards") or [])],
        "language": normalize_language(d.get("language")),
        "notes": (d.get("notes") or "").strip(),
    }


def section_minutes(duration: int) -> list[tuple[str, int]]:
    """The gradual-release sections (Warm-up, Direct instruction, Guided practice, Independent practice,
    Closure) with their minutes for ``duration`` (10-240); they always add up (``library.phase_minutes``)."""
    if not _is_int(duration) or not (MIN_DURATION <= duration <= MAX_DURATION):
        raise ValueError(f"duration_minutes must be an integer in {MIN_DURATION}-{MAX_DURATION}")
    return library.phase_minutes(library.STRUCTURES["gradual release"], duration)


def _strings(min_items: int = 1, max_items: int = 12, max_len: int = 400) -> dict:
    return {"type": "array", "minItems": min_items, "maxItems": max_items,
            "items": {"type": "string", "minLength": 1, "maxLength": max_len}}


# The plan every engine path returns (and the page, the .docx and the API render): the public lesson shape
# of docs/api.md, with the library's extensions (structure, guiding question, vocabulary, example, task).
LESSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title", "grade_level", "subject", "duration_minutes", "objectives", "materials", "sections",
                 "assessment", "differentiation", "standards"],
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 120},
        "grade_level": {"type": "string", "pattern": "^(K|[1-9]|1[0-2])$"},
        "subject": {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_CHARS},
        "duration_minutes": {"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION},
        "structure": {"type": "string"},
        "guiding_question": {"type": "string", "maxLength": 200},
        "vocabulary": _strings(0, 8, 40),
        "example": {"type": "string", "maxLength": 300},
        "task": {"type": "string", "maxLength": 300},
        "objectives": _strings(1, MAX_OBJECTIVES, MAX_ITEM_CHARS),
        "materials": _strings(1, 15, 200),
        "sections": {"type": "array", "minItems": 2, "maxItems": 8, "items": {
            "type": "object", "required": ["name", "minutes", "activities"],
            "properties": {"name": {"type": "string", "minLength": 1}, "minutes": {"type": "integer", "minimum": 1},
                           "activities": _strings(1, 5, 500)}}},
        "assessment": _strings(1, 5, 400),
        "differentiation": _strings(1, 16, 400),
        "standards": {"type": "array", "items": {"type": "string"}},
    },
}
