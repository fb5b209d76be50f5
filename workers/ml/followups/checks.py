"""The checks every follow-up passes before it is returned (or it is flagged `needs_review` with reasons).

    problems(follow_up, text, rubric, others=()) -> ["...", ...]     empty: it passes

- the shape (SCHEMA, JSON Schema, jsonschema);
- every quoted piece (`evidence`, an exercise's `source`, and any "..." quote inside instructions and
  targets) is an exact substring of this student's essay;
- every exercise names the trait it is for (its instructions start with the trait's title) and that
  trait is one of the rubric's (or a kind the essay was read for, when the rubric has none);
- the reading level of what we wrote for the student (quotes of her own words and the teacher's answers
  taken out) is within two grades
  of the student's own writing, by Flesch-Kincaid (textstat), floored at grade 3 for very young writers;
- no 12-word run of another student's essay (`others`) that is not also in hers appears in it.
"""
from __future__ import annotations

import re

from workers.ml.followups.build import _QUOTED, GRADE_SLACK, TITLES, _name, our_words, writing_grade

MIN_GRADE = 3.0  # templates cannot go below this; a grade-1 writer is compared with grade 3
SHINGLE = 12

ITEM = {"type": "object", "required": ["trait"], "properties": {"trait": {"type": "string", "minLength": 1}}}
SCHEMA = {
    "type": "object",
    "required": ["strengths", "next_steps", "exercises"],
    "properties": {
        "strengths": {"type": "array", "maxItems": 2, "items": {**ITEM, "required": ["trait", "comment", "evidence"],
                      "properties": {"trait": {"type": "string"}, "comment": {"type": "string", "minLength": 1},
                                     "evidence": {"type": "string", "minLength": 1}}}},
        "next_steps": {"type": "array", "maxItems": 2, "items": {**ITEM, "required": ["trait", "target", "evidence"],
                       "properties": {"trait": {"type": "string"}, "target": {"type": "string", "minLength": 1},
                                      "evidence": {"type": "string", "minLength": 1}}}},
        "exercises": {"type": "array", "maxItems": 3, "items": {**ITEM, "required": ["trait", "instructions", "answer"],
                      "properties": {"trait": {"type": "string"}, "instructions": {"type": "string", "minLength": 1},
                                     "answer": {"type": "string", "minLength": 1},
                                     "source": {"type": ["string", "null"]}}}},
        "revision_target": {"type": ["object", "null"]},
    },
}


def _shingles(text: str, n: int = SHINGLE) -> set[tuple[str, ...]]:
    ws = re.findall(r"[a-z']+", (text or "").lower())
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def problems(fu: dict, text: str, rubric: dict, others=()) -> list[str]:
    import jsonschema

    out = []
    try:
        jsonschema.validate(fu, SCHEMA)
    except jsonschema.ValidationError as exc:
        return [f"not the follow-up schema: {exc.message}"]
    traits = {t["name"] for t in rubric.get("traits") or []}
    for group, key in (("strengths", "evidence"), ("next_steps", "evidence"), ("exercises", "source")):
        for item in fu.get(group) or []:
            ev = item.get(key)
            if ev and ev not in text:
                out.append(f"{group}: a quote is not in the essay: {ev[:60]!r}")
            for q in _QUOTED.findall(item.get("instructions", "") + " " + item.get("target", "")):
                if q not in text:
                    out.append(f"{group}: a quote is not in the essay: {q[:60]!r}")
            if traits and item["trait"] not in traits and not (group == "strengths" and item["trait"] == "overall"):
                out.append(f"{group}: {item['trait']!r} is not a trait of the rubric")
    for x in fu.get("exercises") or []:
        if not x["instructions"].startswith(_name(x["trait"]) + ":"):
            out.append(f"exercises: one does not name its trait {x['trait']!r}")
        if not traits and x["trait"] not in TITLES:
            out.append(f"exercises: {x['trait']!r} is not a kind of writing skill")
    if fu.get("next_steps") and not fu.get("exercises"):
        out.append("no exercise for the next step")
    mine, student = our_words(fu), writing_grade(text)
    ours = writing_grade(mine)
    if student is not None and ours is not None and abs(ours - max(student, MIN_GRADE)) > GRADE_SLACK:
        out.append(f"reading level: grade {ours:.1f} for a student writing at grade {student:.1f}")
    own = _shingles(text)
    generated = _shingles(" ".join([mine] + [str(v) for v in _QUOTED.findall(str(fu))]))
    for other in others:
        if other and other != text and (generated & (_shingles(other) - own)):
            out.append("text of another student's essay appears in it")
            break
    return out
