"""Request validation, normalisation and the section-minutes arithmetic (no torch here)."""
from __future__ import annotations

import re
from typing import Any

MIN_DURATION = 10
MAX_DURATION = 240
MAX_TOPIC_CHARS = 200
MAX_SUBJECT_CHARS = 100
MAX_NOTES_CHARS = 2000
MAX_OBJECTIVES = 10
MAX_STANDARDS = 30
MAX_ITEM_CHARS = 300
SUPPORTED_LANGUAGES = ("en",)  # the default model and the reading-level check are English-only

# (name, share of the minutes left after every section gets MIN_SECTION_MINUTES)
SECTIONS: tuple[tuple[str, float], ...] = (
    ("Warm-up", 0.10),
    ("Direct instruction", 0.25),
    ("Guided practice", 0.25),
    ("Independent practice", 0.25),
    ("Closure", 0.15),
)
MIN_SECTION_MINUTES = 2

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
    """Split ``duration`` (10-240) across the five sections; the minutes always add up.

    Every section gets MIN_SECTION_MINUTES, the rest is shared by fixed proportions with
    largest-remainder rounding (ties go to the earlier, larger-share section).
    """
    if not _is_int(duration) or not (MIN_DURATION <= duration <= MAX_DURATION):
        raise ValueError(f"duration_minutes must be an integer in {MIN_DURATION}-{MAX_DURATION}")
    rest = duration - MIN_SECTION_MINUTES * len(SECTIONS)
    raw = [share * rest for _, share in SECTIONS]
    mins = [int(x) for x in raw]
    left = rest - sum(mins)
    order = sorted(range(len(SECTIONS)), key=lambda i: (-(raw[i] - mins[i]), -SECTIONS[i][1], i))
    for i in order[:left]:
        mins[i] += 1
    out = [(name, m + MIN_SECTION_MINUTES) for (name, _), m in zip(SECTIONS, mins)]
    assert sum(m for _, m in out) == duration
    return out
