"""Lesson-plan generation engine (see docs/lessons.md).

Public API:
    LessonEngine.load() -> engine;  engine.generate(requests, seed=0) -> list[result]
    validate_lesson_request(d) -> list[{"field", "message"}]
    section_minutes(duration) -> [(name, minutes)]
    to_markdown(lesson) -> str;  to_docx(lesson) -> bytes

Importing this package does not import torch; the engine loads it on first use.
"""
from workers.ml.lessons.render import to_docx, to_markdown
from workers.ml.lessons.schema import SECTIONS, section_minutes, validate_lesson_request

__all__ = ["LessonEngine", "validate_lesson_request", "section_minutes", "to_markdown", "to_docx", "SECTIONS"]


def __getattr__(name):
    if name == "LessonEngine":
        from workers.ml.lessons.engine import LessonEngine

        return LessonEngine
    raise AttributeError(name)
