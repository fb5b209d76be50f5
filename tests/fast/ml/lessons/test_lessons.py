"""Lesson requests, minutes and rendering (pure functions). The engine, library, needs and checks:
test_planner.py; the language engines: tests/fast/ml/llm/."""
from __future__ import annotations

import io
import zipfile

import pytest

from workers.ml.lessons import section_minutes, to_docx, to_markdown, validate_lesson_request
from workers.ml.lessons.parsing import has_degenerate_repetition, starts_with_measurable_verb
from workers.ml.lessons.schema import SECTIONS, normalize_grade, normalize_request

GOOD = {"topic": "Photosynthesis", "subject": "Science", "grade_level": "5", "duration_minutes": 45}


# ------------------------------------------------------------------ minutes
@pytest.mark.parametrize("duration", list(range(10, 241)))
def test_section_minutes_always_sum(duration):
    parts = section_minutes(duration)
    assert [n for n, _ in parts] == [n for n, _ in SECTIONS]
    assert sum(m for _, m in parts) == duration
    assert all(m >= 2 for _, m in parts)


def test_section_minutes_proportions():
    assert section_minutes(45) == [("Warm-up", 5), ("Direct instruction", 11), ("Guided practice", 11),
                                   ("Independent practice", 11), ("Closure", 7)]
    assert [m for _, m in section_minutes(10)] == [2, 2, 2, 2, 2]
    m = dict(section_minutes(240))
    assert m["Direct instruction"] > m["Closure"] > m["Warm-up"]


@pytest.mark.parametrize("bad", [9, 241, 0, -5, "45", 45.0, True, None])
def test_section_minutes_rejects(bad):
    with pytest.raises(ValueError):
        section_minutes(bad)


# --------------------------------------------------------------- validation
def test_validate_ok_and_grades():
    assert validate_lesson_request(GOOD) == []
    for g in ["K", "k", "0", "1", "12", 5, "05"]:
        assert validate_lesson_request({**GOOD, "grade_level": g}) == [], g
    assert normalize_grade("k") == "K" and normalize_grade("0") == "K" and normalize_grade("05") == "5"


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"topic": "  "}, "topic"),
        ({"topic": None}, "topic"),
        ({"subject": ""}, "subject"),
        ({"grade_level": "13"}, "grade_level"),
        ({"grade_level": "-1"}, "grade_level"),
        ({"grade_level": "Pre-K"}, "grade_level"),
        ({"duration_minutes": 9}, "duration_minutes"),
        ({"duration_minutes": 241}, "duration_minutes"),
        ({"duration_minutes": "45"}, "duration_minutes"),
        ({"language": "fr"}, "language"),
        ({"objectives": "learn"}, "objectives"),
        ({"standards": [""]}, "standards[0]"),
        ({"notes": 3}, "notes"),
    ],
)
def test_validate_errors(patch, field):
    errs = validate_lesson_request({**GOOD, **patch})
    assert any(e["field"] == field for e in errs), errs
    assert all(set(e) == {"field", "message"} for e in errs)


def test_validate_not_a_dict():
    assert validate_lesson_request([1]) and validate_lesson_request(None)


def test_language_variants_accepted():
    assert validate_lesson_request({**GOOD, "language": "en-US"}) == []
    assert normalize_request({**GOOD})["language"] == "en"


# --------------------------------------------------------------- repetition
def test_repetition_guard():
    loop = "the plant makes food " * 8
    assert has_degenerate_repetition(loop)
    assert has_degenerate_repetition("food food food food food food")
    ok = "Students observe a leaf, draw its parts, and explain how light helps the plant make food."
    assert not has_degenerate_repetition(ok)


# ---------------------------------------------------------------- objectives
def test_objective_verbs():
    assert starts_with_measurable_verb("Identify the parts of a flower.")
    assert starts_with_measurable_verb("Explains the water cycle")
    assert not starts_with_measurable_verb("Understandings of stuff")
    assert not starts_with_measurable_verb("Learn about plants")  # not measurable
    assert not starts_with_measurable_verb("Know the planets")


# ---------------------------------------------------------------- rendering
LESSON = {
    "title": "Sunlight Snacks",
    "grade_level": "5",
    "subject": "Science",
    "duration_minutes": 45,
    "objectives": ["Identify the inputs of photosynthesis."],
    "materials": ["Leaves", "Hand lenses"],
    "sections": [{"name": n, "minutes": m, "activities": [f"Do {n.lower()} things."]} for n, m in section_minutes(45)],
    "assessment": ["Exit ticket with two questions."],
    "differentiation": ["Word bank for English learners."],
    "standards": ["NGSS 5-LS1-1"],
}


def test_markdown():
    md = to_markdown({**LESSON, "structure": "gradual release", "guiding_question": "How do plants eat?",
                      "vocabulary": ["chlorophyll", "glucose"]}, review=["a section is off the topic"])
    assert "> **Needs review:** a section is off the topic" in md
    assert "**Structure:** gradual release" in md and "**Guiding question:** How do plants eat?" in md
    assert "**Key vocabulary:** chlorophyll, glucose" in md
    md = to_markdown(LESSON)
    assert "Needs review" not in md
    assert md.startswith("# Sunlight Snacks\n")
    assert "### Warm-up (5 min)" in md and "### Closure (7 min)" in md
    assert "- NGSS 5-LS1-1" in md and "1. Do guided practice things." in md
    assert "## Differentiation" in md


def test_docx():
    data = to_docx(LESSON)
    assert data[:2] == b"PK"
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    for s in ("Sunlight Snacks", "Warm-up (5 min)", "NGSS 5-LS1-1", "Hand lenses", "Word bank for English learners."):
        assert s in xml
