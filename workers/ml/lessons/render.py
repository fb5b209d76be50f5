"""Markdown and .docx renderings of a lesson dict."""
from __future__ import annotations

import io


def _esc(s: str) -> str:
    return str(s).replace("\n", " ").strip()


def _grade_label(g: str) -> str:
    return "Kindergarten" if str(g) == "K" else f"Grade {g}"


def to_markdown(lesson: dict, review: list[str] | None = None) -> str:
    """The plan as Markdown; ``review``: the reasons it needs a teacher's review, shown first."""
    out = [f"# {_esc(lesson.get('title') or 'Lesson plan')}", ""]
    if review:
        out += ["> **Needs review:** " + _esc("; ".join(review)), ""]
    out.append(
        f"**Subject:** {_esc(lesson.get('subject', ''))} · **{_grade_label(lesson.get('grade_level', ''))}** · "
        f"**Duration:** {lesson.get('duration_minutes', '')} minutes"
        + (f" · **Structure:** {_esc(lesson['structure'])}" if lesson.get("structure") else "")
    )
    out.append("")
    if lesson.get("guiding_question"):
        out += [f"**Guiding question:** {_esc(lesson['guiding_question'])}", ""]
    if lesson.get("vocabulary"):
        out += [f"**Key vocabulary:** {_esc(', '.join(lesson['vocabulary']))}", ""]

    def bullets(title: str, items: list[str]) -> None:
        out.append(f"## {title}")
        out.append("")
        if items:
            out.extend(f"- {_esc(i)}" for i in items)
        else:
            out.append("- (none)")
        out.append("")

    bullets("Objectives", lesson.get("objectives") or [])
    if lesson.get("standards"):
        bullets("Standards", lesson["standards"])
    bullets("Materials", lesson.get("materials") or [])
    out.append("## Lesson sequence")
    out.append("")
    for sec in lesson.get("sections") or []:
        out.append(f"### {_esc(sec['name'])} ({sec['minutes']} min)")
        out.append("")
        out.extend(f"{i}. {_esc(a)}" for i, a in enumerate(sec.get("activities") or [], 1))
        out.append("")
    bullets("Assessment", lesson.get("assessment") or [])
    bullets("Differentiation", lesson.get("differentiation") or [])
    return "\n".join(out).rstrip() + "\n"


def to_docx(lesson: dict) -> bytes:
    return lessons_to_docx([lesson])


def lessons_to_docx(lessons: list[dict]) -> bytes:
    """One Word document holding every plan of a job, a page each."""
    from docx import Document

    doc = Document()
    for i, lesson in enumerate(lessons):
        if i:
            doc.add_page_break()
        _write_docx(doc, lesson)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _write_docx(doc, lesson: dict) -> None:
    doc.add_heading(lesson.get("title") or "Lesson plan", level=0)
    doc.add_paragraph(
        f"Subject: {lesson.get('subject', '')}    {_grade_label(lesson.get('grade_level', ''))}    "
        f"Duration: {lesson.get('duration_minutes', '')} minutes"
        + (f"    Structure: {lesson['structure']}" if lesson.get("structure") else "")
    )
    if lesson.get("guiding_question"):
        doc.add_paragraph(f"Guiding question: {_esc(lesson['guiding_question'])}")
    if lesson.get("vocabulary"):
        doc.add_paragraph(f"Key vocabulary: {_esc(', '.join(lesson['vocabulary']))}")

    def bullets(title: str, items: list[str]) -> None:
        doc.add_heading(title, level=1)
        for i in items or ["(none)"]:
            doc.add_paragraph(_esc(i), style="List Bullet")

    bullets("Objectives", lesson.get("objectives") or [])
    if lesson.get("standards"):
        bullets("Standards", lesson["standards"])
    bullets("Materials", lesson.get("materials") or [])
    doc.add_heading("Lesson sequence", level=1)
    for sec in lesson.get("sections") or []:
        doc.add_heading(f"{sec['name']} ({sec['minutes']} min)", level=2)
        for a in sec.get("activities") or []:
            doc.add_paragraph(_esc(a), style="List Number")
    bullets("Assessment", lesson.get("assessment") or [])
    bullets("Differentiation", lesson.get("differentiation") or [])
